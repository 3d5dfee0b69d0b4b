"""Pruning: the pruners an experiment can name, and the callback through which a trial reports to one.

``PRUNERS`` maps a name (``search.pruner`` in an experiment file) to its
options and the Optuna pruner it builds. The engine reports each epoch's
validation accuracy to the Optuna trial, which may stop it: the pruner (median or Hyperband, chosen in the experiment file) compares a
trial's validation accuracy at an epoch with other trials of the same cell at
that epoch. A pruned run ends with ``status: pruned`` in its record, is told
to Optuna as PRUNED, and is never retried.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import optuna

from augbench.engine import Callback, EarlyStop
from augbench.run_folder import METRICS_FILE
from augbench.schema import at_least, read_tagged


@dataclass(frozen=True)
class MedianOptions:
    type: str = "median"
    startup_trials: Annotated[int, at_least(0)] = 3
    warmup_epochs: Annotated[int, at_least(0)] = 1


@dataclass(frozen=True)
class HyperbandOptions:
    type: str = "hyperband"
    min_epochs: Annotated[int, at_least(0)] = 1
    reduction_factor: Annotated[int, at_least(2)] = 3


@dataclass(frozen=True)
class NoOptions:
    type: str = "none"


@dataclass(frozen=True)
class PrunerType:
    """A pruner by name: its declared options (with defaults), how to build the Optuna pruner, and how a page
    names it with its options (``describe``)."""

    options: type
    build: Any
    doc: str
    describe: Any


def _median(o):
    return optuna.pruners.MedianPruner(n_startup_trials=o["startup_trials"], n_warmup_steps=o["warmup_epochs"])


def _hyperband(o):
    return optuna.pruners.HyperbandPruner(min_resource=o["min_epochs"], max_resource="auto",
                                          reduction_factor=o["reduction_factor"])


def _no_pruner(o):
    return optuna.pruners.NopPruner()


PRUNERS: dict[str, PrunerType] = {
    # Optuna's MedianPruner may stop a trial at a step >= n_warmup_steps; augbench reports epochs from 1.
    "median": PrunerType(MedianOptions, _median,
                         "stops a trial whose validation accuracy at an epoch is below the median of earlier "
                         "trials at that epoch (after startup_trials trials and warmup_epochs epochs)",
                         lambda o: f"median pruner from epoch {max(o['warmup_epochs'], 1)} after "
                                   f"{o['startup_trials']} finished trials"),
    "hyperband": PrunerType(HyperbandOptions, _hyperband,
                            "Hyperband (Li et al., JMLR 2018): successive halving over brackets of epochs",
                            lambda o: f"Hyperband pruner from epoch {max(o['min_epochs'], 1)}"),
    "none": PrunerType(NoOptions, _no_pruner, "every trial trains all its epochs", lambda o: "no pruner"),
}


def _options(instance: Any) -> dict[str, int]:
    return {k: v for k, v in dataclasses.asdict(instance).items() if k != "type"}


@dataclass(frozen=True)
class PrunerSpec:
    type: str = "median"
    options: dict[str, int] = field(default_factory=lambda: _options(MedianOptions()))

    def build(self):
        return PRUNERS[self.type].build(self.options)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.options}


def parse_pruner(value: str | dict[str, Any], source: str, where: str) -> PrunerSpec:
    """``search.pruner``: a pruner's name, or a mapping with ``type`` and the pruner's options."""
    spec = {"type": value} if isinstance(value, str) else value
    options = read_tagged({name: kind.options for name, kind in PRUNERS.items()}, spec, source, where)
    return PrunerSpec(options.type, _options(options))


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
        self.epochs: int | None = None  # the run's last epoch, from its configuration

    def on_start(self, config: dict[str, Any], resumed: bool) -> None:
        self.epochs = config.get("epochs")
        # A retried trial is a new Optuna trial: give it the curve its predecessor already trained.
        if resumed:
            for metrics in read_metrics(self.run_dir):
                self.trial.report(metrics["val_acc"], metrics["epoch"])

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        epoch, value = metrics["epoch"], metrics["val_acc"]
        self.trial.report(value, epoch)
        # At the last epoch the run is trained: stopping it then saves nothing and would drop a finished trial.
        if epoch != self.epochs and self.trial.should_prune():
            raise EarlyStop("pruned", f"{self.pruner_name} pruner at epoch {epoch}: validation accuracy "
                                      f"{value:.2f}% is below what other trials of this cell reached")
