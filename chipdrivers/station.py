"""The bench station: a ``station.yaml`` file describing chip, limits, instruments, wiring.

A bench is an SMU, a pulse generator and a switch matrix wired to the lines of one
chip. ``station.yaml`` says which instruments (driver and VISA resource string), how
the matrix reaches the chip's row and column lines, what the chip is (shape, window,
recommended pulses) and which safety limits apply::

    chip:
      rows: 8
      cols: 8
      technology: pcm
      g_min: 1.0e-7          # S
      g_max: 2.5e-5          # S
      v_read: 0.2            # V
      set_pulse: {amplitude: 1.2, width: 1.0e-7}     # V, s
      reset_pulse: {amplitude: 2.2, width: 1.0e-7}   # V, s
      set_amplitude_range: [0.9, 1.9]                # V
    limits: {max_voltage: 2.5, max_read_voltage: 0.3, max_pulse_width: 1.0e-5,
             min_pulse_width: 1.0e-8, max_pulse_count: 10000, compliance_current: 5.0e-4}
    instruments:
      smu: {driver: keithley2450, resource: "TCPIP::10.0.0.5::5025::SOCKET", nplc: 0.01}
      pulse: {driver: keysight33500b, resource: "TCPIP::10.0.0.6::5025::SOCKET", channel: 1}
      switch: {driver: keithley707b, resource: "TCPIP::10.0.0.7::5025::SOCKET"}
    wiring: {layout: default}
    # or: wiring: {rows: ["101", "102", ...], cols: ["109", ...], buses: {smu: A, ...}}

The 707B matrix has buses (rows A..H of its cards) and columns (12 per slot). Array
lines sit on matrix columns, written ``<slot><two-digit column>`` (``"105"`` = slot
1, column 5). The default layout puts array rows on columns 1..R and array columns on
R+1..R+C, 12 per slot, continuing on the next slot. Buses default to A = SMU HI,
B = pulse generator output, C = ground (SMU LO and generator return).

:func:`load_station` validates everything once, with errors that name the file, the
key, the value and what is allowed; nothing is opened before the file is valid.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import yaml

from xbarlab.errors import ConfigError
from xbarlab.limits import SafetyLimits

#: driver name in station.yaml -> (module under xbarlab.instruments, class, role)
DRIVERS = {
    "keithley2450": ("keithley2450", "Keithley2450", "smu"),
    "keithley2600": ("keithley2600", "Keithley2600", "smu"),
    "keysight33500b": ("keysight33500", "Keysight33500B", "pulse"),
    "keithley707b": ("keithley707b", "Keithley707B", "switch"),
}
#: the instruments a bench needs, and the extra keys each role accepts (with defaults)
ROLES = {
    "smu": {"channel": None, "nplc": 0.01},
    "pulse": {"channel": 1, "edge_time": 8.4e-9},
    "switch": {},
}
_COMMON_KEYS = ("driver", "resource", "timeout_s")
_CHANNELS = {"keithley2600": ("a", "b"), "keysight33500b": (1, 2)}
#: a 707B mainframe: 6 slots of 8 x 12 matrix cards (buses A..H, columns 1..12)
SLOTS, COLUMNS_PER_SLOT, BUSES = 6, 12, "ABCDEFGH"
DEFAULT_BUSES = {"smu": "A", "pulse": "B", "ground": "C"}
#: technologies a station can hold; "pcm" is unipolar, "rram" bipolar (polarity -1 swaps
#: the lines on the matrix)
TECHNOLOGIES = ("pcm", "rram")


@dataclass(frozen=True)
class PulseSpec:
    """A recommended pulse: amplitude in V, width in s."""

    amplitude: float
    width: float


@dataclass(frozen=True)
class ChipSpec:
    """What the station says about the chip (see the module docstring for units)."""

    rows: int
    cols: int
    technology: str
    g_min: float
    g_max: float
    v_read: float
    set_pulse: PulseSpec
    reset_pulse: PulseSpec
    set_amplitude_range: tuple[float, float]


@dataclass(frozen=True)
class InstrumentSpec:
    """One instrument: driver name, VISA resource string, timeout in s, role options."""

    role: str
    driver: str
    resource: str
    timeout_s: float
    options: dict

    def open(self, **kwargs):
        """Connect the driver (imported here: only a bench in use needs pyvisa)."""
        import importlib

        module, cls, _ = DRIVERS[self.driver]
        driver = getattr(importlib.import_module(f"xbarlab.instruments.{module}"), cls)
        channel = self.options.get("channel")
        if channel is not None:
            kwargs["channel"] = channel
        return driver(self.resource, timeout_s=self.timeout_s, **kwargs)


@dataclass(frozen=True)
class Wiring:
    """Switch-matrix channel names per array line and bus.

    ``smu_rows[r]``, ``pulse_rows[r]`` and ``ground_cols[c]`` are the crosspoints
    (e.g. ``"1A05"``) that connect array row r to the SMU or the pulse generator and
    array column c to ground; ``pulse_cols[c]`` and ``ground_rows[r]`` swap the lines,
    so a positive generator pulse reaches the device with polarity -1 (bipolar chips).
    """

    smu_rows: np.ndarray
    pulse_rows: np.ndarray
    ground_cols: np.ndarray
    pulse_cols: np.ndarray
    ground_rows: np.ndarray
    buses: dict


@dataclass(frozen=True)
class Station:
    """A validated station.yaml; ``path`` is where it came from (for messages)."""

    chip: ChipSpec
    limits: SafetyLimits
    instruments: dict[str, InstrumentSpec]
    wiring: Wiring
    path: str


def load_station(path: str | Path) -> Station:
    """Read and validate a station.yaml; ConfigError naming the key if anything is wrong."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read station file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"station file {path} is not valid YAML: {exc}") from None
    return station_from_dict(doc, path)


def station_from_dict(doc, path: str = "<station>") -> Station:
    """Validate a parsed station document (``path`` only names it in messages)."""
    v = _Validator(path)
    doc = v.mapping(doc, "", ("chip", "limits", "instruments", "wiring"), required=("chip",))
    limits = _limits(v, doc.get("limits", {}))
    chip = _chip(v, v.mapping(doc["chip"], "chip", _CHIP_KEYS, _CHIP_REQUIRED), limits)
    instruments = _instruments(v, doc.get("instruments"))
    wiring = _wiring(v, doc.get("wiring", {"layout": "default"}), chip)
    return Station(chip, limits, instruments, wiring, path)


class _Validator:
    """Checks that raise ConfigError with the file, the key path, the value and the rule."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, key: str, value, allowed: str):
        where = f"key {key!r}" if key else "the document"
        raise ConfigError(
            f"station file {self.path}: {where} = {value!r} is invalid; {allowed}"
        ) from None

    def mapping(self, value, key: str, allowed, required=()) -> dict:
        if not isinstance(value, dict):
            self.fail(key, value, "expected a mapping (key: value)")
        unknown = sorted(str(k) for k in set(value) - set(allowed))
        if unknown:
            name = f"{key}.{unknown[0]}" if key else unknown[0]
            self.fail(name, value[unknown[0]], f"unknown key; allowed: {', '.join(allowed)}")
        for k in required:
            if k not in value:
                name = f"{key}.{k}" if key else k
                raise ConfigError(f"station file {self.path}: key {name!r} is missing")
        return value

    def number(self, value, key: str, lo: float = 0.0, hi: float = float("inf")) -> float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-7 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not np.isfinite(value) or not lo < value <= hi:
            rule = f"{lo:g} < value <= {hi:g}" if np.isfinite(hi) else f"a number > {lo:g}"
            self.fail(key, value, f"expected {rule}")
        return float(value)

    def integer(self, value, key: str, lo: int, hi: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            self.fail(key, value, f"expected an integer {lo}..{hi}")
        return int(value)

    def choice(self, value, key: str, choices) -> object:
        if value not in choices:
            self.fail(key, value, f"allowed: {', '.join(map(str, choices))}")
        return value


_CHIP_KEYS = (
    "rows",
    "cols",
    "technology",
    "g_min",
    "g_max",
    "v_read",
    "set_pulse",
    "reset_pulse",
    "set_amplitude_range",
)
_CHIP_REQUIRED = ("rows", "cols", "g_min", "g_max", "set_pulse", "reset_pulse")
_MAX_LINES = SLOTS * COLUMNS_PER_SLOT


def _limits(v: _Validator, doc) -> SafetyLimits:
    names = [f.name for f in fields(SafetyLimits)]
    v.mapping(doc, "limits", names)
    for name, value in doc.items():
        if name == "max_pulse_count":
            v.integer(value, "limits.max_pulse_count", 1, 10**9)
        else:
            v.number(value, f"limits.{name}")
    try:
        return SafetyLimits(**doc)
    except ConfigError as exc:
        raise ConfigError(f"station file {v.path}: limits: {exc}") from None


def _chip(v: _Validator, doc: dict, limits: SafetyLimits) -> ChipSpec:
    rows = v.integer(doc["rows"], "chip.rows", 1, _MAX_LINES - 1)
    cols = v.integer(doc["cols"], "chip.cols", 1, _MAX_LINES - rows)
    tech = v.choice(doc.get("technology", "pcm"), "chip.technology", TECHNOLOGIES)
    g_min = v.number(doc["g_min"], "chip.g_min")
    g_max = v.number(doc["g_max"], "chip.g_max")
    if g_max <= g_min:
        v.fail("chip.g_max", g_max, f"must be larger than chip.g_min = {g_min:g} S")
    v_read = v.number(doc.get("v_read", 0.2), "chip.v_read", 0.0, limits.max_read_voltage)
    set_p = _pulse_spec(v, doc["set_pulse"], "chip.set_pulse", limits)
    reset_p = _pulse_spec(v, doc["reset_pulse"], "chip.reset_pulse", limits)
    rng = doc.get("set_amplitude_range", [set_p.amplitude, set_p.amplitude])
    if not isinstance(rng, list | tuple) or len(rng) != 2:
        v.fail("chip.set_amplitude_range", rng, "expected [lowest, highest] in V")
    lo = v.number(rng[0], "chip.set_amplitude_range[0]", 0.0, limits.max_voltage)
    hi = v.number(rng[1], "chip.set_amplitude_range[1]", 0.0, limits.max_voltage)
    if hi < lo:
        v.fail("chip.set_amplitude_range", rng, "expected [lowest, highest] with lowest <= highest")
    return ChipSpec(rows, cols, tech, g_min, g_max, v_read, set_p, reset_p, (lo, hi))


def _pulse_spec(v: _Validator, doc, key: str, limits: SafetyLimits) -> PulseSpec:
    v.mapping(doc, key, ("amplitude", "width"), required=("amplitude", "width"))
    amp = v.number(doc["amplitude"], f"{key}.amplitude", 0.0, limits.max_voltage)
    width = v.number(doc["width"], f"{key}.width", 0.0, limits.max_pulse_width)
    if width < limits.min_pulse_width:
        v.fail(
            f"{key}.width", width, f"below limits.min_pulse_width = {limits.min_pulse_width:g} s"
        )
    return PulseSpec(amp, width)


def _instruments(v: _Validator, doc) -> dict[str, InstrumentSpec]:
    v.mapping(doc, "instruments", tuple(ROLES), required=tuple(ROLES))
    return {role: _instrument(v, doc[role], role) for role in ROLES}


def _instrument(v: _Validator, doc, role: str) -> InstrumentSpec:
    key = f"instruments.{role}"
    v.mapping(doc, key, _COMMON_KEYS + tuple(ROLES[role]), required=("driver", "resource"))
    for_role = [name for name, (_, _, r) in DRIVERS.items() if r == role]
    driver = v.choice(str(doc["driver"]).lower(), f"{key}.driver", for_role)
    resource = doc["resource"]
    if not isinstance(resource, str) or not resource.strip():
        v.fail(
            f"{key}.resource",
            resource,
            'expected a VISA resource string, e.g. "TCPIP::HOST::5025::SOCKET"',
        )
    timeout = v.number(doc.get("timeout_s", 5.0), f"{key}.timeout_s", 0.0, 600.0)
    options = {**ROLES[role], **{k: doc[k] for k in ROLES[role] if k in doc}}
    if "channel" in options:
        options["channel"] = _channel(v, doc.get("channel"), driver, key)
    if "nplc" in options:
        options["nplc"] = v.number(options["nplc"], f"{key}.nplc", 0.0, 10.0)
    if "edge_time" in options:
        options["edge_time"] = v.number(options["edge_time"], f"{key}.edge_time", 0.0, 1e-6)
    return InstrumentSpec(role, driver, resource.strip(), timeout, options)


def _channel(v: _Validator, value, driver: str, key: str):
    allowed = _CHANNELS.get(driver)
    if allowed is None:
        if value is not None:
            v.fail(f"{key}.channel", value, f"driver {driver} has one channel; remove the key")
        return None
    if value is None:
        return allowed[0]
    return v.choice(
        str(value).lower() if isinstance(value, str) else value, f"{key}.channel", allowed
    )


def _wiring(v: _Validator, doc, chip: ChipSpec) -> Wiring:
    v.mapping(doc, "wiring", ("layout", "rows", "cols", "buses"))
    buses = {**DEFAULT_BUSES, **v.mapping(doc.get("buses", {}), "wiring.buses", DEFAULT_BUSES)}
    for name, bus in buses.items():
        v.choice(bus, f"wiring.buses.{name}", tuple(BUSES))
    if len(set(buses.values())) != len(buses):
        v.fail("wiring.buses", buses, "SMU, pulse generator and ground need distinct buses")
    if "layout" in doc:
        v.choice(doc["layout"], "wiring.layout", ("default",))
        if "rows" in doc or "cols" in doc:
            v.fail("wiring.layout", doc["layout"], "give either layout or rows/cols, not both")
        lines = default_lines(chip.rows + chip.cols)
        row_lines, col_lines = lines[: chip.rows], lines[chip.rows :]
    else:
        row_lines = _lines(v, doc.get("rows"), "wiring.rows", chip.rows)
        col_lines = _lines(v, doc.get("cols"), "wiring.cols", chip.cols)
        both = set(row_lines) & set(col_lines)
        if both:
            v.fail("wiring.cols", sorted(both)[0], "matrix column is also wired to a row line")

    def names(lines, bus):
        return np.array([f"{line[0]}{bus}{line[1:]}" for line in lines], dtype=object)

    return Wiring(
        smu_rows=names(row_lines, buses["smu"]),
        pulse_rows=names(row_lines, buses["pulse"]),
        ground_cols=names(col_lines, buses["ground"]),
        pulse_cols=names(col_lines, buses["pulse"]),
        ground_rows=names(row_lines, buses["ground"]),
        buses=buses,
    )


def default_lines(n: int) -> list[str]:
    """Matrix columns (``"<slot><two-digit column>"``) of the default layout's n lines."""
    return [f"{1 + k // COLUMNS_PER_SLOT}{1 + k % COLUMNS_PER_SLOT:02d}" for k in range(n)]


def _lines(v: _Validator, value, key: str, n: int) -> list[str]:
    if not isinstance(value, list) or len(value) != n:
        v.fail(
            key, value, f'expected a list of {n} matrix columns such as "105" (slot 1, column 5)'
        )
    out = []
    for i, item in enumerate(value):
        text = str(item)
        ok = len(text) == 3 and text.isdigit()
        if not ok or not 1 <= int(text[0]) <= SLOTS or not 1 <= int(text[1:]) <= COLUMNS_PER_SLOT:
            v.fail(
                f"{key}[{i}]",
                item,
                f'expected "<slot 1..{SLOTS}><column 01..{COLUMNS_PER_SLOT}>", e.g. "105"',
            )
        out.append(text)
    if len(set(out)) != len(out):
        v.fail(key, value, "each matrix column may carry only one line")
    return out
