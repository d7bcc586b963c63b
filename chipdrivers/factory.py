"""Backend spec strings and the one place that opens a chip: :func:`open_crossbar`.

A spec is ``scheme:target?key=value&key=value``, the same in the CLI, the GUI,
YAML campaigns and Python, e.g. ``emulator:pcm?rows=256&cols=256&seed=1``.
Backends register an opener per scheme; the emulator and the hardware drivers
meet only here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from xbarlab.chipdrivers.crossbar import Crossbar
from xbarlab.errors import SpecError


@dataclass(frozen=True)
class Spec:
    """A parsed backend spec. ``params`` values are still strings."""

    scheme: str
    target: str
    params: dict[str, str]
    text: str


@dataclass(frozen=True)
class BackendEntry:
    opener: Callable[[Spec], Crossbar]
    usage: str


_BACKENDS: dict[str, BackendEntry] = {}


def register_backend(scheme: str, opener: Callable[[Spec], Crossbar], usage: str) -> None:
    """Make ``scheme:`` specs open through ``opener``; ``usage`` is an example spec."""
    _BACKENDS[scheme] = BackendEntry(opener, usage)


def backends() -> dict[str, str]:
    """Registered schemes and an example spec for each."""
    _load_builtin()
    return {scheme: entry.usage for scheme, entry in sorted(_BACKENDS.items())}


def parse_spec(text: str) -> Spec:
    """Split a spec string into scheme, target and parameters."""
    if not isinstance(text, str) or ":" not in text:
        raise SpecError(
            f"backend spec {text!r} has no scheme; write scheme:target?key=value, e.g. {_example()}"
        )
    scheme, rest = text.split(":", 1)
    target, _, query = rest.partition("?")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise SpecError(
            f"cannot parse the parameters {query!r} of spec {text!r}; "
            "write key=value pairs joined by &"
        ) from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise SpecError(f"parameter {key!r} given twice in spec {text!r}")
        params[key] = value
    return Spec(scheme.strip().lower(), target, params, text)


def open_crossbar(spec: str) -> Crossbar:
    """Open the chip a spec string names; raises SpecError listing valid choices."""
    parsed = parse_spec(spec)
    _load_builtin()
    entry = _BACKENDS.get(parsed.scheme)
    if entry is None:
        valid = "; ".join(f"{s}: (e.g. {u})" for s, u in backends().items())
        raise SpecError(f"unknown backend scheme {parsed.scheme!r} in {spec!r}; valid: {valid}")
    return entry.opener(parsed)


def _example() -> str:
    return "emulator:pcm?rows=256&cols=256&seed=1"


#: backends shipped with xbarlab: scheme -> (module, opener name, example spec)
_BUILTIN = {
    "emulator": ("xbarlab.chipdrivers.emulated", "open_emulator", _example()),
    "board": ("xbarlab.chipdrivers.board", "open_board", "board:socket://127.0.0.1:5555"),
    "bench": ("xbarlab.chipdrivers.bench", "open_bench", "bench:lab/station.yaml"),
}


def _load_builtin() -> None:
    """Register the backends shipped with xbarlab. Their modules are imported on first
    open, so listing backends needs neither numba nor pyvisa nor pyserial."""
    for scheme, (module, name, usage) in _BUILTIN.items():
        if scheme not in _BACKENDS:
            register_backend(scheme, _lazy_opener(module, name), usage)


def _lazy_opener(module: str, name: str) -> Callable[[Spec], Crossbar]:
    def opener(spec: Spec) -> Crossbar:
        return getattr(importlib.import_module(module), name)(spec)

    opener.__qualname__ = f"{module}.{name}"
    return opener
