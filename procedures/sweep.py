"""Campaign YAML to children: sweeps expanded, fan-out decided, everything validated.

:func:`expand` turns a parsed campaign document into :class:`CampaignEntry` objects,
one per child run, reporting every problem of every step in one ConfigError before
anything runs. The YAML keys and what makes a step fan out are described in
:mod:`xbarlab.procedures.campaign`; training steps are declared by
:class:`TrainParameters`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from xbarlab.chipdrivers import parse_spec
from xbarlab.errors import ConfigError
from xbarlab.procedures import params as P
from xbarlab.procedures import registry
from xbarlab.procedures.base import Procedure
from xbarlab.procedures.executors import HARDWARE_SCHEMES, TRAIN, check_station_name

_TOP_KEYS = ("backend", "steps", "station")
_STEP_KEYS = ("procedure", "params", "sweep", "backend", "backend_sweep", "fanout", "station")
_FANOUT_KEYS = ("backend", "backend_sweep", "station")
#: prefix of a backend_sweep parameter in a child's label: ``drift[backend.seed=3]``
BACKEND_LABEL = "backend."


@dataclass(frozen=True)
class TrainParameters:
    """Parameters of a ``procedure: train`` step (see xbarlab.training.runs)."""

    mode: str = P.param("mixed-precision", help="training mode, one of xbarlab.training.runs.MODES")
    epochs: int | None = P.param(None, lo=1, help="training epochs (default: the mode's)")
    hidden: int = P.param(64, lo=1, help="hidden layer width")
    seed: int = P.param(0, lo=0, help="seeds the data split, initial weights and sample order")


@dataclass(frozen=True)
class CampaignEntry:
    """One child run of a campaign.

    procedure: the validated procedure (None for a training step); label: readable
    name; step: 0-based index of the YAML step it came from; fanout: runs as an
    independent task; name and values: procedure name and JSON parameters (what a
    task carries); backend: the step's own spec (None: the campaign's), with the
    ``backend_sweep`` values in ``backend_params``; station: pins the task.
    """

    procedure: Procedure | None
    label: str
    step: int = 0
    fanout: bool = False
    name: str = ""
    values: dict | None = None
    backend: str | None = None
    backend_params: dict | None = None
    station: str | None = None


def with_spec_params(spec: str, values: Mapping[str, Any]) -> str:
    """``spec`` with the parameters ``values`` replacing or adding its own."""
    parsed = parse_spec(spec)
    merged = dict(parsed.params)
    for key, value in values.items():
        merged[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    query = urlencode(merged, safe=":/,")
    return f"{parsed.scheme}:{parsed.target}" + (f"?{query}" if query else "")


def expand(doc) -> list[CampaignEntry]:
    """Expand sweeps and validate every step's parameters; all errors at once."""
    if not isinstance(doc, dict):
        raise ConfigError("a campaign must be a mapping with a 'steps' list (and 'backend')")
    unknown = sorted(set(doc) - set(_TOP_KEYS))
    steps = doc.get("steps")
    errors = (
        [f"unknown campaign key(s) {', '.join(unknown)}; known: {', '.join(_TOP_KEYS)}"]
        if unknown
        else []
    )
    if doc.get("backend") is not None and not isinstance(doc["backend"], str):
        errors.append(f"backend must be a spec string, got {doc['backend']!r}")
    station = doc.get("station")
    if station is not None:
        try:
            check_station_name(station)
        except ConfigError as exc:
            errors.append(str(exc))
    if not isinstance(steps, list) or not steps:
        errors.append("a campaign needs a non-empty 'steps' list")
        steps = []
    entries = []
    for i, step in enumerate(steps):
        try:
            entries += _expand(step, i, station, doc.get("backend"))
        except ConfigError as exc:
            name = step.get("procedure", "?") if isinstance(step, dict) else "?"
            errors.append(f"step {i + 1} ({name}): {exc}")
    raise_all(errors)
    return entries


def _expand(step, index: int, station: str | None, default: Any) -> list[CampaignEntry]:
    """The children of one step; ``station`` and ``default`` (backend) are the campaign's."""
    if not isinstance(step, dict):
        raise ConfigError(f"a step must be a mapping with 'procedure', got {step!r}")
    unknown = sorted(set(step) - set(_STEP_KEYS))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(_STEP_KEYS)}")
    name = step.get("procedure")
    cls = None if name == TRAIN else registry.get(name)
    params = step.get("params") or {}
    sweep = step.get("sweep") or {}
    backend_sweep = step.get("backend_sweep") or {}
    for key, value in (("params", params), ("sweep", sweep), ("backend_sweep", backend_sweep)):
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' must be a mapping of parameter: value(s), got {value!r}")
    for name_, values in (*sweep.items(), *backend_sweep.items()):
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep of {name_} must be a non-empty list, got {values!r}")
    backend = step.get("backend")
    if backend is not None:
        if not isinstance(backend, str):
            raise ConfigError(f"backend must be a spec string, got {backend!r}")
        parse_spec(backend)
    fanout = step.get("fanout", False)
    if not isinstance(fanout, bool):
        raise ConfigError(f"fanout must be true or false, got {fanout!r}")
    if step.get("station") is not None:
        station = check_station_name(step["station"])
    fanout = fanout or cls is None or bool(backend_sweep) or any(k in step for k in _FANOUT_KEYS)
    if station is not None and not fanout:  # a campaign-wide station: its hardware steps
        fanout = not isinstance(default, str) or _is_hardware(default)
    entries = []
    for combo in itertools.product(*sweep.values(), *backend_sweep.values()):
        swept = dict(zip(sweep, combo[: len(sweep)], strict=True))
        chip = dict(zip(backend_sweep, combo[len(sweep) :], strict=True))
        values = {**params, **swept}
        parts = [f"{k}={v}" for k, v in swept.items()]
        parts += [f"{BACKEND_LABEL}{k}={v}" for k, v in chip.items()]
        label = (name or "?") + ("[" + ", ".join(parts) + "]" if parts else "")
        if cls is None:
            procedure, json_values = None, _train_values(values)
        else:
            procedure = cls.from_values(values)
            json_values = procedure.parameters_json()
        entries.append(
            CampaignEntry(
                procedure, label, index, fanout, name, json_values, backend, chip, station
            )
        )
    return entries


def _train_values(values: Mapping[str, Any]) -> dict:
    """The JSON parameters of a training step, validated (ConfigError naming the bad one)."""
    from xbarlab.training.runs import MODES  # training sits beside procedures, imported late

    mode = values.get("mode", "mixed-precision")
    bad_mode = (
        f"parameter mode = {mode!r} is not allowed: need one of {', '.join(MODES)}"
        if mode not in MODES
        else None
    )
    try:
        parsed = P.parse(TrainParameters, values)
    except ConfigError as exc:
        raise ConfigError("; ".join(filter(None, (bad_mode, str(exc))))) from None
    if bad_mode:
        raise ConfigError(bad_mode)
    return P.to_json(parsed)


def _is_hardware(spec: str) -> bool:
    return spec.split(":", 1)[0].strip().lower() in HARDWARE_SCHEMES


def raise_all(errors: list[str]) -> None:
    if errors:
        raise ConfigError(
            f"campaign refused, nothing was run ({len(errors)} problem(s)): " + "; ".join(errors)
        )
