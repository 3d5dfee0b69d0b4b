"""Checks of an experiment before anything runs: every configuration its grid can produce, then one build
per axis value.

:func:`check_configs` validates the run configuration at both ends of every
searched range (no data needed; loading calls it); :func:`preflight` builds
one run per value of every axis (data set, backbone, recipe, method, label
noise) without training, so what needs data or a registry to check is
reported before anything is written. Both raise UsageError naming the
experiment file's field.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from augbench.engine import build
from augbench.errors import UsageError
from augbench.methods import create_method
from augbench.tune.grid import Cell, Experiment


def check_configs(experiment: Experiment) -> None:
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
            name = getattr(err, "field", None)  # a FieldError names the RunConfig field
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
            name = getattr(err, "field", None)  # a FieldError names the RunConfig field
            if name in ("dataset", "train_subset", "val_fraction", "image_size", "epochs", "budget"):
                where = name
            elif name in experiment.fixed:
                where = f"fixed.{name}"
            raise UsageError(f"{experiment.source}: field {where}: {err}") from None
