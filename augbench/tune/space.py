"""Search-space parameters of an experiment, by type: ``float``, ``int`` and ``categorical``.

``PARAM_TYPES`` maps a type name to how its specification is read and how a
trial suggests it (Optuna's ``suggest_float``, ``suggest_int``,
``suggest_categorical``); a new type is one entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from augbench.tune.schema import Section


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
class ParamType:
    parse: Any
    suggest: Any


def parse_range(spec: Section, name: str, kind: type) -> Param:
    accepted = "an integer" if kind is int else "a number"
    low = spec.get("low", kind=kind, accepted=accepted)
    high = spec.get("high", kind=kind, accepted=accepted)
    log = spec.get("log", False, kind=bool, accepted="true or false")
    step = spec.get("step", None, kind=(kind, type(None)), accepted=f"{accepted} > 0")
    if not low < high:
        spec.fail(spec.path("high"), high, f"a value greater than low ({low})")
    if log and low <= 0:
        spec.fail(spec.path("low"), low, "a value > 0 when log is true")
    if step is not None and (step <= 0 or log):
        spec.fail(spec.path("step"), step, f"{accepted} > 0, and no step when log is true")
    spec.finish(("type", "low", "high", "log", "step"))
    return Param(name, "int" if kind is int else "float", low, high, log, step)


def parse_categorical(spec: Section, name: str) -> Param:
    choices = spec.names("choices", accepted="numbers, strings or booleans")
    for choice in choices:
        if not isinstance(choice, (int, float, str, bool)):
            spec.fail(spec.path("choices"), choice, "numbers, strings or booleans")
    spec.finish(("type", "choices"))
    return Param(name, "categorical", choices=tuple(choices))


PARAM_TYPES: dict[str, ParamType] = {
    "float": ParamType(lambda spec, name: parse_range(spec, name, float),
                       lambda p, trial: trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)),
    "int": ParamType(lambda spec, name: parse_range(spec, name, int),
                     lambda p, trial: trial.suggest_int(p.name, p.low, p.high, log=p.log, step=p.step or 1)),
    "categorical": ParamType(parse_categorical,
                             lambda p, trial: trial.suggest_categorical(p.name, list(p.choices))),
}
