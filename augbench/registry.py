"""The one way augbench's registries take entries: by name, once.

Every registry (methods, ops, data sets, samplers, schedules, DLB's replay mix policies, leaderboard
metrics) is a plain ``dict`` from name to entry, filled through :func:`add` or a decorator made by
:func:`registrar`. Registering the same object again (a module imported twice) is harmless; a different
object under a taken name is a programming error and raises ``ValueError`` naming the registry, so that a
plugin cannot silently replace a built-in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def add(table: dict[str, Any], name: str, entry: Any, what: str) -> None:
    """Puts ``entry`` under ``name`` in ``table``; ``what`` names the registry in the error."""
    if name in table and table[name] is not entry:
        raise ValueError(f"{what} {name!r} is already registered")
    table[name] = entry


def registrar(table: dict[str, Any], what: str) -> Callable[[str], Callable[[T], T]]:
    """``register = registrar(TABLE, "schedule")`` makes ``@register(NAME)`` put the decorated object in TABLE."""
    def register(name: str) -> Callable[[T], T]:
        def wrap(entry: T) -> T:
            add(table, name, entry, what)
            return entry

        return wrap

    return register
