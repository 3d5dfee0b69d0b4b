"""Named training protocols: ``recipes/protocols/NAME.yaml``, training settings with their source.

A protocol file::

    name: dlb_paper_cifar            # the file name without .yaml
    description: ...                 # what it is for, in a sentence or two
    source: ...                      # where its values were checked: repository paths, paper sections
    backbones: [cifar_resnet32]      # optional: the models it was run with
    settings:                        # RunConfig fields (PROTOCOL_FIELDS), e.g.
      epochs: 240
      lr: 0.05
      milestones: [150, 180, 210]

Values resolve in this order, later ones winning: RunConfig's defaults, the
protocol's ``settings``, then what the user gives (``augbench train`` flags;
an experiment's own fields and ``fixed``). With no ``--model`` (no
``backbones`` in an experiment) the protocol's first backbone is used. The
resolved configuration records the protocol's name (``protocol``) beside
every value.

Protocol names are looked up in ``recipes/protocols/`` under the working
folder and then in the copy installed with the package
(``augbench/protocols`` points at the project's folder). A mistake is a
UsageError naming the file and the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from augbench.config import RunConfig, field_accepted, field_value
from augbench.errors import UsageError
from augbench.lookup import files_by_name, is_path, search_folders

#: RunConfig fields that are a run's axes, not its training settings: never set by a protocol.
RUN_AXES = ("dataset", "model", "method", "method_args", "recipe", "seed", "label_noise", "protocol")
#: Top-level fields of a protocol file: whether each must be given.
FIELDS = {"name": True, "description": True, "source": True, "backbones": False, "settings": True}


def protocol_fields() -> tuple[str, ...]:
    """The RunConfig fields a protocol's ``settings`` may give."""
    return tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in RUN_AXES)


@dataclass(frozen=True)
class Protocol:
    """A validated protocol file."""

    name: str
    description: str
    source: str
    path: str
    settings: dict[str, Any] = field(default_factory=dict)
    backbones: tuple[str, ...] = ()


def protocol_dirs() -> list[Path]:
    """Folders searched for protocol names, first match wins."""
    return search_folders(Path("recipes") / "protocols", Path(str(resources.files("augbench") / "protocols")))


def list_protocols() -> dict[str, Path]:
    """Protocol name -> file (the registry of protocols)."""
    return files_by_name(protocol_dirs())


def find_protocol(name_or_path: str) -> Path:
    """The file of a protocol given by name or path; UsageError naming what is accepted."""
    known = list_protocols()
    accepted = f"{', '.join(known) or 'none found'}, or the path of a protocol .yaml file"
    if is_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise UsageError(f"protocol file {name_or_path}: not found; accepted: {accepted}")
        return path
    if name_or_path not in known:
        folders = ", ".join(str(d) for d in protocol_dirs()) or "recipes/protocols"
        raise UsageError(f"protocol '{name_or_path}': no such protocol in {folders}; accepted: {accepted}")
    return known[name_or_path]


def load_protocol(name_or_path: str) -> Protocol:
    """Reads and validates a protocol by name (``recipes/protocols/NAME.yaml``) or path."""
    path = find_protocol(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise UsageError(f"{path}: cannot be read as YAML ({str(err).splitlines()[0]}); accepted: a mapping "
                         f"with the fields {', '.join(FIELDS)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: got {type(data).__name__}; accepted: a mapping with the fields {', '.join(FIELDS)}")
    for key in data:
        if key not in FIELDS:
            raise UsageError(f"{path}: unknown field '{key}'; accepted: {', '.join(FIELDS)}")
    for key, required in FIELDS.items():
        if required and key not in data:
            raise UsageError(f"{path}: field '{key}' is missing")
    for key in ("name", "description", "source"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise UsageError(f"{path}: field '{key}': got {data[key]!r}; accepted: non-empty text")
    if data["name"] != path.stem:
        raise UsageError(f"{path}: field 'name': got {data['name']!r}; accepted: the file name without its suffix "
                         f"({path.stem!r})")
    backbones = data.get("backbones", [])
    if not isinstance(backbones, list) or not all(isinstance(b, str) and b for b in backbones):
        raise UsageError(f"{path}: field 'backbones': got {backbones!r}; accepted: a list of model names")
    return Protocol(name=data["name"], description=data["description"], source=data["source"], path=str(path),
                    settings=_check_settings(data["settings"], path), backbones=tuple(backbones))


def _check_settings(settings: Any, path: Path) -> dict[str, Any]:
    allowed = protocol_fields()
    if not isinstance(settings, dict):
        raise UsageError(f"{path}: field 'settings': got {settings!r}; accepted: a mapping of {', '.join(allowed)}")
    checked = {}
    for key, value in settings.items():
        if key not in allowed:
            raise UsageError(f"{path}: unknown field 'settings.{key}'; accepted: {', '.join(allowed)} (the data set, "
                             f"model, method, recipe, seed and label noise are a run's axes)")
        ok, typed = field_value(key, value)
        if not ok:
            raise UsageError(f"{path}: field 'settings.{key}': got {value!r}; accepted: {field_accepted(key)}")
        checked[key] = typed
    try:
        RunConfig(**checked).validate()
    except UsageError as err:  # names the flag; say which protocol field holds the value
        flag = str(err).split(":", 1)[0]
        raise UsageError(f"{path}: field 'settings.{flag.lstrip('-').replace('-', '_')}': {err}") from None
    return checked


def resolve_config(given: dict[str, Any], protocol: str | None = None) -> RunConfig:
    """RunConfig defaults, then ``protocol``'s settings, then ``given`` (None values count as not given).

    Empty ``milestones`` of the multistep schedule are written out (the
    official fractions of the resolved ``epochs``), so a record holds the
    epochs at which its rate decayed.
    """
    values: dict[str, Any] = {}
    if protocol is not None:
        chosen = load_protocol(protocol)
        values.update(chosen.settings)
        values["protocol"] = chosen.name
        if chosen.backbones:
            values["model"] = chosen.backbones[0]
    values.update({key: value for key, value in given.items() if value is not None})
    return RunConfig(**values).with_milestones_written()
