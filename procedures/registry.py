"""The procedures by name: what ``xbarlab run NAME``, campaigns and the GUI can run."""

from __future__ import annotations

from xbarlab.errors import ConfigError
from xbarlab.procedures.base import Procedure
from xbarlab.procedures.conductance_map import ConductanceMap
from xbarlab.procedures.drift import Drift
from xbarlab.procedures.drift_compensation import DriftCompensation
from xbarlab.procedures.endurance import Endurance
from xbarlab.procedures.forming import Forming
from xbarlab.procedures.iv_sweep import IVSweep
from xbarlab.procedures.level_capacity import LevelCapacity
from xbarlab.procedures.params import specs
from xbarlab.procedures.program_array import ProgramArray
from xbarlab.procedures.program_report import ProgramReport
from xbarlab.procedures.pulse_response import PulseResponse
from xbarlab.procedures.retention import Retention

PROCEDURES: dict[str, type[Procedure]] = {
    cls.name: cls
    for cls in (
        ProgramArray,
        ConductanceMap,
        Drift,
        DriftCompensation,
        Retention,
        IVSweep,
        Endurance,
        PulseResponse,
        LevelCapacity,
        ProgramReport,
        Forming,
    )
}


def get(name: str) -> type[Procedure]:
    """The procedure class called ``name``; ConfigError listing the names otherwise."""
    try:
        return PROCEDURES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown procedure {name!r}; known: {', '.join(PROCEDURES)}") from None


def describe() -> list[dict]:
    """Every procedure with its summary and parameters, JSON-ready."""
    return [
        {
            "name": cls.name,
            "summary": cls.summary_doc,
            "parameters": [s.to_dict() for s in specs(cls.Parameters)],
        }
        for cls in PROCEDURES.values()
    ]


def markdown_table() -> str:
    """The README's procedures table, generated from the declarations."""
    lines = ["| procedure | what it measures | parameters |", "|---|---|---|"]
    for cls in PROCEDURES.values():
        parts = []
        for s in specs(cls.Parameters):
            unit = f" {s.unit}" if s.unit else ""
            default = (
                s.default if not isinstance(s.default, tuple) else ",".join(map(str, s.default))
            )
            parts.append(f"`{s.name}`={default}{unit} ({s.help}; {s.allowed()})")
        lines.append(f"| `{cls.name}` | {cls.summary_doc} | {'<br>'.join(parts)} |")
    return "\n".join(lines)
