"""Reading a YAML mapping field by field, so that every error names the file and the dotted field.

An experiment file is read through :class:`Section`: ``get`` checks a
field's type, ``section`` descends into a mapping, ``names`` reads a list of
distinct names and ``finish`` refuses fields nobody asked for. Errors are
UsageError (exit status 2): ``FILE: field search.space.dlb.alpha: got ...;
accepted: ...``.
"""

from __future__ import annotations

import json
from typing import Any

from augbench.errors import UsageError


class Section:
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
        if not is_kind(value, kind):
            self.fail(self.path(name), value, accepted)
        return value

    def section(self, name: str, default: dict | None = None) -> Section:
        value = self.get(name, {} if default is None else default, kind=dict, accepted="a mapping")
        return Section(value, self.source, self.path(name))

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


def is_kind(value: Any, kind: type | tuple) -> bool:
    """Whether ``value`` is of ``kind`` as YAML means it: booleans are not numbers, integers are floats."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # YAML's `yes` is not a number
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)
