"""The result record of a run (:func:`result_record`) and its provenance fields: versions, commit, device, times.

The record is one JSON object per finished (or failed) run, written by the
engine into the run folder (``augbench.run_folder.RESULT_FILE``). The
leaderboard is built from these records only, so everything a reader needs to
trust or reproduce a number is in there (see DESIGN.md).
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import resource
import subprocess
from pathlib import Path
from typing import Any

import numpy
import timm
import torch

import augbench


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    return {"augbench": augbench.__version__, "torch": torch.__version__, "timm": timm.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the augbench source tree, with ``+dirty`` when it has local changes; None outside git."""
    root = Path(augbench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def device_name(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def result_record(run, status: str, reason: str | None) -> dict[str, Any]:
    """The result record of ``run`` (an ``augbench.engine.run.Run``) as it stands, ended with ``status``."""
    s, cfg = run.s, run.s.config
    last = run.history[-1] if run.history else {}
    best = run.best
    record = {
        "dataset": cfg.dataset, "model": cfg.model, "recipe": s.recipe.name, "recipe_spec": s.recipe.spec,
        "method": cfg.method, "method_args": s.method.args, "hyperparameters": cfg.hyperparameters(),
        "seed": cfg.seed,
        "epochs": cfg.epochs, "epochs_trained": len(run.history), "budget": cfg.budget,
        **s.sizes, "data_splits": s.data_splits, "label_noise": s.label_noise,
        "test_acc": last.get("test_acc"), "test_acc_at_best_val": last.get("test_acc_at_best_val"),
        "best_val_acc": best["val_acc"] if best else None, "best_val_epoch": best["epoch"] if best else None,
        "val_acc": last.get("val_acc"), "test_nll": last.get("test_nll"), "test_ece": last.get("test_ece"),
        "forward_samples": run.forward_samples, "train_seconds": run.train_seconds,
        "eval_seconds": sum(m.get("eval_seconds", 0.0) + m.get("test_seconds", 0.0) for m in run.history),
        "samples_per_second": run.forward_samples / run.train_seconds if run.train_seconds else None,
        "peak_memory_mb": peak_memory_mb(s.device), "device": device_name(s.device),
        "versions": versions(), "git_commit": git_commit(), "started_at": run.started_at,
        "finished_at": now_iso(), "status": status, "reason": reason, "world_size": run.world.size,
        "config": cfg.to_dict(), "command": run.command,
    }
    record.update(run.extra_record)
    return record
