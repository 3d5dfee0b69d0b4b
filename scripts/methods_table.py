"""Trains every listed method, clean and with label noise, and prints a Markdown table of the results.

One ``augbench train`` per (method, noise) cell, each in its own run folder
under ``--out`` (rerunning resumes or reuses finished cells). The table gives
the test accuracy at the last epoch and the training seconds per full epoch
(evaluation excluded), and is also written to ``--out/table.md``.

    python scripts/methods_table.py --out runs/methods_table
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

METHODS = ("ce", "lsr", "tfkd_reg", "cskd", "pskd", "dlb")


def cell_dir(out: Path, method: str, noise: str | None) -> Path:
    return out / f"{method}_{'clean' if noise is None else noise.replace(':', '')}"


def train_cell(args, method: str, noise: str | None) -> dict:
    run_dir = cell_dir(args.out, method, noise)
    command = [sys.executable, "-m", "augbench", "train", "--dataset", args.dataset, "--model", args.model,
               "--method", method, "--epochs", str(args.epochs), "--budget", args.budget, "--seed", str(args.seed),
               "--device", args.device, "--no-progress", "--out", str(run_dir)]
    if args.train_subset:
        command += ["--train-subset", str(args.train_subset)]
    if noise is not None:
        command += ["--label-noise", noise]
    subprocess.run(command, check=True)
    record = json.loads((run_dir / "result.json").read_text())
    # Epochs actually trained, fractional when --budget samples ends on a partial epoch.
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    record["seconds_per_epoch"] = record["train_seconds"] / (lines[-1]["step"] / lines[0]["step"])
    return record


def table(records: dict[tuple[str, str | None], dict], methods, noises) -> str:
    def label(noise):
        return "clean" if noise is None else noise

    head = ["method"] + [f"test acc, {label(n)}" for n in noises] + [f"s/epoch, {label(n)}" for n in noises]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in methods:
        cells = [f"`{method}`"]
        cells += [f"{records[method, n]['test_acc']:.2f}" for n in noises]
        cells += [f"{records[method, n]['seconds_per_epoch']:.1f}" for n in noises]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/methods_table"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--model", default="cifar_resnet8")
    parser.add_argument("--train-subset", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--budget", default="epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", default="sym:0.4", help="label noise of the noisy column")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    noises = [None, args.noise]
    records = {(m, n): train_cell(args, m, n) for n in noises for m in args.methods}
    text = table(records, args.methods, noises)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
