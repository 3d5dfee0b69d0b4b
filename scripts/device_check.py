"""Checks the batched data path on a CUDA device (run it where a GPU is lent).

1. **No host synchronisation.** Every registered batch op runs on a CUDA
   batch with a CUDA generator under ``torch.cuda.set_sync_debug_mode("error")``:
   any read back to the host or blocking copy raises.
2. **The accelerator path equals the CPU path.** For AutoAugment, RandAugment
   and TrivialAugment the per-sample draws are made once on the CPU; the CPU
   applies them grouped by operation (``apply_ops(grouped=True)``), the GPU
   applies them with ``torch.where`` over the whole batch. The outputs are
   compared pixel for pixel (the CPU path itself is tested against
   torchvision in ``tests/test_policy_ops.py``).
3. **The CUDA graph replays the same pixels.** Each batched policy, called
   with the same generator state, with its CUDA graph and without
   (``cuda_graphs``), must give identical batches, at the first call (the
   capture) and at later ones (replays of new inputs); the time per call of
   each is reported.
4. **Host reads per training epoch.** The engine's own training loop
   (``Run._train_epoch``) runs 20 steps per recipe x method under
   ``set_sync_debug_mode("warn")``; the warnings are counted. The loop reads
   its sums once per epoch, so the count must not grow with the steps: it is
   measured at 10 and at 20 steps.

Usage: ``python scripts/device_check.py [--json OUT]``. Exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from augbench.augment.ops import OP_KINDS, OPS, fill_values
from augbench.augment.policy_ops import apply_steps
from augbench.config import RunConfig
from augbench.engine.run import Run, build


def _batch(channels: int, size: int, n: int = 256) -> torch.Tensor:
    g = torch.Generator().manual_seed(channels * 100 + size)
    return torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)


def no_sync(device: torch.device) -> dict[str, str]:
    """Each batch op once on ``device`` under the sync debugger: 'ok' or the error it raised."""
    out = {}
    for name, kind in sorted(OP_KINDS.items()):
        if kind != "batch":
            continue
        op = OPS[name]()
        images = _batch(3, 32).to(device)
        generator = torch.Generator(device=device).manual_seed(0)
        op(images, generator)  # the first call may build cached tables (host copies allowed once)
        torch.cuda.synchronize(device)
        torch.cuda.set_sync_debug_mode("error")
        try:
            result = op(images, generator)
            out[name] = "ok" if result.shape == images.shape and result.dtype == images.dtype else \
                f"wrong output: {tuple(result.shape)} {result.dtype}"
        except RuntimeError as e:
            out[name] = f"sync: {str(e).splitlines()[0]}"
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return out


def paths_equal(device: torch.device) -> dict[str, dict[str, float]]:
    """Per policy and input shape: the fraction of pixels where the GPU path differs from the CPU path."""
    out = {}
    for name in ("autoaugment", "randaugment", "trivialaugment"):
        policy = OPS[name]()
        for channels, size in ((1, 28), (3, 32)):
            images = _batch(channels, size)
            b = images.shape[0]
            names = policy.table(size, size, "cpu").names
            fill = fill_values(policy._fill, channels)
            steps = policy.draw(b, size, size, torch.Generator().manual_seed(1), "cpu")
            cpu = apply_steps(images, steps, names, fill, grouped=True)
            gpu = apply_steps(images.to(device), [(i.to(device), m.to(device)) for i, m in steps], names, fill,
                              grouped=False).cpu()
            out[f"{name} {channels}x{size}x{size}"] = {
                "pixels_differing": (cpu != gpu).float().mean().item(),
                "max_abs_difference": (cpu.int() - gpu.int()).abs().max().item()}
    return out


def graphs_equal(device: torch.device, b: int = 512) -> dict[str, dict]:
    """Per policy: whether the graphed calls equal the eager ones, and each one's milliseconds per call."""
    out = {}
    for name in ("autoaugment", "randaugment", "trivialaugment"):
        graphed, eager = OPS[name](), OPS[name]()
        eager.cuda_graphs = False
        same, ms = True, {}
        for op, label in ((graphed, "graphed"), (eager, "eager")):
            generator = torch.Generator(device=device).manual_seed(0)
            results = [op(_batch(3, 32, b).to(device), generator) for _ in range(3)]
            if label == "graphed":
                first = results
            else:
                same = all(torch.equal(x, y) for x, y in zip(first, results))
            images = _batch(3, 32, b).to(device)
            torch.cuda.synchronize(device)
            start = time.perf_counter()
            for _ in range(20):
                op(images, generator)
            torch.cuda.synchronize(device)
            ms[label] = (time.perf_counter() - start) / 20 * 1e3
        out[name] = {"equal": same, "ms_per_call": ms}
    return out


def syncs_per_epoch(device: torch.device, recipes=("baseline", "mixup", "cutmix", "autoaugment"),
                    methods=("ce", "dlb")) -> dict[str, dict[int, int]]:
    """Per recipe/method: the synchronisations the sync debugger reports in one epoch of 10 and of 20 steps."""
    out = {}
    for recipe in recipes:
        for method in methods:
            config = RunConfig(dataset="synthetic", model="cifar_resnet18", recipe=recipe, method=method,
                               batch_size=128, epochs=2, bf16=True)
            setup = build(config, device=str(device), num_workers=0)
            counts = {}
            with tempfile.TemporaryDirectory() as folder:
                for steps in (10, 20):
                    run = Run(dataclasses.replace(setup, steps_per_epoch=steps, planned_steps=10**9), Path(folder),
                              progress=False, log=lambda _: None)
                    run._train_epoch(0)  # warm-up: first-call allocations and tables
                    torch.cuda.synchronize(device)
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        torch.cuda.set_sync_debug_mode("warn")
                        try:
                            run._train_epoch(1)
                        finally:
                            torch.cuda.set_sync_debug_mode("default")
                    counts[steps] = sum("synchroniz" in str(w.message) for w in caught)
            setup.loader.close()
            out[f"{recipe}/{method}"] = counts
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("scripts/device_check.py: no CUDA device is available", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    result = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__,
              "no_sync": no_sync(device), "paths_equal": paths_equal(device),
              "graphs_equal": graphs_equal(device), "syncs_per_epoch": syncs_per_epoch(device)}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    failed = [k for k, v in result["no_sync"].items() if v != "ok"] + \
             [k for k, v in result["paths_equal"].items() if v["pixels_differing"] > 0] + \
             [k for k, v in result["syncs_per_epoch"].items() if v[20] > v[10]] + \
             [k for k, v in result["graphs_equal"].items() if not v["equal"]]
    print("failed: " + (", ".join(failed) if failed else "none"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
