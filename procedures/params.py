"""Declared procedure parameters: one declaration serves the CLI, YAML, the GUI and the README.

A procedure's ``Parameters`` is a frozen dataclass whose fields are made with
:func:`param`, which carries the unit, the help text and the allowed range or choices.
:func:`parse` turns CLI strings (``-p key=value``) or typed YAML values into a validated
instance, so every bad value is refused here, before any hardware is touched, with a
message naming the parameter, the value, the allowed range and the unit.

Supported field types: ``int``, ``float``, ``bool``, ``str``, ``tuple[float, ...]``,
``tuple[int, ...]`` (lists: comma-separated on the command line), each optionally
``| None`` (``none`` or an empty string on the command line). Bounds apply to every
element of a list. Cross-field rules go in the dataclass's ``__post_init__`` and raise
ConfigError naming the parameters.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xbarlab.errors import ConfigError

_META = "xbarlab_param"
_SCALARS = (int, float, bool, str)


def param(
    default,
    *,
    unit: str = "",
    help: str = "",
    lo=None,
    hi=None,
    choices=None,
    lo_inclusive: bool = True,
    hi_inclusive: bool = True,
) -> dataclasses.Field:
    """A dataclass field declaring one procedure parameter.

    ``default`` must be immutable (use a tuple for lists). ``lo``/``hi`` bound numbers
    (inclusive unless told otherwise); ``choices`` lists the allowed strings.
    """
    meta = {
        "unit": unit,
        "help": help,
        "lo": lo,
        "hi": hi,
        "choices": tuple(choices) if choices is not None else None,
        "lo_inclusive": lo_inclusive,
        "hi_inclusive": hi_inclusive,
    }
    return dataclasses.field(default=default, metadata={_META: meta})


def positive_param(default, unit: str, help: str):
    """The declaration of a quantity > 0 in ``unit`` (``default`` None: optional)."""
    return param(default, unit=unit, lo=0, lo_inclusive=False, help=help)


@dataclass(frozen=True)
class ParamSpec:
    """Everything known about one declared parameter.

    ``type`` is the element type (int, float, bool or str); ``is_list`` says the value is
    a tuple of them; ``optional`` says None is allowed.
    """

    name: str
    type: type
    default: Any
    unit: str = ""
    help: str = ""
    lo: Any = None
    hi: Any = None
    choices: tuple | None = None
    lo_inclusive: bool = True
    hi_inclusive: bool = True
    is_list: bool = False
    optional: bool = False

    @property
    def type_name(self) -> str:
        """Readable type, e.g. ``float``, ``list[float]``, ``int | None``."""
        name = f"list[{self.type.__name__}]" if self.is_list else self.type.__name__
        return f"{name} | None" if self.optional else name

    def allowed(self) -> str:
        """The allowed values in words, e.g. ``2 <= value <= 1000`` or ``one of a, b``."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        parts = []
        if self.lo is not None:
            parts.append(f"{self.lo:g} {'<=' if self.lo_inclusive else '<'} ")
        parts.append("value")
        if self.hi is not None:
            parts.append(f" {'<=' if self.hi_inclusive else '<'} {self.hi:g}")
        text = "".join(parts)
        return "any " + self.type_name if text == "value" else text

    def to_dict(self) -> dict:
        """JSON-ready description (CLI ``procedures --json``, GUI forms)."""
        return {
            "name": self.name,
            "type": self.type_name,
            "default": list(self.default) if isinstance(self.default, tuple) else self.default,
            "unit": self.unit,
            "help": self.help,
            "lo": self.lo,
            "hi": self.hi,
            "choices": list(self.choices) if self.choices is not None else None,
            "lo_inclusive": self.lo_inclusive,
            "hi_inclusive": self.hi_inclusive,
            "allowed": self.allowed(),
        }


def specs(parameters_cls) -> list[ParamSpec]:
    """The declared parameters of a Parameters dataclass, in declaration order."""
    hints = typing.get_type_hints(parameters_cls)
    out = []
    for f in dataclasses.fields(parameters_cls):
        meta = f.metadata.get(_META)
        if meta is None:
            raise TypeError(f"{parameters_cls.__name__}.{f.name} is not declared with param()")
        kind, is_list, optional = _unpack(hints[f.name], f"{parameters_cls.__name__}.{f.name}")
        out.append(ParamSpec(f.name, kind, f.default, is_list=is_list, optional=optional, **meta))
    return out


def parse(parameters_cls, values: Mapping[str, Any]):
    """A validated ``parameters_cls`` instance from CLI strings or typed YAML values.

    Raises ConfigError on an unknown name (listing the known ones) or a bad value
    (naming the parameter, the value, the allowed range or choices, and the unit).
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"parameters must be a mapping of name: value, got {values!r}")
    known = {s.name: s for s in specs(parameters_cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(map(str, unknown))}; known: {', '.join(known)}"
        )
    converted, errors = {}, []
    for name, value in values.items():
        try:
            converted[name] = convert(known[name], value)
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError("; ".join(errors))
    return parameters_cls(**converted)


def to_json(params) -> dict:
    """A Parameters instance as a JSON-ready dict (tuples as lists), for the run store."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(params).items()
    }


def convert(spec: ParamSpec, value):
    """One value checked and converted to the declared type; ConfigError if it is bad."""
    if spec.optional and (
        value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null"))
    ):
        return None
    if spec.is_list:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not items:
            _refuse(spec, value, "a non-empty list")
        return tuple(_scalar(spec, v) for v in items)
    return _scalar(spec, value)


def _scalar(spec: ParamSpec, value):
    v = _typed(spec, value)
    if spec.choices is not None and v not in spec.choices:
        _refuse(spec, value, spec.allowed())
    if spec.type in (int, float) and not _in_range(spec, v):
        _refuse(spec, value, spec.allowed())
    return v


def _typed(spec: ParamSpec, value):
    """``value`` as the spec's element type, from a string or a YAML scalar."""
    kind = spec.type
    if isinstance(value, str):
        value = value.strip()
    if kind is bool:
        words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in words:
            return words[value.lower()]
        _refuse(spec, value, "true or false")
    if kind is str:
        if not isinstance(value, str):
            _refuse(spec, value, "a string")
        return value
    if isinstance(value, bool):
        _refuse(spec, value, f"a number ({kind.__name__})")
    try:
        number = float(value)
    except (TypeError, ValueError):
        _refuse(spec, value, f"a number ({kind.__name__})")
    if not math.isfinite(number):
        _refuse(spec, value, "a finite number")
    if kind is int:
        if number != int(number):
            _refuse(spec, value, "an integer")
        return int(number)
    return number


def _in_range(spec: ParamSpec, v) -> bool:
    if spec.lo is not None and not (v >= spec.lo if spec.lo_inclusive else v > spec.lo):
        return False
    return spec.hi is None or (v <= spec.hi if spec.hi_inclusive else v < spec.hi)


def _refuse(spec: ParamSpec, value, allowed: str):
    unit = f" (unit: {spec.unit})" if spec.unit else ""
    raise ConfigError(f"parameter {spec.name} = {value!r} is not allowed: need {allowed}{unit}")


def _unpack(hint, where: str) -> tuple[type, bool, bool]:
    """(element type, is_list, optional) of a supported annotation."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"{where}: unsupported type {hint!r}")
        hint, optional = args[0], True
    is_list = typing.get_origin(hint) is tuple
    if is_list:
        args = typing.get_args(hint)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{where}: lists must be declared tuple[T, ...], got {hint!r}")
        hint = args[0]
    if hint not in _SCALARS:
        raise TypeError(f"{where}: unsupported type {hint!r}")
    return hint, is_list, optional
