"""The protocol pilot: seed-to-seed spread against cost for candidate settings on Fashion-MNIST.

For each candidate setting (backbone, training-set size, epochs, batch size,
bf16) it trains CE and DLB with the same seeds, in-process, one run folder per
(candidate, method, seed) under ``--out`` (rerunning skips finished runs and
resumes interrupted ones). From the per-seed results it reports:

- CE's mean test accuracy and its seed-to-seed standard deviation;
- the standard deviation ``s_d`` of the paired differences DLB - CE;
- the 95% half-width a paired gain would have with ``n`` seeds,
  ``t_{0.975, n-1} * s_d / sqrt(n)``, at the leaderboard's 5 seeds, and the
  smallest n for which it is at most ``--target-half-width`` (0.6 points);
- the wall seconds per CE run and per DLB run (training + evaluation).

The table goes to stdout and to ``--table`` (Markdown). A standard deviation
from 3 seeds is itself rough (its 95% interval spans about 0.5x to 6x): the
table says how many seeds each row has.

    python scripts/pilot.py --out runs/pilot     # its table: runs/pilot/table.md; docs/pilot.md discusses it
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from augbench.config import RunConfig
from augbench.engine import train
from augbench.leaderboard.stats import t_quantile


@dataclass(frozen=True)
class Candidate:
    name: str
    model: str
    train_subset: int | None  # None: the whole training split (54,000 images)
    epochs: int
    batch_size: int
    bf16: bool = False
    lr: float | None = None  # None: RunConfig's default (the official DLB code's 0.05 at batch 64)


CANDIDATES = [
    Candidate("r8-8k-5ep-b64", "cifar_resnet8", 8000, 5, 64),
    Candidate("r8-8k-5ep-b64-bf16", "cifar_resnet8", 8000, 5, 64, bf16=True),
    Candidate("r8-20k-8ep-b64-bf16", "cifar_resnet8", 20000, 8, 64, bf16=True),
    Candidate("r8-54k-6ep-b128-bf16", "cifar_resnet8", None, 6, 128, bf16=True, lr=0.1),
    Candidate("r8-54k-8ep-b128-bf16", "cifar_resnet8", None, 8, 128, bf16=True, lr=0.1),
]


def half_width(sd: float, n: int) -> float:
    return t_quantile(0.975, n - 1) * sd / math.sqrt(n)


def seeds_needed(sd: float, target: float, limit: int = 50) -> int | None:
    return next((n for n in range(2, limit + 1) if half_width(sd, n) <= target), None)


def run(candidate: Candidate, method: str, seed: int, out: Path) -> tuple[dict, float]:
    config = RunConfig(dataset="fashion_mnist", model=candidate.model, method=method, epochs=candidate.epochs,
                       batch_size=candidate.batch_size, train_subset=candidate.train_subset, seed=seed,
                       bf16=candidate.bf16, val_fraction=0.1, **({"lr": candidate.lr} if candidate.lr else {}))
    start = time.perf_counter()
    record = train(config, out / candidate.name / method / f"seed-{seed}", progress=False, log=lambda _: None)
    wall = time.perf_counter() - start
    return record, record["train_seconds"] + record.get("eval_seconds", 0.0) if wall < 1 else wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/pilot"))
    parser.add_argument("--table", type=Path, default=Path("runs/pilot/table.md"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--candidates", nargs="+", default=[c.name for c in CANDIDATES],
                        choices=[c.name for c in CANDIDATES])
    parser.add_argument("--target-half-width", type=float, default=0.6)
    args = parser.parse_args()

    rows = ["| candidate | backbone | train images | epochs | batch | bf16 | seeds | CE test acc (mean ± sd) | "
            "DLB - CE (mean ± sd_d) | 95% half-width at 5 seeds | seeds for ≤ "
            f"{args.target_half_width} | s per CE run | s per DLB run |",
            "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for candidate in (c for c in CANDIDATES if c.name in args.candidates):
        results = {m: [run(candidate, m, s, args.out) for s in range(args.seeds)] for m in ("ce", "dlb")}
        ce = [r["test_acc"] for r, _ in results["ce"]]
        diffs = [d["test_acc"] - c["test_acc"] for (d, _), (c, _) in zip(results["dlb"], results["ce"])]
        sd_ce, sd_d = statistics.stdev(ce), statistics.stdev(diffs)
        need = seeds_needed(sd_d, args.target_half_width)
        seconds = {m: statistics.mean(w for _, w in results[m]) for m in results}
        rows.append(f"| {candidate.name} | {candidate.model} | {candidate.train_subset or 54000:,} | "
                    f"{candidate.epochs} | {candidate.batch_size} | {'yes' if candidate.bf16 else 'no'} | "
                    f"{args.seeds} | {statistics.mean(ce):.2f} ± {sd_ce:.2f} | {statistics.mean(diffs):+.2f} ± "
                    f"{sd_d:.2f} | {half_width(sd_d, 5):.2f} | {need if need else '> 50'} | {seconds['ce']:.0f} | "
                    f"{seconds['dlb']:.0f} |")
        print(rows[-1], flush=True)
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text("\n".join(rows) + "\n")  # after every candidate: a cut-short pilot keeps its rows
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
