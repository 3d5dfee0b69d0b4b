"""Augmentation recipes: YAML files in ``recipes/augment/``, validated and built.

A recipe file::

    name: cutout                   # the file name without .yaml
    description: ...               # what it does, in a sentence or two
    paper: DeVries & Taylor 2017, arXiv:1708.04552
    source: ...                    # where its numbers come from: repository paths, paper sections
    ops:                           # per-sample operations, in order, drawn afresh for every view
      - {op: pad_crop, padding: 4}
      - {op: flip}
      - {op: cutout, length: 16, fill: mean}
    mix:                           # optional batch mixing (timm's Mixup arguments)
      mixup_alpha: 1.0
    dlb_mix: shared                # shared | independent | clean: how DLB mixes its replayed batch
    per_dataset:                   # optional: settings that differ per data set
      cifar100:                    # a registered data set name (`augbench datasets`)
        cutout: {length: 8}        # an op of ``ops`` by name (or ops[i] when it occurs twice), or ``mix``
    scaled_for_28px: ...           # optional note: what changes on 28-px images

``per_dataset`` overrides fields of the named ops (or of ``mix``) for one
data set; the other fields keep the values given in ``ops``. A run resolves
the recipe for its data set (``load_recipe(name, dataset=...)``) and its
record holds the resolved operations (``recipe_spec``, with ``dataset``).
``fill: mean`` (and random erasing's ``value: mean``) is the data set's
per-channel mean, set when the recipe is prepared for a data set: what the
original codes fill with when they mask after normalisation.

``source`` is required for the recipes shipped in ``recipes/augment/``
(every number there names where it was checked) and optional for a user's
own recipe file elsewhere.

Every field is checked against the operation's signature and types before
anything runs, every ``per_dataset`` entry included; a mistake is a
UsageError naming the file, the field (e.g. ``per_dataset.cifar100.cutout``)
and what is accepted.

Recipe names are looked up in ``recipes/augment/`` under the working folder
(a checkout of the project) and then in the copy installed with the package
(``augbench/augment/recipes`` points at the project's folder).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from augbench.augment.mixing import REPLAY_MIX_POLICIES, BatchMixer, MixConfig
from augbench.augment.ops import OPS, OpArgumentError
from augbench.augment.pipeline import Pipeline, SamplePipeline
from augbench.data import list_datasets
from augbench.errors import UsageError
from augbench.lookup import YAML_SUFFIXES, files_by_name, is_path, search_folders
from augbench.schema import Invalid, declared, read, read_arguments, registered

#: How a method that replays a batch (DLB) mixes the replay, by name (``augbench.augment.mixing``).
DLB_MIX_POLICIES = REPLAY_MIX_POLICIES
RECIPE_SUFFIXES = YAML_SUFFIXES


@dataclass(frozen=True)
class RecipeFile:
    """The fields of a recipe file, declared once (``augbench schema recipe`` prints them as JSON Schema).

    ``ops`` entries are checked against their operation's annotated signature, ``mix`` against
    :class:`~augbench.augment.mixing.MixConfig`'s, ``per_dataset`` against both (:func:`load_recipe`).
    """

    name: str = declared(doc="the file name without its suffix")
    description: str = declared(doc="what the recipe does, in a sentence or two")
    paper: str = declared(doc="the paper it comes from")
    ops: list[Any] = declared(accepted="a list of operations, each a mapping with 'op' (an operation name) and "
                                       "its arguments", doc="per-sample operations, in order, drawn afresh for "
                                                            "every view")
    source: str = declared(None, doc="where its numbers come from: repository paths, paper sections "
                                            "(required for the recipes shipped with augbench)")
    mix: dict[str, Any] | None = declared(None, doc="batch mixing (timm's Mixup arguments)")
    dlb_mix: registered(DLB_MIX_POLICIES) = declared("shared", doc="how DLB mixes its replayed batch")
    per_dataset: dict[str, Any] | None = declared(
        None, accepted="a mapping of data set name to a mapping of op name (or ops[i], or mix) to the fields "
                       "it overrides", doc="settings that differ per data set")
    scaled_for_28px: str | None = declared(None, doc="what changes on 28-px images")


#: The top-level fields of a recipe file, in declaration order.
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RecipeFile))
#: ``per_dataset`` key that overrides the ``mix`` section rather than an op.
MIX_TARGET = "mix"


@dataclass
class Recipe:
    """A validated augmentation recipe, as the engine and the methods use it.

    Attributes:
        name: the recipe's name (what result records carry).
        pipeline: the per-sample operations, applied independently to every view.
        mixer: the batch mixer, once :meth:`prepared` for a data set; None when nothing mixes.
        mix_policy: how DLB mixes its replayed batch (``shared``, ``independent``, ``clean``).
        mix: the validated ``mix`` section, or None.
        description, paper: from the file.
        source: the file the recipe was read from.
        spec: the resolved recipe (every argument, defaults included), for result records.
    """

    name: str
    pipeline: SamplePipeline
    mixer: BatchMixer | None = None
    mix_policy: str = "shared"
    mix: MixConfig | None = None
    description: str = ""
    paper: str = ""
    source: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: the operations, the mixing and the DLB mix policy."""
        # An op that wraps a library's transform (albumentations) is shown by the transform's name.
        ops = ", ".join(args.get("transform", name) for name, args in self.pipeline.spec) or "none"
        mix = "none"
        if self.mix is not None:
            parts = [f"{key}={value}" for key, value in dataclasses.asdict(self.mix).items()
                     if value != getattr(MixConfig, key)]
            mix = ", ".join(parts)
        return f"ops: {ops}; mix: {mix}; dlb_mix: {self.mix_policy}"

    def prepared(self, num_classes: int, image_shape: tuple[int, int, int], mean: Sequence[float] | None = None,
                 device: torch.device | str = "cpu") -> Recipe:
        """This recipe for one data set: fills resolved, mixer built, every op checked on a probe batch.

        ``mean`` (per channel, in [0, 1]) replaces ``fill: mean``. The check
        runs each operation once on a gray batch (without touching any global
        random state), sample ops on the host and the device stage on
        ``device``, so that an operation that cannot handle the data set's
        images, or cannot run on the device, fails here, naming it, before a
        run writes anything.
        """
        c, h, w = image_shape
        pipeline = self.pipeline
        if mean is not None:
            pipeline = pipeline.for_dataset(mean)
        device = torch.device(device)
        images = torch.full((2, c, h, w), 128, dtype=torch.uint8)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                for i, (op, kind, (name, _)) in enumerate(zip(pipeline.ops, pipeline.kinds, pipeline.spec)):
                    on = torch.device("cpu") if i < pipeline.split else device
                    where = f"{self.source}: ops[{i}] ({name}, a {kind} op on {on.type})"
                    images = images.to(on)
                    try:
                        images = Pipeline.run_one(op, kind, images, torch.Generator(device=on).manual_seed(0))
                    except Exception as err:  # any failure of any library's op is the recipe's to report
                        raise UsageError(f"{where}: fails on {c}x{h}x{w} images ({type(err).__name__}: {err}); "
                                         f"accepted: operations that work on {c}-channel {h}x{w} uint8 images "
                                         f"on {on.type}") from None
                    if tuple(images.shape) != (2, c, h, w) or images.dtype != torch.uint8:
                        raise UsageError(f"{where}: turns {c}x{h}x{w} uint8 images into "
                                         f"{'x'.join(map(str, images.shape[1:]))} {images.dtype}; accepted: "
                                         f"operations whose result has the input's size and dtype")
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        mixer = BatchMixer(self.mix, num_classes) if self.mix is not None else None
        spec = self.spec
        if mean is not None:  # the record shows the fills as numbers, and the mean they came from
            spec = {**spec, "ops": [{"op": name, **_plain(args)} for name, args in pipeline.spec],
                    "fill_mean": [int(round(255.0 * m)) for m in mean]}
        return dataclasses.replace(self, pipeline=pipeline, mixer=mixer, spec=spec)


# -- finding recipes ---------------------------------------------------------------------------------

def shipped_recipe_dir() -> Path:
    """The recipes installed with the package (a link to the project's ``recipes/augment``)."""
    return Path(str(resources.files("augbench.augment") / "recipes"))


#: Recipe folders that plugins added (``add_recipe_folder``), searched after the project's and augbench's own.
PLUGIN_RECIPE_DIRS: list[Path] = []


def add_recipe_folder(path: str | Path) -> None:
    """Makes the recipe files in ``path`` available by name (for plugins: see ``augbench.plugins``)."""
    if Path(path) not in PLUGIN_RECIPE_DIRS:
        PLUGIN_RECIPE_DIRS.append(Path(path))


def recipe_dirs() -> list[Path]:
    """Folders searched for recipe names, first match wins (duplicates removed)."""
    return search_folders(Path("recipes") / "augment", shipped_recipe_dir(), *PLUGIN_RECIPE_DIRS)


def list_recipes() -> dict[str, Path]:
    """Recipe name -> file, over :func:`recipe_dirs` (the registry of recipes)."""
    return files_by_name(recipe_dirs())


def find_recipe(name_or_path: str) -> Path:
    """The file of a recipe given by name or by path; UsageError when there is none."""
    path = Path(name_or_path).expanduser()
    if is_path(name_or_path):
        if not path.is_file():
            raise UsageError(f"recipe file {name_or_path}: not found; accepted: a recipe name "
                             f"({', '.join(list_recipes())}) or the path of an existing .yaml file")
        return path
    known = list_recipes()
    if name_or_path not in known:
        folders = ", ".join(str(d) for d in recipe_dirs()) or "recipes/augment"
        raise UsageError(f"recipe '{name_or_path}': no such recipe in {folders}; accepted: "
                         f"{', '.join(known)}, or the path of a .yaml file")
    return known[name_or_path]


# -- validation --------------------------------------------------------------------------------------

def _build(factory: Any, args: dict[str, Any], where: str) -> Any:
    try:
        return factory(**args)
    except OpArgumentError as err:
        raise UsageError(Invalid(err.field, err.value, err.accepted).message(where)) from None


def _plain(value: Any) -> Any:
    """Tuples as lists, for a JSON-friendly spec."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise UsageError(f"recipe file {path}: cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = f" ({err.problem})" if getattr(err, "problem", None) else ""
        raise UsageError(f"{path}: not valid YAML{where}{problem}; accepted: a mapping with the fields "
                         f"{', '.join(FIELDS)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with the fields {', '.join(FIELDS)}, got {type(data).__name__}")
    return data


def _check_top_level(data: dict[str, Any], path: Path) -> dict[str, Any]:
    checked = vars(read(RecipeFile, data, str(path)))
    if checked["name"] != path.stem:
        raise UsageError(f"{path}: field name: got {checked['name']!r}; accepted: the file name without its "
                         f"suffix ({path.stem!r})")
    if not (checked["source"] or "").strip() and _is_shipped(path):
        raise UsageError(f"{path}: field source is missing; accepted: text naming where the recipe's numbers "
                         f"come from (repository paths, paper sections), required for the recipes shipped in "
                         f"{shipped_recipe_dir()}")
    return checked


def _is_shipped(path: Path) -> bool:
    shipped = shipped_recipe_dir()
    return shipped.is_dir() and path.resolve().parent == shipped.resolve()


def _check_ops(entries: list[Any], path: Path) -> SamplePipeline:
    ops, spec = [], []
    for i, entry in enumerate(entries):
        where = f"{path}: ops[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("op"), str):
            raise UsageError(f"{where}: got {entry!r}; accepted: a mapping with 'op' (an operation name) and its "
                             f"arguments, e.g. {{op: flip, p: 0.5}}")
        name, args = entry["op"], {k: v for k, v in entry.items() if k != "op"}
        if name not in OPS:
            raise UsageError(f"{where}: unknown operation '{name}'; accepted: {', '.join(sorted(OPS))}")
        where = f"{where} ({name})"
        resolved = read_arguments(OPS[name], args, where)
        ops.append(_build(OPS[name], resolved, where))  # the factory checks ranges (and the library its own)
        spec.append((name, resolved))
    return SamplePipeline(ops, spec)


def _override_targets(entries: list[dict[str, Any]]) -> dict[str, int | None]:
    """``per_dataset`` keys -> op index (None for ``mix``): ``ops[i]`` always, an op's name when it occurs once."""
    names = [entry["op"] for entry in entries]
    targets: dict[str, int | None] = {f"ops[{i}]": i for i in range(len(entries))}
    targets.update({name: names.index(name) for name in names if names.count(name) == 1})
    targets[MIX_TARGET] = None
    return targets


def _check_per_dataset(data: dict[str, Any], path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Validates ``per_dataset`` (data set names, targets, and every override built); returns it."""
    section = data.get("per_dataset") or {}
    known = list_datasets()
    targets = _override_targets(data["ops"])
    for dataset, entries in section.items():
        where = f"{path}: field 'per_dataset.{dataset}'"
        if dataset not in known:
            raise UsageError(f"{where}: unknown data set; accepted: {', '.join(known)}")
        if not isinstance(entries, dict):
            raise UsageError(f"{where}: got {entries!r}; accepted: a mapping of op name (or ops[i], or mix) to "
                             f"the fields it overrides, e.g. {{cutout: {{length: 8}}}}")
        for target, fields in entries.items():
            here = f"{path}: field 'per_dataset.{dataset}.{target}'"
            if target not in targets:
                raise UsageError(f"{here}: no such operation in ops; accepted: {', '.join(targets)}")
            if target == MIX_TARGET and data.get("mix") is None:
                raise UsageError(f"{here}: the recipe has no mix section to override; accepted: "
                                 f"{', '.join(t for t in targets if t != MIX_TARGET)}")
            if not isinstance(fields, dict) or "op" in fields:
                raise UsageError(f"{here}: got {fields!r}; accepted: a mapping of the fields it overrides "
                                 f"(the operation itself stays)")
        ops, mix = _resolved_sections(data, dataset)
        for target in entries:  # unknown fields and bad values, named by their override
            here = f"{path}: per_dataset.{dataset}.{target}"
            if targets[target] is None:
                _build(MixConfig, read_arguments(MixConfig, mix, here), here)
            else:
                entry = ops[targets[target]]
                name = entry["op"]
                args = {k: v for k, v in entry.items() if k != "op"}
                _build(OPS[name], read_arguments(OPS[name], args, f"{here} ({name})"), f"{here} ({name})")
    return section


def _resolved_sections(data: dict[str, Any], dataset: str | None) -> tuple[list[dict[str, Any]], dict | None]:
    """``ops`` and ``mix`` with ``dataset``'s ``per_dataset`` overrides applied (unchanged without one)."""
    overrides = (data.get("per_dataset") or {}).get(dataset, {}) if dataset is not None else {}
    targets = _override_targets(data["ops"])
    ops = [dict(entry) for entry in data["ops"]]
    mix = dict(data["mix"]) if data.get("mix") is not None else None
    for target, fields in overrides.items():
        if targets[target] is None:
            mix.update(fields)
        else:
            ops[targets[target]].update(fields)
    return ops, mix


def load_recipe(name_or_path: str, dataset: str | None = None) -> Recipe:
    """Reads and validates a recipe by name (``recipes/augment/NAME.yaml``) or path, resolved for ``dataset``.

    ``dataset`` picks the recipe's ``per_dataset`` overrides (none when the
    recipe has none for it, or when ``dataset`` is None). Raises UsageError
    naming the file, the operation, the field and what is accepted; every
    ``per_dataset`` entry is checked whatever ``dataset`` is. The mixer is
    built by :meth:`Recipe.prepared`, which needs the number of classes.
    """
    path = find_recipe(name_or_path)
    data = _check_top_level(_read(path), path)
    _check_ops(data["ops"], path)  # the file as written, so that its own mistakes name ops[i]
    _check_per_dataset(data, path)
    ops, mix_section = _resolved_sections(data, dataset)
    pipeline = _check_ops(ops, path)
    mix = None
    if mix_section is not None:
        mix = _build(MixConfig, read_arguments(MixConfig, mix_section, f"{path}: mix"), f"{path}: mix")
    spec = {
        "name": data["name"], "description": data["description"], "paper": data["paper"],
        "source": data.get("source"), "dataset": dataset,
        "ops": [{"op": name, **_plain(args)} for name, args in pipeline.spec],
        "mix": _plain(dataclasses.asdict(mix)) if mix is not None else None,
        "dlb_mix": data.get("dlb_mix", "shared"), "file": str(path),
    }
    if data.get("scaled_for_28px"):
        spec["scaled_for_28px"] = data["scaled_for_28px"]
    return Recipe(name=data["name"], pipeline=pipeline, mix_policy=spec["dlb_mix"], mix=mix,
                  description=data["description"], paper=data["paper"], source=str(path), spec=spec)
