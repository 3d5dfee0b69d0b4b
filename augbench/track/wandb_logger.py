"""Weights & Biases logging: one W&B run per training run, as an engine callback.

- ``config`` is the run's full resolved configuration plus what places it in
  an experiment (experiment, cell, phase, trial, tuned parameters);
- every epoch's metrics are logged with the epoch as the step (a resumed run
  first logs the epochs its checkpoint already holds);
- the summary is the result record; the run ends with exit code 0 for a
  finished or pruned run, 1 otherwise.

Runs are offline (folders under the run folder that ``wandb sync`` uploads
later) unless ``$WANDB_MODE`` or the caller says ``online``. Several runs in
one process use ``reinit="create_new"``; W&B works through its own service
process, so DataLoader workers started with ``forkserver`` (what the tuner
asks for when W&B is on) never inherit its state. W&B records the command
line of the process; :func:`redacted_argv` hides storage passwords from it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def wandb_mode(default: str = "offline") -> str:
    """``$WANDB_MODE`` when the user set it, else ``default`` (offline unless the experiment says online)."""
    return os.environ.get("WANDB_MODE") or default


@contextlib.contextmanager
def redacted_argv(redact: Callable[[str], str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = [redact(arg) for arg in saved]
    try:
        yield
    finally:
        sys.argv = saved


def _loggable(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(record, default=str))


class WandbLogger:
    """Logs one run to W&B; ``close`` ends the W&B run when training stopped by an exception.

    An engine callback by its hooks (``on_start``, ``on_epoch_end``, ``on_finish``), so the logger imports
    nothing of the engine (nor torch).
    """

    def __init__(self, run_dir: Path, *, project: str, group: str, job_type: str, name: str,
                 extra_config: dict[str, Any], mode: str = "offline", tags: list[str] | None = None,
                 read_history: Callable[[Path], list[dict[str, Any]]] | None = None,
                 redact: Callable[[str], str] = lambda text: text):
        self.run_dir = Path(run_dir)
        self.options = {"project": project, "group": group, "job_type": job_type, "name": name,
                        "tags": tags or [], "mode": wandb_mode(mode)}
        self.extra_config = extra_config
        self.read_history = read_history
        self.redact = redact
        self.run = None

    def on_start(self, config: dict[str, Any], resumed: bool) -> None:
        import wandb  # lazy: wandb takes seconds to load, and only runs that log need it

        settings = wandb.Settings(console="off", silent=True, disable_git=True, save_code=False)
        with redacted_argv(self.redact):
            self.run = wandb.init(dir=str(self.run_dir), config=_jsonable({**config, **self.extra_config}),
                                  reinit="create_new", settings=settings, **self.options)
        if resumed and self.read_history is not None:
            for metrics in self.read_history(self.run_dir):
                self.run.log(_loggable(metrics), step=metrics["epoch"])

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.log(_loggable(metrics), step=metrics["epoch"])

    def on_finish(self, record: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.summary.update(_jsonable(record))
            self.close(0 if record.get("status") in ("finished", "pruned") else 1)

    def close(self, exit_code: int = 1) -> None:
        if self.run is not None:
            run, self.run = self.run, None
            run.finish(exit_code=exit_code)
