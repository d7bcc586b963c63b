"""Declared parameters: parsing from CLI strings and YAML values, refusals, derived docs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from xbarlab.errors import ConfigError
from xbarlab.procedures import registry
from xbarlab.procedures.params import param, parse, specs, to_json


@dataclass(frozen=True)
class Demo:
    n: int = param(3, lo=1, hi=10, help="count")
    dt: float = param(1.0, unit="s", lo=0, lo_inclusive=False, help="step")
    mode: str = param("a", choices=("a", "b"))
    flag: bool = param(False)
    volts: tuple[float, ...] = param((0.1, 0.2), unit="V", lo=0, hi=0.3)
    tol: float | None = param(None, unit="S", lo=0, lo_inclusive=False)


def test_strings_are_converted_to_declared_types():
    p = parse(Demo, {"n": "7", "dt": "2.5e-3", "mode": "b", "flag": "yes", "volts": "0.05, 0.3"})
    assert (p.n, p.dt, p.mode, p.flag, p.volts) == (7, 2.5e-3, "b", True, (0.05, 0.3))
    assert parse(Demo, {"tol": "none"}).tol is None
    assert parse(Demo, {"tol": "1e-7"}).tol == 1e-7


def test_typed_yaml_values_are_accepted():
    p = parse(Demo, {"n": 4, "volts": [0.1], "flag": True, "tol": 2e-7})
    assert (p.n, p.volts, p.flag, p.tol) == (4, (0.1,), True, 2e-7)
    assert parse(Demo, {}) == Demo()


@pytest.mark.parametrize(
    "values, words",
    [
        ({"n": "0"}, ["n", "'0'", "1 <= value <= 10"]),
        ({"n": "2.5"}, ["n", "integer"]),
        ({"dt": "0"}, ["dt", "0 < value", "unit: s"]),
        ({"dt": "nan"}, ["dt", "finite"]),
        ({"mode": "c"}, ["mode", "one of a, b"]),
        ({"flag": "maybe"}, ["flag", "true or false"]),
        ({"volts": "0.1,0.5"}, ["volts", "0.5", "value <= 0.3", "unit: V"]),
        ({"n": True}, ["n", "a number"]),
    ],
)
def test_bad_values_name_parameter_value_and_range(values, words):
    with pytest.raises(ConfigError) as err:
        parse(Demo, values)
    for word in words:
        assert word in str(err.value)


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse(Demo, {"n": "99", "mode": "z"})
    assert "parameter n" in str(err.value) and "parameter mode" in str(err.value)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) nn; known: n, dt, mode"):
        parse(Demo, {"nn": 1})


def test_specs_and_json():
    s = {x.name: x for x in specs(Demo)}
    assert s["volts"].type is float and s["volts"].is_list and s["volts"].unit == "V"
    assert s["tol"].optional and s["tol"].type_name == "float | None"
    assert s["dt"].allowed() == "0 < value"
    assert to_json(Demo()) == {
        "n": 3,
        "dt": 1.0,
        "mode": "a",
        "flag": False,
        "volts": [0.1, 0.2],
        "tol": None,
    }


def test_cross_field_rules_of_procedures():
    with pytest.raises(ConfigError, match="t_first = 100 s must be below duration = 10 s"):
        registry.get("drift").from_values({"t_first": 100, "duration": 10})
    with pytest.raises(ConfigError, match="region"):
        registry.get("iv-sweep").from_values({"region": "0:4"})
    with pytest.raises(ConfigError, match="lo = 0.9"):
        registry.get("program-array").from_values({"lo": 0.9, "hi": 0.5})


def test_registry_lists_every_procedure_with_parameters():
    names = [p["name"] for p in registry.describe()]
    assert names == [
        "program-array",
        "conductance-map",
        "drift",
        "drift-compensation",
        "retention",
        "iv-sweep",
        "endurance",
        "pulse-response",
        "level-capacity",
        "program-report",
        "forming",
    ]
    table = registry.markdown_table()
    assert table.count("\n") == len(names) + 1 and "`n_reads`=30" in table
    with pytest.raises(ConfigError, match="unknown procedure 'nope'; known: program-array"):
        registry.get("nope")
