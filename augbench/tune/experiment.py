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

import re
import typing
from pathlib import Path
from typing import Any

import timm
import yaml

from augbench import models
from augbench.augment.recipe import load_recipe
from augbench.config import BUDGETS, field_accepted, field_value
from augbench.data import list_datasets, parse_label_noise
from augbench.errors import UsageError
from augbench.methods import METHODS, get_method
from augbench.protocol import list_protocols, load_protocol
from augbench.tune.grid import (
    CLEAN,
    DEFAULT_BUDGET,
    FIXED_FIELDS,
    PROTOCOL_TOP_LEVEL,
    SEARCHABLE_FIELDS,
    Cell,
    Experiment,
    noise_tag,
)
from augbench.tune.preflight import check_configs, preflight
from augbench.tune.pruning import PRUNERS, PrunerSpec, parse_pruner
from augbench.tune.schema import Section, is_kind
from augbench.tune.space import PARAM_TYPES, Param

if typing.TYPE_CHECKING:
    from augbench.protocol import Protocol

# The experiment's parts live in grid, space, pruning and preflight; they are importable from here too.
__all__ = ["CLEAN", "DEFAULT_BUDGET", "FIXED_FIELDS", "PARAM_TYPES", "PRUNERS", "SEARCHABLE_FIELDS", "Cell",
           "Experiment", "Param", "PrunerSpec", "load_experiment", "noise_tag", "parse_experiment", "preflight"]
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    top = Section(data, source)
    name = top.get("name", kind=str, accepted="a name of letters, digits, '_', '.', '-'")
    if not NAME_PATTERN.match(name):
        top.fail("name", name, "a name of letters, digits, '_', '.', '-' (it names folders and studies)")
    description = top.get("description", "", kind=str, accepted="text")
    # Experiments of one group (say, the files a large map is split into) share the leaderboard's tables.
    group = top.get("group", name, kind=str, accepted="a name of letters, digits, '_', '.', '-'")
    if not NAME_PATTERN.match(group):
        top.fail("group", group, "a name of letters, digits, '_', '.', '-' (experiments that share it share "
                                 "leaderboard tables)")
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
        method_args[method] = Section(args, source, args_section.path(method)).data

    search = top.section("search")
    trials = search.get("trials", 10, kind=int, accepted="an integer >= 1")
    if trials < 1:
        search.fail(search.path("trials"), trials, "an integer >= 1")
    search_seed = search.get("seed", 0, kind=int, accepted="an integer")
    pruner = parse_pruner(search)
    space_section = search.section("space")
    space: dict[str, dict[str, Param]] = {}
    for method, params in space_section.data.items():
        if method not in methods:
            space_section.fail(space_section.path(str(method)), params,
                               f"one of this experiment's methods ({', '.join(methods)})")
        space[method] = _parse_space(Section(params, source, space_section.path(method)), method)
    search.finish(("trials", "seed", "pruner", "space"))

    final = top.section("final", {"seeds": [0, 1, 2]})
    final_seeds = final.names("seeds", [0, 1, 2], accepted="integer seeds")
    for i, seed in enumerate(final_seeds):
        if not is_kind(seed, int):
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
    top.finish(("name", "group", "description", "protocol", "dataset", "train_subset", "val_fraction", "image_size", "backbones",
                "recipes", "methods", "label_noise", "budget", "epochs", "fixed", "method_args", "search", "final",
                "retries", "heartbeat", "loader_workers", "wandb", "ddp"))

    experiment = Experiment(
        name=name, group=group, source=source, description=description, dataset=dataset, train_subset=train_subset,
        image_size=image_size,
        val_fraction=float(val_fraction), backbones=backbones, recipes=recipes, methods=methods,
        label_noise=label_noise, budgets=budgets, epochs=epochs, fixed=fixed, method_args=method_args,
        protocol=protocol.name if protocol else None,
        protocol_settings={k: v for k, v in defaults.items() if k not in PROTOCOL_TOP_LEVEL},
        trials=trials, search_seed=search_seed, pruner=pruner, space=space, final_seeds=final_seeds,
        retries=retries, heartbeat_interval=interval, heartbeat_grace=grace, loader_workers=loader_workers,
        wandb_project=project, wandb_mode=mode, ddp_processes=processes,
    )
    check_configs(experiment)
    ids = {}
    for cell in experiment.cells():
        if cell.id in ids:
            raise UsageError(f"{source}: cells {ids[cell.id]} and {cell.axes()} share the id {cell.id}; "
                             "rename a recipe so that ids differ")
        ids[cell.id] = cell.axes()
    return experiment


def _parse_protocol(top: Section) -> Protocol | None:
    name = top.get("protocol", None, kind=(str, type(None)),
                   accepted=f"a protocol name ({', '.join(list_protocols())}) or the path of a protocol file")
    if name is None:
        return None
    try:
        return load_protocol(name)
    except UsageError as err:
        raise UsageError(f"{top.source}: field protocol: {err}") from None


def _parse_budgets(top: Section, default: str) -> list[str]:
    """``budget``: one of BUDGETS, or a list of them (each an axis value)."""
    accepted = f"{' or '.join(BUDGETS)}, or a list of them (e.g. [epochs, samples])"
    value = top.get("budget", default, kind=(str, list), accepted=accepted)
    budgets = [value] if isinstance(value, str) else top.names("budget", accepted=" and ".join(BUDGETS))
    for i, budget in enumerate(budgets):
        if budget not in BUDGETS:
            top.fail("budget" if isinstance(value, str) else f"budget[{i}]", budget, accepted)
    return budgets


def _check_models(top: Section, backbones: list[Any]) -> None:
    for i, model in enumerate(backbones):
        if not isinstance(model, str) or not timm.is_model(model):
            top.fail(f"backbones[{i}]", model, f"one of augbench's models ({', '.join(models.list_models())}) "
                                                "or any timm model name")


def _parse_noise(top: Section, index: int, value: Any) -> str | None:
    if value is None or value in (CLEAN, "none"):
        return None
    try:
        if not isinstance(value, str) or parse_label_noise(value) is None:
            raise UsageError("")
    except UsageError:
        top.fail(f"label_noise[{index}]", value, "clean, or sym:R / asym:R with 0 <= R < 1 (e.g. sym:0.4)")
    return value


def _typed_field(section: Section, key: str) -> Any:
    """A RunConfig field's value, with the type of the field's default (a float field takes integers)."""
    ok, value = field_value(key, section.data[key])
    if not ok:
        section.fail(section.path(key), section.data[key], field_accepted(key))
    return value


def _parse_space(section: Section, method: str) -> dict[str, Param]:
    method_args = tuple(get_method(method).defaults)
    accepted = f"a method argument of {method} ({', '.join(method_args) or 'none'}) or one of " \
               f"{', '.join(SEARCHABLE_FIELDS)}"
    space = {}
    for name, spec in section.data.items():
        if name not in method_args and name not in SEARCHABLE_FIELDS:
            section.fail(section.path(str(name)), spec, accepted)
        param_spec = Section(spec, section.source, section.path(name))
        kind = param_spec.get("type", kind=str, accepted=", ".join(PARAM_TYPES))
        if kind not in PARAM_TYPES:
            param_spec.fail(param_spec.path("type"), kind, ", ".join(PARAM_TYPES))
        space[name] = PARAM_TYPES[kind].parse(param_spec, name)
    return space
