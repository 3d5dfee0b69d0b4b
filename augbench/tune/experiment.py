"""Experiment files (``recipes/experiments/*.yaml``): a grid of cells, each tuned on validation data.

An experiment names a data set and its split sizes, the axes of the grid
(backbones x recipes x methods x label noise x budgets), fixed
hyperparameters, a search space per method, the trials per cell, the pruner
and the seeds of the final phase (every field is declared in
:mod:`augbench.tune.schema`; ``augbench schema experiment`` prints them)::

    name: dlb_vs_ce
    description: CE against DLB with and without Cutout
    group: my_map                # optional: experiments of one group share the leaderboard's tables
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
      sampler: tpe               # tpe | random | qmc (augbench/tune/samplers.py)
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

import typing
from pathlib import Path
from typing import Any

import yaml

from augbench.augment.recipe import load_recipe
from augbench.config import given
from augbench.errors import UsageError
from augbench.methods import get_method
from augbench.protocol import list_protocols, load_protocol
from augbench.schema import Invalid, read
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
from augbench.tune.schema import CLEAN_SPELLINGS, NAME_PATTERN, ExperimentFile
from augbench.tune.space import PARAM_TYPES, Param, parse_param

if typing.TYPE_CHECKING:
    from augbench.protocol import Protocol

# The experiment's parts live in grid, schema, space, pruning and preflight; they are importable from here too.
__all__ = ["CLEAN", "DEFAULT_BUDGET", "FIXED_FIELDS", "NAME_PATTERN", "PARAM_TYPES", "PRUNERS", "SEARCHABLE_FIELDS",
           "Cell", "Experiment", "ExperimentFile", "Param", "PrunerSpec", "load_experiment", "noise_tag",
           "parse_experiment", "preflight"]


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
    """The experiment in mapping ``data`` (read from ``source``), checked against :class:`ExperimentFile`."""
    protocol = _parse_protocol(data, source)
    # A protocol's settings stand in for fields the experiment leaves out; the experiment's own fields win.
    defaults = dict(protocol.settings) if protocol is not None else {}
    if protocol is not None and protocol.backbones:
        defaults["backbones"] = list(protocol.backbones)
    file = read(ExperimentFile, data, source, defaults=defaults)

    # What needs more than the declarations: other fields, files on disk, the methods' own arguments.
    for i, recipe in enumerate(file.recipes):
        try:
            load_recipe(recipe, dataset=file.dataset)
        except UsageError as err:
            raise UsageError(f"{source}: field recipes[{i}]: {err}") from None
    label_noise = [None if value in CLEAN_SPELLINGS else value for value in file.label_noise]
    if len(set(label_noise)) != len(label_noise):
        _fail(source, "label_noise", file.label_noise, "a list without repeated entries (clean, none and null "
                                                       "are one)")
    fixed = given(file.fixed, data.get("fixed"))
    method_args = {}
    for method, args in file.method_args.items():
        if method not in file.methods:
            _fail(source, f"method_args.{method}", args, f"one of this experiment's methods "
                                                         f"({', '.join(file.methods)})")
        method_args[method] = args
    space: dict[str, dict[str, Param]] = {}
    for method, params in file.search.space.items():
        if method not in file.methods:
            _fail(source, f"search.space.{method}", params, f"one of this experiment's methods "
                                                            f"({', '.join(file.methods)})")
        space[method] = _parse_space(params, method, source, f"search.space.{method}")
    pruner = parse_pruner(file.search.pruner, source, "search.pruner")

    experiment = Experiment(
        name=file.name, group=file.group or file.name, source=source, description=file.description,
        dataset=file.dataset, train_subset=file.train_subset, image_size=file.image_size,
        val_fraction=file.val_fraction, backbones=file.backbones, recipes=file.recipes, methods=file.methods,
        label_noise=label_noise, budgets=[file.budget] if isinstance(file.budget, str) else file.budget,
        epochs=file.epochs, fixed=fixed, method_args=method_args,
        protocol=protocol.name if protocol else None,
        protocol_settings={k: v for k, v in defaults.items() if k not in (*PROTOCOL_TOP_LEVEL, "backbones")},
        trials=file.search.trials, search_seed=file.search.seed, sampler=file.search.sampler, pruner=pruner,
        space=space,
        final_seeds=file.final.seeds, retries=file.retries, heartbeat_interval=file.heartbeat.interval,
        heartbeat_grace=file.heartbeat.grace, loader_workers=file.loader_workers,
        wandb_project=file.wandb.project, wandb_mode=file.wandb.mode, ddp_processes=file.ddp.nproc_per_node,
    )
    check_configs(experiment)
    ids = {}
    for cell in experiment.cells():
        if cell.id in ids:
            raise UsageError(f"{source}: cells {ids[cell.id]} and {cell.axes()} share the id {cell.id}; "
                             "rename a recipe so that ids differ")
        ids[cell.id] = cell.axes()
    return experiment


def _fail(source: str, where: str, value: Any, accepted: str) -> None:
    raise UsageError(Invalid(where, value, accepted).message(source))


def _parse_protocol(data: Any, source: str) -> Protocol | None:
    name = data.get("protocol") if isinstance(data, dict) else None
    if name is None:
        return None
    if not isinstance(name, str):
        _fail(source, "protocol", name, f"a protocol name ({', '.join(list_protocols())}) or the path of a "
                                        "protocol file")
    try:
        return load_protocol(name)
    except UsageError as err:
        raise UsageError(f"{source}: field protocol: {err}") from None


def _parse_space(params: dict[str, Any], method: str, source: str, where: str) -> dict[str, Param]:
    method_args = tuple(get_method(method).defaults)
    accepted = f"a method argument of {method} ({', '.join(method_args) or 'none'}) or one of " \
               f"{', '.join(SEARCHABLE_FIELDS)}"
    space = {}
    for name, spec in params.items():
        if name not in method_args and name not in SEARCHABLE_FIELDS:
            _fail(source, f"{where}.{name}", spec, accepted)
        space[name] = parse_param(spec, name, source, f"{where}.{name}")
    return space
