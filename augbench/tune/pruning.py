"""Pruning: the engine reports each epoch's validation accuracy to the Optuna trial, which may stop it.

The pruner (median or Hyperband, chosen in the experiment file) compares a
trial's validation accuracy at an epoch with other trials of the same cell at
that epoch. A pruned run ends with ``status: pruned`` in its record, is told
to Optuna as PRUNED, and is never retried.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from augbench.engine import Callback, EarlyStop
from augbench.run_folder import METRICS_FILE


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch metric lines of a run folder (after a resume: those of the restored checkpoint)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class PruningCallback(Callback):
    """Reports ``val_acc`` per epoch to ``trial`` and raises ``EarlyStop("pruned")`` when it should stop."""

    def __init__(self, trial, run_dir: Path, pruner_name: str):
        self.trial, self.run_dir, self.pruner_name = trial, Path(run_dir), pruner_name

    def on_start(self, config: dict[str, Any], resumed: bool) -> None:
        # A retried trial is a new Optuna trial: give it the curve its predecessor already trained.
        if resumed:
            for metrics in read_metrics(self.run_dir):
                self.trial.report(metrics["val_acc"], metrics["epoch"])

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        epoch, value = metrics["epoch"], metrics["val_acc"]
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise EarlyStop("pruned", f"{self.pruner_name} pruner at epoch {epoch}: validation accuracy "
                                      f"{value:.2f}% is below what other trials of this cell reached")
