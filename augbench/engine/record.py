"""The provenance fields of a result record: versions, commit, device and times.

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
import subprocess
from pathlib import Path

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
