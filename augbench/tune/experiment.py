"""Experiment files (``recipes/experiments/*.yaml``): a grid of cells, each tuned on validation data.

An experiment names a data set and its split sizes, the axes of the grid
(backbones x recipes x methods x label noise x budgets), fixed
hyperparameters, a search space per method, the trials per cell, the pruner
and the seeds of the final phase::

    name: dlb_vs_ce
    protocol: cpu_short          # optional: training settings from recipes/protocols/ (augbench/protocol.py)
    dataset: fashion_mnist
    train_subset: 8000           # stratified; omit for the whole training set
    val_fraction: 0.1            # held out from train, what the search optimises
    image_size: 32               # optional: every image brought to 32x32 (shorter side, centre crop)
    backbones: [cifar_resnet8]
    recipes: [baseline, cutout]
    methods: [ce, dlb]
    label_noise: [clean, "sym:0.4"]
    budget: [epochs, samples]    # one budget, or several: each is an axis of the grid
    epochs: 10
    fixed: {batch_size: 128, lr: 0.1}
    method_args: {dlb: {forward: separate}}
    search:
      trials: 12                 # per cell that has something to search
      seed: 0                    # the seed every search trial trains with
      pruner: median             # median | hyperband | none, or {type: median, startup_trials: 5, ...}
      space:
        dlb:
          temperature: {type: float, low: 1.0, high: 8.0}
          alpha: {type: float, low: 0.1, high: 4.0, log: true}
          lr: {type: float, low: 0.02, high: 0.2, log: true}
    final:
      seeds: [0, 1, 2]
    retries: 2                   # a failed (not pruned) trial is run again up to this many times
    heartbeat: {interval: 30, grace: 120}
    loader_workers: 0
    wandb: {project: augbench, mode: offline}
    ddp: {nproc_per_node: 2}     # optional: each run on 2 processes (torchrun, DDP); `augbench worker` launches them

Values resolve as for ``augbench train --protocol``: RunConfig's defaults,
then the protocol's settings (and its backbones when ``backbones`` is left
out), then the experiment's own fields and ``fixed``. ``budget: [epochs,
samples]`` runs every cell under both budgets, so that methods that forward
each sample twice (DLB, CS-KD) are compared with CE at equal epochs and at
equal forward samples; a cell's id ends in ``.samples`` under the samples
budget (ids under ``epochs`` are those of single-budget experiments).

A search-space parameter is a training hyperparameter (one of
``SEARCHABLE_FIELDS``) or an argument of that method (``augbench methods``).
A cell whose method has no search space is not searched: nothing would be
chosen, so it goes straight to the final phase.

Loading checks everything that needs no data; :func:`preflight` then builds
one run per axis value, so a data set, backbone, recipe or method that cannot
be built is reported before anything is written. Errors name the file, the
field and what is accepted (UsageError, exit status 2).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import timm
import yaml

from augbench import models
from augbench.augment.recipe import load_recipe
from augbench.config import BUDGETS, RunConfig
from augbench.data import list_datasets, parse_label_noise
from augbench.engine import build
from augbench.errors import UsageError
from augbench.methods import METHODS, create_method, get_method
from augbench.protocol import list_protocols, load_protocol

if typing.TYPE_CHECKING:
    from augbench.protocol import Protocol

#: Training hyperparameters an experiment may fix for every cell (each has an ``augbench train`` flag).
FIXED_FIELDS = ("batch_size", "lr", "momentum", "weight_decay", "schedule", "milestones", "gamma",
                "warmup_epochs", "channels_last", "bf16")
#: Training hyperparameters a search space may vary (``milestones`` is a list, which Optuna cannot choose).
SEARCHABLE_FIELDS = tuple(f for f in FIXED_FIELDS if f != "milestones")
CLEAN = "clean"
DEFAULT_BUDGET = "epochs"
#: Protocol settings that are an experiment's own top-level fields (the experiment's value wins).
PROTOCOL_TOP_LEVEL = ("epochs", "budget", "train_subset", "val_fraction", "image_size")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# -- reading fields with their location ----------------------------------------------------------

class _Section:
    """One mapping of an experiment file; every error names the file and the dotted field."""

    def __init__(self, data: Any, source: str, where: str = ""):
        self.source, self.where = source, where
        if not isinstance(data, dict):
            self.fail(where or "(top level)", data, "a mapping of field: value")
        self.data, self.used = data, set()

    def path(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, where: str, value: Any, accepted: str) -> None:
        raise UsageError(f"{self.source}: field {where}: got {value!r}; accepted: {accepted}")

    def get(self, name: str, default: Any = ..., *, kind: type | tuple = object, accepted: str = "") -> Any:
        self.used.add(name)
        if name not in self.data:
            if default is ...:
                raise UsageError(f"{self.source}: field {self.path(name)} is missing; accepted: {accepted}")
            return default
        value = self.data[name]
        if not _is(value, kind):
            self.fail(self.path(name), value, accepted)
        return value

    def section(self, name: str, default: dict | None = None) -> _Section:
        value = self.get(name, {} if default is None else default, kind=dict, accepted="a mapping")
        return _Section(value, self.source, self.path(name))

    def names(self, name: str, default: Any = ..., accepted: str = "") -> list[Any]:
        value = self.get(name, default, kind=list, accepted=f"a non-empty list of {accepted}")
        if not value:
            self.fail(self.path(name), value, f"a non-empty list of {accepted}")
        if len({json.dumps(v) for v in value}) != len(value):
            self.fail(self.path(name), value, "a list without repeated entries")
        return value

    def finish(self, accepted: tuple[str, ...] | None = None) -> None:
        unknown = sorted(set(self.data) - (set(accepted) if accepted is not None else self.used), key=str)
        if unknown:
            known = sorted(accepted if accepted is not None else self.used)
            raise UsageError(f"{self.source}: unknown field {self.path(str(unknown[0]))}; accepted: "
                             f"{', '.join(known)}")


def _is(value: Any, kind: type | tuple) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # YAML's `yes` is not a number
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


# -- search-space parameters ---------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One searched parameter: an Optuna distribution, suggested by name in a trial."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        return PARAM_TYPES[self.type].suggest(self, trial)

    def extremes(self) -> list[Any]:
        """The values a check must accept: both bounds, or every choice."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]

    def to_dict(self) -> dict[str, Any]:
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        spec = {"type": self.type, "low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            spec["step"] = self.step
        return spec


@dataclass(frozen=True)
class ParamType:
    parse: Any
    suggest: Any


def _parse_range(spec: _Section, name: str, kind: type) -> Param:
    accepted = "an integer" if kind is int else "a number"
    low = spec.get("low", kind=kind, accepted=accepted)
    high = spec.get("high", kind=kind, accepted=accepted)
    log = spec.get("log", False, kind=bool, accepted="true or false")
    step = spec.get("step", None, kind=(kind, type(None)), accepted=f"{accepted} > 0")
    if not low < high:
        spec.fail(spec.path("high"), high, f"a value greater than low ({low})")
    if log and low <= 0:
        spec.fail(spec.path("low"), low, "a value > 0 when log is true")
    if step is not None and (step <= 0 or log):
        spec.fail(spec.path("step"), step, f"{accepted} > 0, and no step when log is true")
    spec.finish(("type", "low", "high", "log", "step"))
    return Param(name, "int" if kind is int else "float", low, high, log, step)


def _parse_categorical(spec: _Section, name: str) -> Param:
    choices = spec.names("choices", accepted="numbers, strings or booleans")
    for choice in choices:
        if not isinstance(choice, (int, float, str, bool)):
            spec.fail(spec.path("choices"), choice, "numbers, strings or booleans")
    spec.finish(("type", "choices"))
    return Param(name, "categorical", choices=tuple(choices))


PARAM_TYPES: dict[str, ParamType] = {
    "float": ParamType(lambda spec, name: _parse_range(spec, name, float),
                       lambda p, trial: trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)),
    "int": ParamType(lambda spec, name: _parse_range(spec, name, int),
                     lambda p, trial: trial.suggest_int(p.name, p.low, p.high, log=p.log, step=p.step or 1)),
    "categorical": ParamType(_parse_categorical,
                             lambda p, trial: trial.suggest_categorical(p.name, list(p.choices))),
}


# -- pruners -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PrunerType:
    """A pruner by name: its options with defaults and how to build the Optuna pruner."""

    options: dict[str, int]
    build: Any
    doc: str


def _median(o):
    return optuna.pruners.MedianPruner(n_startup_trials=o["startup_trials"], n_warmup_steps=o["warmup_epochs"])


def _hyperband(o):
    return optuna.pruners.HyperbandPruner(min_resource=o["min_epochs"], max_resource="auto",
                                          reduction_factor=o["reduction_factor"])


def _no_pruner(o):
    return optuna.pruners.NopPruner()


PRUNERS: dict[str, PrunerType] = {
    "median": PrunerType({"startup_trials": 3, "warmup_epochs": 1}, _median,
                         "stops a trial whose validation accuracy at an epoch is below the median of earlier "
                         "trials at that epoch (after startup_trials trials and warmup_epochs epochs)"),
    "hyperband": PrunerType({"min_epochs": 1, "reduction_factor": 3}, _hyperband,
                            "Hyperband (Li et al., JMLR 2018): successive halving over brackets of epochs"),
    "none": PrunerType({}, _no_pruner, "every trial trains all its epochs"),
}


@dataclass(frozen=True)
class PrunerSpec:
    type: str = "median"
    options: dict[str, int] = field(default_factory=lambda: dict(PRUNERS["median"].options))

    def build(self):
        return PRUNERS[self.type].build(self.options)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.options}


def _parse_pruner(section: _Section) -> PrunerSpec:
    accepted = f"{', '.join(PRUNERS)}, or a mapping with type: one of them and its options"
    value = section.get("pruner", "median", kind=(str, dict), accepted=accepted)
    spec = _Section({"type": value} if isinstance(value, str) else value, section.source, section.path("pruner"))
    kind = spec.get("type", kind=str, accepted=", ".join(PRUNERS))
    if kind not in PRUNERS:
        spec.fail(spec.path("type"), kind, ", ".join(PRUNERS))
    options = {}
    for option, default in PRUNERS[kind].options.items():
        options[option] = spec.get(option, default, kind=int, accepted="an integer >= 0")
        if options[option] < (2 if option == "reduction_factor" else 0):
            spec.fail(spec.path(option), options[option], "an integer >= 0 (reduction_factor: >= 2)")
    spec.finish(("type", *PRUNERS[kind].options))
    return PrunerSpec(kind, options)


# -- cells and the experiment --------------------------------------------------------------------

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
            "name": self.name, "description": self.description, "dataset": self.dataset,
            "train_subset": self.train_subset, "val_fraction": self.val_fraction, "image_size": self.image_size,
            "backbones": list(self.backbones), "recipes": list(self.recipes), "methods": list(self.methods),
            "label_noise": [noise or CLEAN for noise in self.label_noise],
            "budget": self.budgets[0] if len(self.budgets) == 1 else list(self.budgets), "epochs": self.epochs,
            "fixed": dict(self.fixed),
            "method_args": {m: dict(a) for m, a in self.method_args.items()},
            "search": {"trials": self.trials, "seed": self.search_seed, "pruner": self.pruner.to_dict(),
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
        for operational in ("description", "heartbeat", "loader_workers", "wandb"):
            d.pop(operational)
        return d

    def definition_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.definition(), sort_keys=True).encode()).hexdigest()[:16]


# -- loading -------------------------------------------------------------------------------------

def load_experiment(path: str | Path) -> Experiment:
    """Reads and validates an experiment file; raises UsageError naming file, field and what is accepted."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise UsageError(f"{source}: experiment file not found (see recipes/experiments/ for examples)")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UsageError(f"{source}: not valid YAML ({str(err).splitlines()[0]})") from None
    return parse_experiment(data, source)


def parse_experiment(data: Any, source: str) -> Experiment:
    top = _Section(data, source)
    name = top.get("name", kind=str, accepted="a name of letters, digits, '_', '.', '-'")
    if not NAME_PATTERN.match(name):
        top.fail("name", name, "a name of letters, digits, '_', '.', '-' (it names folders and studies)")
    description = top.get("description", "", kind=str, accepted="text")
    dataset = top.get("dataset", kind=str, accepted=", ".join(list_datasets()))
    if dataset not in list_datasets():
        top.fail("dataset", dataset, ", ".join(list_datasets()))
    protocol = _parse_protocol(top)
    # A protocol's settings stand in for fields the experiment leaves out; the experiment's own fields win.
    defaults = protocol.settings if protocol is not None else {}
    train_subset = top.get("train_subset", defaults.get("train_subset"), kind=(int, type(None)), accepted="an integer >= 1, or null")
    if train_subset is not None and train_subset < 1:
        top.fail("train_subset", train_subset, "an integer >= 1, or null for the whole training set")
    val_fraction = top.get("val_fraction", defaults.get("val_fraction", 0.1), kind=float, accepted="a number in (0, 1)")
    if not 0 < val_fraction < 1:
        top.fail("val_fraction", val_fraction, "a number in (0, 1): tuning needs a validation split")
    image_size = top.get("image_size", defaults.get("image_size"), kind=(int, type(None)), accepted="an integer in [8, 4096], or null")
    if image_size is not None and not 8 <= image_size <= 4096:
        top.fail("image_size", image_size, "an integer in [8, 4096], or null for the data set's native size")

    backbones = top.names("backbones", list(protocol.backbones) if protocol and protocol.backbones else ...,
                          accepted="model names (`augbench models`, or any timm model)")
    _check_models(top, backbones)
    recipes = top.names("recipes", accepted="recipe names (recipes/augment/*.yaml) or recipe files")
    for i, recipe in enumerate(recipes):
        if not isinstance(recipe, str) or not recipe:
            top.fail(f"recipes[{i}]", recipe, "a recipe name or a path to a recipe YAML file")
        try:
            load_recipe(recipe, dataset=dataset)
        except UsageError as err:
            raise UsageError(f"{source}: field recipes[{i}]: {err}") from None
    methods = top.names("methods", accepted=", ".join(sorted(METHODS)))
    for i, method in enumerate(methods):
        if method not in METHODS:
            top.fail(f"methods[{i}]", method, ", ".join(sorted(METHODS)))
    label_noise = [_parse_noise(top, i, v) for i, v in
                   enumerate(top.names("label_noise", [CLEAN], accepted="clean, sym:R or asym:R"))]
    if len(set(label_noise)) != len(label_noise):
        top.fail("label_noise", top.data["label_noise"], "a list without repeated entries")

    budgets = _parse_budgets(top, defaults.get("budget", DEFAULT_BUDGET))
    epochs = top.get("epochs", defaults.get("epochs", ...), kind=int,
                     accepted="an integer >= 1 (or a protocol that gives epochs)")
    if epochs < 1:
        top.fail("epochs", epochs, "an integer >= 1")

    fixed_section = top.section("fixed")
    fixed = {}
    for key in fixed_section.data:
        if key not in FIXED_FIELDS:
            fixed_section.fail(fixed_section.path(str(key)), fixed_section.data[key],
                               f"one of {', '.join(FIXED_FIELDS)} (data, axes, epochs and seeds have "
                               "their own fields)")
        fixed[key] = _typed_field(fixed_section, key)

    args_section = top.section("method_args")
    method_args = {}
    for method, args in args_section.data.items():
        if method not in methods:
            args_section.fail(args_section.path(str(method)), args, f"one of this experiment's methods "
                                                                    f"({', '.join(methods)})")
        method_args[method] = _Section(args, source, args_section.path(method)).data

    search = top.section("search")
    trials = search.get("trials", 10, kind=int, accepted="an integer >= 1")
    if trials < 1:
        search.fail(search.path("trials"), trials, "an integer >= 1")
    search_seed = search.get("seed", 0, kind=int, accepted="an integer")
    pruner = _parse_pruner(search)
    space_section = search.section("space")
    space: dict[str, dict[str, Param]] = {}
    for method, params in space_section.data.items():
        if method not in methods:
            space_section.fail(space_section.path(str(method)), params,
                               f"one of this experiment's methods ({', '.join(methods)})")
        space[method] = _parse_space(_Section(params, source, space_section.path(method)), method)
    search.finish(("trials", "seed", "pruner", "space"))

    final = top.section("final", {"seeds": [0, 1, 2]})
    final_seeds = final.names("seeds", [0, 1, 2], accepted="integer seeds")
    for i, seed in enumerate(final_seeds):
        if not _is(seed, int):
            final.fail(final.path(f"seeds[{i}]"), seed, "an integer seed")
    final.finish(("seeds",))

    retries = top.get("retries", 2, kind=int, accepted="an integer >= 0")
    if retries < 0:
        top.fail("retries", retries, "an integer >= 0")
    heartbeat = top.section("heartbeat")
    interval = heartbeat.get("interval", 30, kind=int, accepted="whole seconds >= 1")
    grace = heartbeat.get("grace", 120, kind=int, accepted="whole seconds > interval")
    if interval < 1:
        heartbeat.fail(heartbeat.path("interval"), interval, "whole seconds >= 1")
    if grace <= interval:
        heartbeat.fail(heartbeat.path("grace"), grace, f"whole seconds > interval ({interval})")
    heartbeat.finish(("interval", "grace"))
    loader_workers = top.get("loader_workers", 0, kind=int, accepted="an integer >= 0")
    if loader_workers < 0:
        top.fail("loader_workers", loader_workers, "an integer >= 0")
    wandb = top.section("wandb")
    project = wandb.get("project", "augbench", kind=str, accepted="a W&B project name")
    mode = wandb.get("mode", "offline", kind=str, accepted="offline or online")
    if mode not in ("offline", "online"):
        wandb.fail(wandb.path("mode"), mode, "offline or online ($WANDB_MODE overrides it)")
    wandb.finish(("project", "mode"))
    ddp = top.section("ddp")
    processes = ddp.get("nproc_per_node", 1, kind=int, accepted="an integer >= 1, the processes of each run")
    if processes < 1:
        ddp.fail(ddp.path("nproc_per_node"), processes, "an integer >= 1, the processes of each run")
    ddp.finish(("nproc_per_node",))
    top.finish(("name", "description", "protocol", "dataset", "train_subset", "val_fraction", "image_size", "backbones",
                "recipes", "methods", "label_noise", "budget", "epochs", "fixed", "method_args", "search", "final",
                "retries", "heartbeat", "loader_workers", "wandb", "ddp"))

    experiment = Experiment(
        name=name, source=source, description=description, dataset=dataset, train_subset=train_subset,
        image_size=image_size,
        val_fraction=float(val_fraction), backbones=backbones, recipes=recipes, methods=methods,
        label_noise=label_noise, budgets=budgets, epochs=epochs, fixed=fixed, method_args=method_args,
        protocol=protocol.name if protocol else None,
        protocol_settings={k: v for k, v in defaults.items() if k not in PROTOCOL_TOP_LEVEL},
        trials=trials, search_seed=search_seed, pruner=pruner, space=space, final_seeds=final_seeds,
        retries=retries, heartbeat_interval=interval, heartbeat_grace=grace, loader_workers=loader_workers,
        wandb_project=project, wandb_mode=mode, ddp_processes=processes,
    )
    _check_configs(experiment)
    ids = {}
    for cell in experiment.cells():
        if cell.id in ids:
            raise UsageError(f"{source}: cells {ids[cell.id]} and {cell.axes()} share the id {cell.id}; "
                             "rename a recipe so that ids differ")
        ids[cell.id] = cell.axes()
    return experiment


def _parse_protocol(top: _Section) -> Protocol | None:
    name = top.get("protocol", None, kind=(str, type(None)),
                   accepted=f"a protocol name ({', '.join(list_protocols())}) or the path of a protocol file")
    if name is None:
        return None
    try:
        return load_protocol(name)
    except UsageError as err:
        raise UsageError(f"{top.source}: field protocol: {err}") from None


def _parse_budgets(top: _Section, default: str) -> list[str]:
    """``budget``: one of BUDGETS, or a list of them (each an axis value)."""
    accepted = f"{' or '.join(BUDGETS)}, or a list of them (e.g. [epochs, samples])"
    value = top.get("budget", default, kind=(str, list), accepted=accepted)
    budgets = [value] if isinstance(value, str) else top.names("budget", accepted=" and ".join(BUDGETS))
    for i, budget in enumerate(budgets):
        if budget not in BUDGETS:
            top.fail("budget" if isinstance(value, str) else f"budget[{i}]", budget, accepted)
    return budgets


def _check_models(top: _Section, backbones: list[Any]) -> None:

    for i, model in enumerate(backbones):
        if not isinstance(model, str) or not timm.is_model(model):
            top.fail(f"backbones[{i}]", model, f"one of augbench's models ({', '.join(models.list_models())}) "
                                                "or any timm model name")


def _parse_noise(top: _Section, index: int, value: Any) -> str | None:
    if value is None or value in (CLEAN, "none"):
        return None
    try:
        if not isinstance(value, str) or parse_label_noise(value) is None:
            raise UsageError("")
    except UsageError:
        top.fail(f"label_noise[{index}]", value, "clean, or sym:R / asym:R with 0 <= R < 1 (e.g. sym:0.4)")
    return value


def _typed_field(section: _Section, key: str) -> Any:
    """A RunConfig field's value, with the type of the field's default (a float field takes integers)."""
    default = getattr(RunConfig(), key)
    value = section.data[key]
    if isinstance(default, list):
        ok = isinstance(value, list) and all(_is(v, int) for v in value)
        accepted = "a list of integers"
    else:
        ok = _is(value, type(default))
        accepted = {bool: "true or false", int: "an integer", float: "a number", str: "text"}[type(default)]
    if not ok:
        section.fail(section.path(key), value, accepted)
    return float(value) if isinstance(default, float) else value


def _parse_space(section: _Section, method: str) -> dict[str, Param]:
    method_args = tuple(get_method(method).defaults)
    accepted = f"a method argument of {method} ({', '.join(method_args) or 'none'}) or one of " \
               f"{', '.join(SEARCHABLE_FIELDS)}"
    space = {}
    for name, spec in section.data.items():
        if name not in method_args and name not in SEARCHABLE_FIELDS:
            section.fail(section.path(str(name)), spec, accepted)
        param_spec = _Section(spec, section.source, section.path(name))
        kind = param_spec.get("type", kind=str, accepted=", ".join(PARAM_TYPES))
        if kind not in PARAM_TYPES:
            param_spec.fail(param_spec.path("type"), kind, ", ".join(PARAM_TYPES))
        space[name] = PARAM_TYPES[kind].parse(param_spec, name)
    return space


def _check_configs(experiment: Experiment) -> None:
    """Validates every configuration the grid can produce at the extremes of the search space."""
    top_level = {"epochs": "epochs", "budget": "budget", "val_fraction": "val_fraction",
                 "train_subset": "train_subset", "image_size": "image_size"}

    def check(method: str, params: dict[str, Any], where: str) -> None:
        cell = Cell(experiment.dataset, experiment.backbones[0], experiment.recipes[0], method,
                    experiment.label_noise[0])
        config = experiment.run_config(cell, params, experiment.search_seed)
        try:
            config.validate()
            create_method(method, 10, config.method_args)
        except (UsageError, ValueError, TypeError) as err:
            flag = re.match(r"--([a-z-]+)", str(err))
            name = flag.group(1).replace("-", "_") if flag else None
            if name in experiment.fixed and not params:
                where = f"fixed.{name}"
            elif name in top_level and not params:
                where = top_level[name]
            raise UsageError(f"{experiment.source}: field {where}: {err}") from None

    for method in experiment.methods:
        check(method, {}, f"method_args.{method}" if method in experiment.method_args else "fixed")
        for name, param in experiment.space_for(method).items():
            for value in param.extremes():
                check(method, {name: value}, f"search.space.{method}.{name}")


def preflight(experiment: Experiment, data_root: str | None = None) -> None:
    """Builds (without training or writing) one run per value of every axis; raises UsageError naming it.

    This catches what needs data or a registry to check: a recipe that does not load, a training subset
    larger than the data set, a backbone that cannot take the data set's channels.
    """
    first = experiment.cells()[0]
    variants = [("backbones[0], recipes[0], methods[0], label_noise[0]", first)]
    for axis, attr in (("backbones", "model"), ("recipes", "recipe"), ("methods", "method"),
                       ("label_noise", "label_noise")):
        for i, value in enumerate(getattr(experiment, axis)[1:], start=1):
            variants.append((f"{axis}[{i}]", dataclasses.replace(first, **{attr: value})))
    for where, cell in variants:
        config = experiment.run_config(cell, {}, experiment.search_seed)
        try:
            build(config, data_root=data_root, device="cpu")
        except UsageError as err:
            flag = re.match(r"--([a-z-]+)", str(err))
            name = flag.group(1).replace("-", "_") if flag else None
            if name in ("dataset", "train_subset", "val_fraction", "image_size", "epochs", "budget"):
                where = name
            elif name in experiment.fixed:
                where = f"fixed.{name}"
            raise UsageError(f"{experiment.source}: field {where}: {err}") from None
