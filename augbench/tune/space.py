"""Search-space parameters of an experiment, by type: ``float``, ``int`` and ``categorical``.

``PARAM_TYPES`` maps a type name to the declared fields of its
specification (``search.space.METHOD.NAME`` in an experiment file, read with
:func:`augbench.schema.read_tagged`) and how a trial suggests it (Optuna's
``suggest_float``, ``suggest_int``, ``suggest_categorical``); a new type is
one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from augbench.schema import DISTINCT, Invalid, declared, read_tagged


@dataclass(frozen=True)
class Param:
    """One searched parameter: an Optuna distribution, suggested by name in a trial."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        return PARAM_TYPES[self.type].suggest(self, trial)

    def extremes(self) -> list[Any]:
        """The values a check must accept: both bounds, or every choice."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]

    def to_dict(self) -> dict[str, Any]:
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        spec = {"type": self.type, "low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            spec["step"] = self.step
        return spec


@dataclass(frozen=True)
class FloatRange:
    """``{type: float, low, high, log, step}``: Optuna's ``suggest_float``."""

    type: str
    # int | float: bounds keep the type written (``low: 1`` stays 1), so the definition (and its hash) is the file's.
    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = None

    def check(self) -> None:
        if not self.low < self.high:
            raise Invalid("high", self.high, f"a value greater than low ({self.low})")
        if self.log and self.low <= 0:
            raise Invalid("low", self.low, "a value > 0 when log is true")
        if self.step is not None and (self.step <= 0 or self.log):
            raise Invalid("step", self.step, "a value > 0, and no step when log is true")


@dataclass(frozen=True)
class IntRange(FloatRange):
    """``{type: int, low, high, log, step}``: Optuna's ``suggest_int``."""

    low: int
    high: int
    step: int | None = None


@dataclass(frozen=True)
class Choices:
    """``{type: categorical, choices: [...]}``: Optuna's ``suggest_categorical``."""

    type: str
    choices: Annotated[list[int | float | str | bool], DISTINCT] = declared(
        accepted="a non-empty list of distinct numbers, strings or booleans")


@dataclass(frozen=True)
class ParamType:
    spec: type
    suggest: Callable[[Param, Any], Any]


PARAM_TYPES: dict[str, ParamType] = {
    "float": ParamType(FloatRange, lambda p, trial: trial.suggest_float(p.name, p.low, p.high, log=p.log,
                                                                        step=p.step)),
    "int": ParamType(IntRange, lambda p, trial: trial.suggest_int(p.name, p.low, p.high, log=p.log,
                                                                  step=p.step or 1)),
    "categorical": ParamType(Choices, lambda p, trial: trial.suggest_categorical(p.name, list(p.choices))),
}


def parse_param(spec: Any, name: str, source: str, where: str) -> Param:
    """The parameter ``name`` of a search space from its specification; UsageError naming ``where``."""
    read = read_tagged({kind: t.spec for kind, t in PARAM_TYPES.items()}, spec, source, where)
    if isinstance(read, Choices):
        return Param(name, read.type, choices=tuple(read.choices))
    return Param(name, read.type, read.low, read.high, read.log, read.step)
