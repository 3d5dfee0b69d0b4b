"""Timing the engine's own loops on a few steps: what ``augbench bench`` and ``augbench tune --dry-run`` measure.

Both time the real training loop (loader, method, optimizer, the same code a run executes) on a built setup,
cut to a few steps, and the real evaluation on a slice of images. The first steps of a process are slower
than the rest (workers start, allocations, oneDNN kernels are created for each new shape and dtype, DLB's
first step has nothing to replay), so each measurement runs warm-up steps first and times only the steps after.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from augbench.engine.run import Run


def time_training(setup: Any, steps: int, warmup_steps: int = 3) -> dict[str, float]:
    """Trains ``warmup_steps`` untimed steps of ``setup`` (from ``engine.build``), then ``steps`` timed ones.

    Returns ``seconds_per_step``, ``forward_samples_per_step`` and ``forward_samples_per_second``. A training
    set with fewer batches than asked for gives fewer steps (one epoch's worth); the rates are per step taken.
    """
    with tempfile.TemporaryDirectory(prefix="augbench-timing-") as folder:
        run = Run(dataclasses.replace(setup, steps_per_epoch=warmup_steps, planned_steps=10**9), Path(folder),
                  progress=False, log=lambda _: None)
        run._train_epoch(0)
        before, step = run.forward_samples, run.step
        run.s = dataclasses.replace(run.s, steps_per_epoch=steps)
        metrics = run._train_epoch(1)
        forwarded, taken = run.forward_samples - before, max(run.step - step, 1)
    return {"seconds_per_step": metrics["epoch_seconds"] / taken, "forward_samples_per_step": forwarded / taken,
            "forward_samples_per_second": forwarded / metrics["epoch_seconds"]}


def time_evaluation(setup: Any, images: int) -> float:
    """Seconds per image of the engine's evaluation over the first ``images`` validation (else test) images,
    after an untimed warm-up pass over the same images."""
    data, labels = setup.val if len(setup.val[1]) else setup.test
    count = min(images, len(labels))
    with tempfile.TemporaryDirectory(prefix="augbench-timing-") as folder:
        run = Run(dataclasses.replace(setup, val=(data[:count], labels[:count])), Path(folder), progress=False,
                  log=lambda _: None)
        # Warm-up on the very batches that are timed: oneDNN builds its kernels for each new batch shape, once
        # per run, and a warm-up of another shape left that cost (several times the pass itself) in the timing.
        run._evaluate("val")
        start = time.perf_counter()
        run._evaluate("val")
        return (time.perf_counter() - start) / max(count, 1)
