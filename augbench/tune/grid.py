"""The grid of an experiment: its cells, and the validated experiment that lists them.

A cell is one point of the grid (data set x backbone x recipe x method x
label noise x budget), tuned in its own Optuna study; :class:`Experiment`
holds what an experiment file resolved to and gives each cell's run
configuration (:meth:`Experiment.run_config`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augbench.config import FIXED_FIELDS, RunConfig
from augbench.methods import METHODS
from augbench.tune.pruning import PrunerSpec
from augbench.tune.samplers import DEFAULT_SAMPLER
from augbench.tune.space import Param

#: Training hyperparameters a search space may vary (``milestones`` is a list, which Optuna cannot choose).
SEARCHABLE_FIELDS = tuple(f for f in FIXED_FIELDS if f != "milestones")
CLEAN = "clean"
DEFAULT_BUDGET = "epochs"
#: Protocol settings that are an experiment's own top-level fields (the experiment's value wins).
PROTOCOL_TOP_LEVEL = ("epochs", "budget", "train_subset", "val_fraction", "image_size")


def noise_tag(label_noise: str | None) -> str:
    return CLEAN if label_noise is None else label_noise.replace(":", "")


@dataclass(frozen=True)
class Cell:
    """One point of the grid; tuned in its own Optuna study."""

    dataset: str
    model: str
    recipe: str
    method: str
    label_noise: str | None
    budget: str = DEFAULT_BUDGET

    @property
    def id(self) -> str:
        """A file-system-safe id, e.g. ``fashion_mnist.cifar_resnet8.cutout.dlb.clean`` (``...clean.samples``)."""
        parts = (self.dataset, self.model, Path(self.recipe).stem if self.recipe.endswith(".yaml") else self.recipe,
                 self.method, noise_tag(self.label_noise))
        if self.budget != DEFAULT_BUDGET:
            parts += (self.budget,)
        return ".".join(re.sub(r"[^A-Za-z0-9_.-]+", "-", p) for p in parts)

    def axes(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "model": self.model, "recipe": self.recipe, "method": self.method,
                "label_noise": self.label_noise, "budget": self.budget}


@dataclass
class Experiment:
    """A validated experiment file. ``to_dict`` writes the resolved form, defaults included."""

    name: str
    source: str
    dataset: str
    backbones: list[str]
    recipes: list[str]
    methods: list[str]
    epochs: int
    description: str = ""
    group: str = ""  # the leaderboard pools the runs of experiments with one group into one set of tables
    train_subset: int | None = None
    val_fraction: float = 0.1
    image_size: int | None = None
    label_noise: list[str | None] = field(default_factory=lambda: [None])
    budgets: list[str] = field(default_factory=lambda: [DEFAULT_BUDGET])
    protocol: str | None = None
    protocol_settings: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    trials: int = 10
    search_seed: int = 0
    sampler: str = DEFAULT_SAMPLER
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    space: dict[str, dict[str, Param]] = field(default_factory=dict)
    final_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    retries: int = 2
    heartbeat_interval: int = 30
    heartbeat_grace: int = 120
    loader_workers: int = 0
    wandb_project: str = "augbench"
    wandb_mode: str = "offline"
    ddp_processes: int = 1  # ddp.nproc_per_node: processes per run (part of the definition: DDP changes results)

    def cells(self) -> list[Cell]:
        """Every cell of the grid, less the repeats: a method that forwards each sample once per epoch trains
        exactly the same run under the samples budget as under epochs, so with both budgets it runs once, under
        epochs (the leaderboard pairs the samples budget's gains with those runs)."""
        return [Cell(self.dataset, model, recipe, method, noise, budget) for model in self.backbones
                for recipe in self.recipes for method in self.methods for noise in self.label_noise
                for budget in self.budgets if not self._repeats_epochs(method, budget)]

    def _repeats_epochs(self, method: str, budget: str) -> bool:
        return (budget == "samples" and "epochs" in self.budgets and method in METHODS
                and METHODS[method].forward_passes_per_sample == 1)

    @property
    def table_group(self) -> str:
        """The group whose leaderboard tables this experiment's runs fill: ``group``, else its own name."""
        return self.group or self.name

    def default_out(self) -> Path:
        """runs/NAME, or runs/GROUP/NAME for a part of a group, so that one folder holds the group's runs."""
        return Path("runs") / self.name if self.table_group == self.name else Path("runs") / self.table_group / self.name

    def space_for(self, method: str) -> dict[str, Param]:
        return self.space.get(method, {})

    def run_config(self, cell: Cell, params: dict[str, Any], seed: int) -> RunConfig:
        """The configuration of one run of ``cell`` with searched ``params`` and ``seed``."""
        fields = {**self.protocol_settings, **self.fixed}
        method_args = dict(self.method_args.get(cell.method, {}))
        for name, value in params.items():
            (fields if name in SEARCHABLE_FIELDS else method_args)[name] = value
        return RunConfig(dataset=cell.dataset, model=cell.model, method=cell.method, method_args=method_args,
                         recipe=cell.recipe, epochs=self.epochs, budget=cell.budget, seed=seed,
                         protocol=self.protocol,
                         val_fraction=self.val_fraction, train_subset=self.train_subset,
                         image_size=self.image_size,
                         label_noise=cell.label_noise, **fields).with_milestones_written()

    def to_dict(self) -> dict[str, Any]:
        protocol = {"protocol": {"name": self.protocol, "settings": dict(self.protocol_settings)}} \
            if self.protocol else {}  # absent without one, so definitions written before protocols keep their hash
        return {
            **protocol,
            "name": self.name, "group": self.table_group, "description": self.description,
            "dataset": self.dataset,
            "train_subset": self.train_subset, "val_fraction": self.val_fraction, "image_size": self.image_size,
            "backbones": list(self.backbones), "recipes": list(self.recipes), "methods": list(self.methods),
            "label_noise": [noise or CLEAN for noise in self.label_noise],
            "budget": self.budgets[0] if len(self.budgets) == 1 else list(self.budgets), "epochs": self.epochs,
            "fixed": dict(self.fixed),
            "method_args": {m: dict(a) for m, a in self.method_args.items()},
            "search": {"trials": self.trials, "seed": self.search_seed, "pruner": self.pruner.to_dict(),
                       # Absent for the default, so definitions written before samplers keep their hash.
                       **({"sampler": self.sampler} if self.sampler != DEFAULT_SAMPLER else {}),
                       "space": {m: {n: p.to_dict() for n, p in ps.items()} for m, ps in self.space.items()}},
            "final": {"seeds": list(self.final_seeds)},
            "retries": self.retries,
            "heartbeat": {"interval": self.heartbeat_interval, "grace": self.heartbeat_grace},
            "loader_workers": self.loader_workers,
            "wandb": {"project": self.wandb_project, "mode": self.wandb_mode},
            # Absent for one process, so definitions written before DDP keep their hash.
            **({"ddp": {"nproc_per_node": self.ddp_processes}} if self.ddp_processes > 1 else {}),
        }

    def definition(self) -> dict[str, Any]:
        """What determines the runs and the plan; workers must agree on it (not on logging or heartbeats)."""
        d = self.to_dict()
        for operational in ("group", "description", "heartbeat", "loader_workers", "wandb"):
            d.pop(operational)
        return d

    def definition_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.definition(), sort_keys=True).encode()).hexdigest()[:16]
