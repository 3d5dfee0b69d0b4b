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
from typing import Annotated, Any

import yaml

from augbench.config import RunConfig, config_section, given
from augbench.errors import FieldError, UsageError
from augbench.lookup import files_by_name, is_path, search_folders
from augbench.schema import Rule, declared, read

#: RunConfig fields that are a run's axes, not its training settings: never set by a protocol.
RUN_AXES = ("dataset", "model", "method", "method_args", "recipe", "seed", "label_noise", "protocol")


def protocol_fields() -> tuple[str, ...]:
    """The RunConfig fields a protocol's ``settings`` may give."""
    return tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in RUN_AXES)


#: ``settings``: the RunConfig fields that are training settings, each with its own type.
SettingsSection = config_section("SettingsSection", protocol_fields(),
                                 "Training settings (RunConfig fields; the data set, model, method, recipe, seed and "
                                 "label noise are a run's axes, not a protocol's).",
                                 "the data set, model, method, recipe, seed and label noise are a run's axes")
#: Text with something in it.
TEXT = Annotated[str, Rule(lambda v: bool(v.strip()), "non-empty text", json={"pattern": r"\S"})]


@dataclass(frozen=True)
class ProtocolFile:
    """The fields of a protocol file, declared once (``augbench schema protocol`` prints them as JSON Schema)."""

    name: TEXT = declared(doc="the file name without its suffix")
    description: TEXT = declared(doc="what it is for, in a sentence or two")
    source: TEXT = declared(doc="where its values were checked: repository paths, paper sections")
    settings: SettingsSection = declared(doc="RunConfig fields (not a run's axes): epochs, lr, milestones, ...")
    backbones: list[Annotated[str, Rule(bool, "a model name", json={"minLength": 1})]] = declared(factory=list,
                                                                          doc="the models it was run with")


#: The top-level fields of a protocol file, in declaration order.
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ProtocolFile))


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
    file = read(ProtocolFile, data, str(path))
    if file.name != path.stem:
        raise UsageError(f"{path}: field name: got {file.name!r}; accepted: the file name without its suffix "
                         f"({path.stem!r})")
    return Protocol(name=file.name, description=file.description, source=file.source, path=str(path),
                    settings=_check_settings(given(file.settings, data["settings"]), path),
                    backbones=tuple(file.backbones))


def _check_settings(checked: dict[str, Any], path: Path) -> dict[str, Any]:
    """The ranges of ``settings`` (typed already): RunConfig's own checks, named as the file's field."""
    try:
        RunConfig(**checked).validate()
    except FieldError as err:  # names the flag; say which protocol field holds the value
        raise UsageError(f"{path}: field settings.{err.field}: {err}") from None
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
