"""station.yaml: a valid file becomes a Station; every bad key is named with its value."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from xbarlab.chipdrivers.station import default_lines, load_station, station_from_dict
from xbarlab.errors import ConfigError


def _with(doc: dict, path: str, value):
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()


def test_valid_file_loads_with_defaults(tmp_path, station_doc):
    path = tmp_path / "station.yaml"
    # YAML 1.1 reads 1e-7 without a dot as a string: accepted as a number
    path.write_text(yaml.safe_dump(station_doc).replace("1.0e-07", "1e-7"))
    st = load_station(path)
    assert (st.chip.rows, st.chip.cols, st.chip.technology) == (3, 2, "pcm")
    assert st.chip.set_pulse.width == pytest.approx(1e-7)
    assert st.chip.set_amplitude_range == (0.9, 1.9)
    assert st.limits.compliance_current == 1e-4
    assert st.limits.max_pulse_count == 10_000  # SafetyLimits default
    smu, gen = st.instruments["smu"], st.instruments["pulse"]
    assert (smu.driver, smu.options) == ("keithley2600", {"channel": "b", "nplc": 0.01})
    assert gen.options == {"channel": 1, "edge_time": 8.4e-9}
    assert st.instruments["switch"].timeout_s == 5.0
    assert list(st.wiring.smu_rows) == ["1A01", "1A02", "1A03"]
    assert list(st.wiring.pulse_rows) == ["1B01", "1B02", "1B03"]
    assert list(st.wiring.ground_cols) == ["1C04", "1C05"]
    assert st.path == str(path)


def test_default_layout_continues_on_the_next_slot():
    assert default_lines(14)[10:] == ["111", "112", "201", "202"]


def test_explicit_wiring_and_buses(station_doc):
    doc = _with(
        station_doc,
        "wiring",
        {"rows": ["201", "203", "212"], "cols": ["101", "612"], "buses": {"smu": "D"}},
    )
    st = station_from_dict(doc)
    assert list(st.wiring.smu_rows) == ["2D01", "2D03", "2D12"]
    assert list(st.wiring.pulse_rows) == ["2B01", "2B03", "2B12"]
    assert list(st.wiring.ground_cols) == ["1C01", "6C12"]


@pytest.mark.parametrize(
    ("path", "value", "key", "words"),
    [
        ("chip.rows", 0, "chip.rows", "integer 1..71"),
        ("chip.rows", 2.5, "chip.rows", "integer"),
        ("chip.cols", 80, "chip.cols", "integer 1..69"),
        ("chip.technology", "sram", "chip.technology", "pcm, rram"),
        ("chip.g_max", 1e-8, "chip.g_max", "larger than chip.g_min"),
        ("chip.v_read", 0.5, "chip.v_read", "0 < value <= 0.3"),
        ("chip.set_pulse", {"amplitude": 3.0, "width": 1e-7}, "chip.set_pulse.amplitude", "2.5"),
        (
            "chip.reset_pulse",
            {"amplitude": 2.0, "width": 1e-9},
            "chip.reset_pulse.width",
            "min_pulse_width",
        ),
        ("chip.set_amplitude_range", [1.5, 1.0], "chip.set_amplitude_range", "lowest <= highest"),
        ("chip.colour", "red", "chip.colour", "unknown key"),
        ("chip.g_min", _DELETE, "chip.g_min", "missing"),
        ("limits.max_voltage", -1, "limits.max_voltage", "a number > 0"),
        ("limits.max_pulse_count", 1.5, "limits.max_pulse_count", "integer"),
        ("limits.max_amps", 1, "limits.max_amps", "compliance_current"),
        ("instruments.smu.driver", "keysight33500b", "instruments.smu.driver", "keithley2450"),
        ("instruments.smu.channel", "c", "instruments.smu.channel", "a, b"),
        ("instruments.smu.nplc", 20, "instruments.smu.nplc", "10"),
        ("instruments.pulse.channel", 3, "instruments.pulse.channel", "1, 2"),
        ("instruments.switch.resource", "", "instruments.switch.resource", "VISA resource"),
        ("instruments.switch.channel", 1, "instruments.switch.channel", "unknown key"),
        (
            "instruments.smu",
            {"driver": "keithley2450", "resource": "GPIB::24::INSTR", "channel": "a"},
            "instruments.smu.channel",
            "one channel",
        ),
        ("instruments.pulse", _DELETE, "instruments.pulse", "missing"),
        ("wiring", {"layout": "fancy"}, "wiring.layout", "default"),
        ("wiring", {"rows": ["101", "102"], "cols": ["103", "104"]}, "wiring.rows", "3 matrix"),
        (
            "wiring",
            {"rows": ["101", "102", "113"], "cols": ["104", "105"]},
            "wiring.rows[2]",
            "column 01..12",
        ),
        (
            "wiring",
            {"rows": ["101", "102", "103"], "cols": ["103", "104"]},
            "wiring.cols",
            "also wired",
        ),
        ("wiring", {"layout": "default", "buses": {"smu": "C"}}, "wiring.buses", "distinct"),
    ],
)
def test_bad_values_name_file_key_value_and_rule(station_doc, path, value, key, words):
    with pytest.raises(ConfigError) as err:
        station_from_dict(_with(station_doc, path, value), "lab/station.yaml")
    msg = str(err.value)
    assert "lab/station.yaml" in msg
    assert repr(key) in msg
    assert words in msg
    if value is not _DELETE and not isinstance(value, dict):
        assert repr(value) in msg


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read station file .*nope.yaml"):
        load_station(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("chip: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_station(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_station(bad)


def test_wiring_arrays_are_indexable_by_line_vectors(station_doc):
    st = station_from_dict(station_doc)
    assert list(st.wiring.smu_rows[np.array([2, 0])]) == ["1A03", "1A01"]
