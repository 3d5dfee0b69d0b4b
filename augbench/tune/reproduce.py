"""The ``augbench train`` command line that reproduces a run of a tuned experiment."""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any

from augbench.config import FIELD_FLAGS, RunConfig


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def train_command(config: RunConfig, out: str) -> list[str]:
    """``["augbench", "train", ...]`` giving exactly ``config``, writing into ``out``.

    Every field's flag comes from RunConfig's declaration (``FIELD_FLAGS``); a field without a flag must keep
    its default; ``sync_bn`` belongs to a torchrun command. A protocol is recorded with the run; every value it gave is also written out as a flag,
    which wins over it.
    """
    default = RunConfig()
    command = ["augbench", "train"]
    for spec in dataclasses.fields(RunConfig):
        name, value = spec.name, getattr(config, spec.name)
        if name == "sync_bn":
            continue  # only under torchrun, whose command the worker writes (it adds --sync-bn there)
        flag = FIELD_FLAGS.get(name)
        if flag is None:
            if value != getattr(default, name):
                raise ValueError(f"{name}={value!r} has no augbench train flag")
        elif isinstance(value, dict):
            command += [item for key, v in value.items() for item in (flag, f"{key}={_text(v)}")]
        elif spec.metadata["value"] and value == spec.metadata["value"]:  # --bf16 auto
            command += [flag, value]
        elif isinstance(value, bool):
            if getattr(default, name):  # a flag that is on by default is written either way (--no-...)
                command.append(flag if value else "--no-" + flag[2:])
            elif value:
                command.append(flag)
        elif value is not None and value != []:
            command += [flag, *map(_text, value)] if isinstance(value, list) else [flag, _text(value)]
    return [*command, "--out", out]


def command_line(command: Any) -> str | None:
    """A command as one shell line: an argument list (as ``train_command`` returns it and records store it) or
    a string; None for none."""
    if command is None or command == []:
        return None
    if isinstance(command, (list, tuple)):
        return shlex.join(str(c) for c in command)
    return str(command)
