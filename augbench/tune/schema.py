"""The fields of an experiment file, declared once.

:class:`ExperimentFile` and its sections are read with
:func:`augbench.schema.read`: types, defaults, ranges, unknown fields and
missing ones are checked from these declarations, each error naming the file
and the dotted field (``FILE: field heartbeat.grace: got 5; accepted: whole
seconds > interval (5)``). ``augbench schema experiment`` prints them as JSON
Schema. What needs more than one field or a file on disk (a recipe that
exists for the data set, ``method_args`` for a method of the grid, a search
space's parameters) is :func:`augbench.tune.experiment.parse_experiment`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import timm

from augbench import models
from augbench.config import BUDGETS, FIXED_FIELDS, config_section
from augbench.data import DATASETS, parse_label_noise
from augbench.errors import UsageError
from augbench.methods import METHODS
from augbench.schema import DISTINCT, Invalid, Rule, at_least, between, declared, registered
from augbench.tune.grid import CLEAN, DEFAULT_BUDGET
from augbench.tune.samplers import DEFAULT_SAMPLER, SEARCH_SAMPLERS

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
NAME = Annotated[str, Rule(lambda v: bool(NAME_PATTERN.match(v)),
                           "a name of letters, digits, '_', '.', '-' (it names folders and studies)",
                           json={"pattern": NAME_PATTERN.pattern})]
MODEL = Annotated[str, Rule(timm.is_model, lambda: f"one of augbench's models ({', '.join(models.list_models())}) "
                                                   "or any timm model name")]
RECIPE = Annotated[str, Rule(bool, "a recipe name or a path to a recipe YAML file")]


#: The ways a file may write clean labels in ``label_noise``; all mean no noise.
CLEAN_SPELLINGS = (None, CLEAN, "none")


def _is_noise(value: str | None) -> bool:
    if value in CLEAN_SPELLINGS:
        return True
    try:
        return parse_label_noise(value) is not None
    except UsageError:
        return False


NOISE = Annotated[str | None, Rule(_is_noise, "clean, or sym:R / asym:R with 0 <= R < 1 (e.g. sym:0.4)")]
BUDGET = registered(BUDGETS)


@dataclass(frozen=True)
class SearchSection:
    trials: Annotated[int, at_least(1)] = declared(10, doc="trials per cell that has something to search")
    seed: int = declared(0, doc="the seed every search trial trains with")
    sampler: registered(SEARCH_SAMPLERS) = declared(DEFAULT_SAMPLER, doc="how trials choose parameters "
                                                                         "(augbench/tune/samplers.py)")
    pruner: str | dict[str, Any] = declared("median", accepted="median, hyperband or none, or a mapping with "
                                                              "type: one of them and its options")
    space: dict[str, dict[str, dict[str, Any]]] = declared(
        factory=dict, accepted="a mapping of method to a mapping of parameter to {type: float | int | "
                               "categorical, ...}", doc="what is searched, per method")


@dataclass(frozen=True)
class FinalSection:
    seeds: Annotated[list[int], DISTINCT] = declared(factory=lambda: [0, 1, 2],
                                                     accepted="a non-empty list of distinct integer seeds")


@dataclass(frozen=True)
class HeartbeatSection:
    interval: Annotated[int, at_least(1, "whole seconds >= 1")] = 30
    grace: int = declared(120, accepted="whole seconds > interval")

    def check(self) -> None:
        if self.grace <= self.interval:
            raise Invalid("grace", self.grace, f"whole seconds > interval ({self.interval})")


@dataclass(frozen=True)
class WandbSection:
    project: str = declared("augbench", accepted="a W&B project name")
    mode: Literal["offline", "online"] = declared("offline", accepted="offline or online ($WANDB_MODE overrides it)")


@dataclass(frozen=True)
class DdpSection:
    nproc_per_node: Annotated[int, at_least(1, "an integer >= 1, the processes of each run")] = 1


#: ``fixed``: every RunConfig field an experiment may fix for all its cells, with the field's own type.
FixedSection = config_section("FixedSection", FIXED_FIELDS,
                              "Training hyperparameters fixed for every cell (RunConfig fields; flags of augbench train).",
                              "data, axes, epochs and seeds have their own fields")


@dataclass(frozen=True, kw_only=True)
class ExperimentFile:
    """An experiment file's fields. A protocol's settings stand in for the fields it gives (see ``read``)."""

    name: NAME = declared(doc="names the output folder and the Optuna studies")
    group: NAME = declared(None, doc="experiments of one group share the leaderboard's tables "
                                            "(default: the name)")
    description: str = ""
    protocol: str | None = declared(None, accepted="a protocol name (recipes/protocols/) or the path of a "
                                                   "protocol file", doc="training settings it starts from")
    dataset: registered(DATASETS) = declared(doc="a registered data set (augbench datasets)")
    train_subset: Annotated[int, at_least(1)] | None = declared(
        None, accepted="an integer >= 1, or null for the whole training set", doc="stratified")
    val_fraction: Annotated[float, between(0, 1, "a number in (0, 1): tuning needs a validation split",
                                           open_=True)] = 0.1
    image_size: Annotated[int, between(8, 4096, "an integer in [8, 4096]")] | None = declared(
        None, accepted="an integer in [8, 4096], or null for the data set's native size")
    backbones: Annotated[list[MODEL], DISTINCT] = declared(
        accepted="a non-empty list of distinct model names (augbench models, or any timm model)", required=False,
        doc="required unless the protocol names backbones")
    recipes: Annotated[list[RECIPE], DISTINCT] = declared(
        accepted="a non-empty list of distinct recipe names (recipes/augment/*.yaml) or recipe files")
    methods: Annotated[list[registered(METHODS)], DISTINCT] = declared(
        accepted="a non-empty list of distinct method names (augbench methods)")
    label_noise: Annotated[list[NOISE], DISTINCT] = declared(factory=lambda: [CLEAN])
    budget: BUDGET | Annotated[list[BUDGET], DISTINCT] = declared(
        DEFAULT_BUDGET, accepted=f"{' or '.join(BUDGETS)}, or a list of them (e.g. [epochs, samples])")
    epochs: Annotated[int, at_least(1)] = declared(accepted="an integer >= 1 (or a protocol that gives epochs)",
                                                   required=False, doc="required unless the protocol gives it")
    fixed: FixedSection = declared(factory=FixedSection)
    method_args: dict[str, dict[str, Any]] = declared(factory=dict, doc="arguments per method (augbench methods)")
    search: SearchSection = declared(factory=SearchSection)
    final: FinalSection = declared(factory=FinalSection)
    retries: Annotated[int, at_least(0)] = declared(2, doc="a failed (not pruned) trial is run again up to this "
                                                           "many times")
    heartbeat: HeartbeatSection = declared(factory=HeartbeatSection)
    loader_workers: Annotated[int, at_least(0)] = 0
    wandb: WandbSection = declared(factory=WandbSection)
    ddp: DdpSection = declared(factory=DdpSection)
