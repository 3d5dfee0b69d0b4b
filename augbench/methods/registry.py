"""The registry of training methods: ``METHODS`` by name, filled by ``@register_method``."""

from __future__ import annotations

from typing import Any

from augbench.errors import FieldError
from augbench.methods.base import Method
from augbench.registry import add

METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: makes ``cls`` available under ``cls.name``."""
    add(METHODS, cls.name, cls, "method")
    return cls


def list_methods() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise FieldError("method", f"--method {name}: unknown method (accepted: {', '.join(list_methods())})")
    return METHODS[name]


def create_method(name: str, num_classes: int, args: dict[str, Any] | None = None) -> Method:
    return get_method(name)(num_classes, **(args or {}))
