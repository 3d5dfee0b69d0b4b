"""Declared schemas: one way to read a value from a file or a flag against its type.

A schema is a Python type annotation. The same annotation gives

- :func:`coerce`: the value as the field holds it (YAML integers for a float
  field become floats, lists for a tuple field tuples), or :data:`INVALID`;
- :func:`describe`: what the field accepts, in words, for error messages;
- :func:`json_schema`: JSON Schema, for editors that check YAML files
  (``augbench schema``);
- :func:`read`: a declared dataclass from a mapping (an experiment file, a
  recipe file, a section of one), every error naming the file and the dotted
  field: ``FILE: field search.final.seeds[1]: got 'x'; accepted: an integer``.

Annotations are the usual ones (``int``, ``float``, ``bool``, ``str``,
``None``, ``list[T]``, ``tuple[A, B]``, ``dict[str, T]``, unions,
``Literal``, ``Any``, a declared dataclass for a nested section) plus two
markers:

- ``registered(REGISTRY)``: a name in a registry, checked against the
  registry as it is when the value is read (plugins register late);
- ``Annotated[T, Rule(check, "what it accepts")]``: a value of ``T`` for
  which ``check`` holds (a range, a pattern).

A dataclass read by :func:`read` may define ``check(self)``, raising
:class:`Invalid` for rules across fields (``heartbeat.grace`` must exceed
``heartbeat.interval``). Its fields' metadata may hold ``accepted`` (words
that replace :func:`describe`'s) and ``doc`` (a line for the JSON Schema);
:func:`declared` writes both.

This module is what the run configuration (``augbench.config``), recipe
files and operation arguments (``augbench.augment.recipe``), method
arguments (``augbench.methods.base``) and experiment files
(``augbench.tune.experiment``) are all checked with.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from augbench.errors import UsageError

#: What :func:`coerce` returns for a value its annotation does not accept.
INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID"})()


@dataclass(frozen=True, eq=False)
class Rule:
    """``Annotated[T, Rule(check, accepted)]``: a value of ``T`` for which ``check(value)`` is true.

    ``accepted`` is the words for error messages, or a function giving them when they change (a
    registry's current names); ``names``, when given, lists every accepted value (a JSON Schema enum);
    ``json`` is the rule in JSON Schema's words where it has them (``{"minimum": 1}``).
    """

    check: Callable[[Any], bool]
    accepted: str | Callable[[], str]
    names: Callable[[], list[Any]] | None = None
    json: Mapping[str, Any] | None = None

    def words(self) -> str:
        return self.accepted() if callable(self.accepted) else self.accepted


def registered(registry: Mapping[str, Any]) -> Any:
    """The annotation of a name in ``registry``, checked against the registry as it is at each check."""
    return Annotated[str, Rule(lambda v: v in registry, lambda: "one of " + ", ".join(map(str, registry)),
                               lambda: list(registry))]


def at_least(minimum: int | float, accepted: str | None = None) -> Rule:
    return Rule(lambda v: v >= minimum, accepted or f"{'an integer' if isinstance(minimum, int) else 'a number'} "
                                                   f">= {minimum}", json={"minimum": minimum})


def between(low: int | float, high: int | float, accepted: str, open_: bool = False) -> Rule:
    """``low <= v <= high`` (``open_``: ``low < v < high``)."""
    if open_:
        return Rule(lambda v: low < v < high, accepted, json={"exclusiveMinimum": low, "exclusiveMaximum": high})
    return Rule(lambda v: low <= v <= high, accepted, json={"minimum": low, "maximum": high})


#: ``Annotated[list[T], DISTINCT]``: a non-empty list without repeated entries.
DISTINCT = Rule(lambda v: bool(v) and len({json.dumps(x, sort_keys=True, default=str) for x in v}) == len(v),
                "a non-empty list without repeated entries", json={"minItems": 1, "uniqueItems": True})


class Invalid(Exception):
    """A value a schema does not accept: where (a dotted field, relative to the section), what, and the words."""

    def __init__(self, where: str, value: Any, accepted: str, missing: bool = False, unknown: bool = False):
        super().__init__(f"{where}: got {value!r}; accepted: {accepted}")
        self.where, self.value, self.accepted = where, value, accepted
        self.missing, self.unknown = missing, unknown

    def inside(self, prefix: str) -> Invalid:
        where = f"{prefix}.{self.where}" if prefix and self.where and not self.where.startswith("[") else \
            f"{prefix}{self.where}"
        return Invalid(where, self.value, self.accepted, self.missing, self.unknown)

    def message(self, source: str) -> str:
        if self.missing:
            return f"{source}: field {self.where} is missing; accepted: {self.accepted}"
        if self.unknown:
            return f"{source}: unknown field {self.where}; accepted: {self.accepted}"
        return f"{source}: field {self.where}: got {self.value!r}; accepted: {self.accepted}"


def declared(default: Any = dataclasses.MISSING, *, factory: Any = None, accepted: str | None = None,
             doc: str = "", required: bool = True) -> Any:
    """A dataclass field with the words it accepts (instead of :func:`describe`'s) and a line of doc.

    ``required=False`` marks a field without a default that :func:`read` may take from its ``defaults``
    (an experiment's ``epochs`` from its protocol): JSON Schema does not require it.
    """
    metadata = {"accepted": accepted, "doc": doc, "required": required}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


# -- annotations in words, checked, and as JSON Schema -----------------------------------------------

_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "text", list: "a list",
          dict: "a mapping", type(None): "null", Any: "any value"}


def _parts(tp: Any) -> tuple[Any, tuple]:
    return typing.get_origin(tp), typing.get_args(tp)


def describe(tp: Any) -> str:
    """What annotation ``tp`` accepts, in words."""
    origin, args = _parts(tp)
    if origin is Annotated:
        rules = [a for a in args[1:] if isinstance(a, Rule)]
        return rules[-1].words() if rules else describe(args[0])
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is list:
        return f"a list, each {describe(args[0])}" if args else "a list"
    if origin is tuple:
        return "[" + ", ".join(describe(a) for a in args) + "]"
    if origin is dict and args:
        return f"a mapping, each value {describe(args[1])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping with the fields " + ", ".join(f.name for f in dataclasses.fields(tp))
    return _WORDS.get(origin or tp, getattr(tp, "__name__", str(tp)))


def check(value: Any, tp: Any, where: str = "") -> Any:
    """``value`` as annotation ``tp`` holds it; raises :class:`Invalid` naming the innermost failing part."""
    origin, args = _parts(tp)
    if tp is Any:
        return value
    if origin is Annotated:
        try:
            value = check(value, args[0], where)
        except Invalid as err:  # the value itself has the wrong type: say what the rule accepts
            rules = [a for a in args[1:] if isinstance(a, Rule)]
            raise (Invalid(where, value, rules[-1].words()) if rules and err.where == where else err) from None
        for rule in (a for a in args[1:] if isinstance(a, Rule)):
            if not rule.check(value):
                raise Invalid(where, value, rule.words())
        return value
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise Invalid(where, value, describe(tp))
    if origin in (Union, types.UnionType):
        inner = None
        for option in args:
            try:
                return check(value, option, where)
            except Invalid as err:  # the deepest complaint is the most useful one (a list item, a field)
                if err.where != where and inner is None:
                    inner = err
        raise inner or Invalid(where, value, describe(tp))
    if origin is list:
        if not isinstance(value, list):
            raise Invalid(where, value, describe(tp))
        return [check(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise Invalid(where, value, describe(tp))
        return tuple(check(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise Invalid(where, value, describe(tp))
        if not args:
            return value
        return {check(k, args[0], where): check(v, args[1], f"{where}.{k}" if where else str(k))
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _read(tp, value, {}, where)
    kind = origin or tp
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is type(None) and value is None:
        return None
    if kind not in (int, float, type(None)) and isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise Invalid(where, value, describe(tp))


def coerce(value: Any, tp: Any) -> Any:
    """``value`` as annotation ``tp`` holds it, or :data:`INVALID`."""
    try:
        return check(value, tp)
    except Invalid:
        return INVALID


def json_schema(tp: Any) -> dict[str, Any]:
    """Annotation ``tp`` as JSON Schema (draft 2020-12); rules beyond types appear as descriptions."""
    origin, args = _parts(tp)
    if tp is Any:
        return {}
    if origin is Annotated:
        rules = [a for a in args[1:] if isinstance(a, Rule)]
        names = [a.names() for a in rules if a.names is not None]
        words = [a.words() for a in rules if a.names is None]
        keywords = {k: v for a in rules if a.json for k, v in a.json.items()}
        return {**json_schema(args[0]), **({"enum": names[-1]} if names else {}), **keywords,
                **({"description": "; ".join(words)} if words else {})}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (Union, types.UnionType):
        return {"anyOf": [json_schema(a) for a in args]}
    if origin is list:
        return {"type": "array", **({"items": json_schema(args[0])} if args else {})}
    if origin is tuple:
        return {"type": "array", "prefixItems": [json_schema(a) for a in args], "minItems": len(args),
                "maxItems": len(args)}
    if origin is dict:
        return {"type": "object", **({"additionalProperties": json_schema(args[1])} if args else {})}
    if dataclasses.is_dataclass(tp):
        properties, required = {}, []
        for f in dataclasses.fields(tp):
            prop = json_schema(hints(tp)[f.name])
            words = [w for w in (f.metadata.get("doc"), f.metadata.get("accepted"), prop.get("description")) if w]
            if words:
                prop["description"] = "; ".join(dict.fromkeys(words))
            if f.default is not dataclasses.MISSING:
                if coerce(f.default, hints(tp)[f.name]) is not INVALID:  # a section's None means "not given"
                    prop["default"] = f.default
            elif f.default_factory is dataclasses.MISSING and f.metadata.get("required", True):
                required.append(f.name)
            properties[f.name] = prop
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    names = {int: "integer", float: "number", bool: "boolean", str: "string", type(None): "null",
             list: "array", dict: "object"}
    return {"type": names[origin or tp]} if (origin or tp) in names else {}


# -- declared dataclasses and keyword parameters -----------------------------------------------------

@functools.cache
def hints(target: Any) -> dict[str, Any]:
    """The evaluated annotations of a dataclass or a function (``Annotated`` kept)."""
    return typing.get_type_hints(target.__init__ if isinstance(target, type) and not dataclasses.is_dataclass(target)
                                 else target, include_extras=True)


def accepted(cls: Any, name: str) -> str:
    """What field ``name`` of dataclass ``cls`` accepts, in words."""
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    return spec.metadata.get("accepted") or describe(hints(cls)[name])


def _read(cls: Any, data: Any, defaults: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise Invalid(where or "(top level)", data, "a mapping of field: value")
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    for key in data:
        if key not in names:  # a section may say where the fields it lacks live (``unknown_hint``)
            hint = getattr(cls, "unknown_hint", "")
            raise Invalid(str(key), None, ", ".join(names) + (f" ({hint})" if hint else ""),
                          unknown=True).inside(where)
    values = {}
    for f in fields:
        tp = hints(cls)[f.name]
        if f.name in data:
            raw = data[f.name]
        elif f.name in defaults:
            raw = defaults[f.name]
        elif dataclasses.is_dataclass(tp) and f.default_factory is not dataclasses.MISSING:
            raw = {}  # a section left out that has a default: its own fields' defaults, checked
        elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        else:
            raise Invalid(f.name, None, accepted(cls, f.name), missing=True).inside(where)
        try:
            values[f.name] = check(raw, tp, f.name)
        except Invalid as err:
            if err.where == f.name and f.metadata.get("accepted"):
                err = Invalid(err.where, err.value, f.metadata["accepted"])
            raise err.inside(where) from None
    instance = cls(**values)
    if hasattr(instance, "check"):
        try:
            instance.check()
        except Invalid as err:
            raise err.inside(where) from None
    return instance


def read(cls: Any, data: Any, source: str, where: str = "", defaults: Mapping[str, Any] | None = None) -> Any:
    """Dataclass ``cls`` from mapping ``data``; UsageError ``SOURCE: field WHERE.NAME: got ...; accepted: ...``.

    ``defaults`` stand in for fields ``data`` leaves out (a protocol's settings), checked like given values.
    Unknown fields, missing required fields and every value are checked; nested dataclasses are read in turn.
    """
    try:
        return _read(cls, data, defaults or {}, where)
    except Invalid as err:
        raise UsageError(err.message(source)) from None


def read_arguments(factory: Callable, given: Mapping[str, Any], where: str,
                   skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``given`` checked against ``factory``'s annotated keyword parameters; all of them, defaults included."""
    types_ = hints(factory)
    params = {name: p for name, p in inspect.signature(factory).parameters.items()
              if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    words = ", ".join(f"{name} ({describe(types_[name])})" for name in params) or "no arguments"
    resolved = {}
    try:
        for key in given:
            if key not in params:
                raise Invalid(str(key), None, words, unknown=True)
        for name, param in params.items():
            if name in given:
                resolved[name] = check(given[name], types_[name], name)
            elif param.default is inspect.Parameter.empty:
                raise Invalid(name, None, describe(types_[name]), missing=True)
            else:
                resolved[name] = param.default
    except Invalid as err:
        raise UsageError(err.message(where)) from None
    return resolved


def read_tagged(kinds: Mapping[str, Any], data: Any, source: str, where: str, tag: str = "type") -> Any:
    """One of several declared dataclasses, chosen by the mapping's ``tag`` field (``type: float``).

    ``kinds`` maps each tag value to its dataclass, which declares the tag field too (so that it is an
    accepted field). Errors name ``WHERE.TAG`` for an unknown kind and the dotted field otherwise.
    """
    names = ", ".join(kinds)
    if not isinstance(data, dict):
        raise UsageError(Invalid(where, data, f"a mapping with {tag}: {names}").message(source))
    if tag not in data:
        raise UsageError(Invalid(tag, None, names, missing=True).inside(where).message(source))
    if not isinstance(data[tag], str) or data[tag] not in kinds:
        raise UsageError(Invalid(tag, data[tag], names).inside(where).message(source))
    return read(kinds[data[tag]], data, source, where)
