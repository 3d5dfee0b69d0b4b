"""Pruning: the pruners an experiment can name.

``PRUNERS`` maps a name (``search.pruner`` in an experiment file) to its
options, the Optuna pruner it builds and how a page names it. This module
imports nothing that trains, so a leaderboard can describe a search with it;
the callback through which a running trial reports to its pruner is
``augbench.tune.worker.PruningCallback``. The engine reports each epoch's
validation accuracy to the Optuna trial, which may stop it: the pruner
(median or Hyperband, chosen in the experiment file) compares a trial's
validation accuracy at an epoch with other trials of the same cell at that
epoch. A pruned run ends with ``status: pruned`` in its record, is told
to Optuna as PRUNED, and is never retried.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any

import optuna

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
