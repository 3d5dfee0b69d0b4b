"""How many epochs a pruner saves: the same small search run with the experiment's pruner and with none.

    python scripts/pruning_savings.py [recipes/experiments/pruning_savings.yaml] [--out runs/pruning_savings]

Both searches train the same parameter sets slot by slot (TPE draws its first
trials at random from a seed per slot, and the experiment keeps to that many
trials); the script checks that and prints, per trial, the epochs each search
trained and the best validation accuracy it reached, then the totals.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from augbench.tune.runner import tune
from augbench.tune.storage import DEFAULT_STORAGE_FILE, all_records


def run_variant(base: dict, pruner, out: Path) -> tuple[dict[str, dict], float]:
    spec = {**base, "name": f"{base['name']}_{pruner if isinstance(pruner, str) else pruner['type']}",
            "search": {**base["search"], "pruner": pruner}}
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    started = time.perf_counter()
    tune(str(path), out=str(out / spec["name"]), use_wandb=False)
    seconds = time.perf_counter() - started
    records = all_records(str(out / spec["name"] / DEFAULT_STORAGE_FILE), spec["name"], "search")
    return {r["slot"]: r for r in records}, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default="recipes/experiments/pruning_savings.yaml")
    parser.add_argument("--out", default="runs/pruning_savings")
    args = parser.parse_args()
    base = yaml.safe_load(Path(args.experiment).read_text())
    pruner = base["search"].get("pruner", "median")
    pruned, pruned_seconds = run_variant(base, pruner, Path(args.out))
    unpruned, unpruned_seconds = run_variant(base, "none", Path(args.out))

    print(f"\n{'slot':9s} {'params':44s} {'epochs pruned/unpruned':>22s} {'best val pruned/unpruned':>26s}")
    for slot in sorted(pruned, key=lambda s: int(s.split("-")[1])):
        a, b = pruned[slot], unpruned[slot]
        if a["tuned_params"] != b["tuned_params"]:
            print(f"{slot}: the two searches drew different parameters; the comparison is not paired")
            return 1
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in a["tuned_params"].items())
        print(f"{slot:9s} {params:44s} {a['epochs_trained']:>10d} / {b['epochs_trained']:<10d} "
              f"{a['best_val_acc']:>11.2f}% / {b['best_val_acc']:.2f}%" + ("  pruned" if a["status"] == "pruned" else ""))
    trained = sum(r["epochs_trained"] for r in pruned.values())
    full = sum(r["epochs_trained"] for r in unpruned.values())
    best_pruned = max(r["best_val_acc"] for r in pruned.values() if r["status"] == "finished")
    best_full = max(r["best_val_acc"] for r in unpruned.values())
    seconds = {name: sum(r["train_seconds"] for r in recs.values()) for name, recs in
               (("pruned", pruned), ("unpruned", unpruned))}
    n_pruned = sum(r["status"] == "pruned" for r in pruned.values())
    print(f"\n{len(pruned)} trials, {n_pruned} pruned: {trained} epochs trained with the pruner vs {full} without "
          f"-> {full - trained} epochs saved ({100 * (full - trained) / full:.0f}%)")
    print(f"training time of the search: {seconds['pruned']:.0f}s vs {seconds['unpruned']:.0f}s; wall time of the "
          f"whole tune (search + final run): {pruned_seconds:.0f}s vs {unpruned_seconds:.0f}s")
    print(f"best validation accuracy among completed trials: {best_pruned:.2f}% with the pruner, "
          f"{best_full:.2f}% without")
    return 0


if __name__ == "__main__":
    sys.exit(main())
