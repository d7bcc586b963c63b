"""The emulated bench's four instruments, each speaking its own command language.

Each instrument (:class:`Keithley2450`, :class:`Keithley2600`, :class:`Keysight33500B`,
:class:`Keithley707B`) keeps its own settings, declares its commands once (SCPI tree
or TSP tables) and turns them into physics through the shared
:class:`~xbarlab.emulator.lab_wiring.Bench`: an SMU read sums I = G V over the routed
devices, clamped at its compliance; a generator burst pulses the routed devices (its
pulse level's sign, and which line the matrix put on the pulse bus, set the polarity a
bipolar RRAM chip sees); the
matrix's relays are the bench's relay state. An output that is off drives nothing.
:class:`Lab` puts the four on one bench. The wiring model lives in
:mod:`xbarlab.emulator.lab_wiring`; ``Bench`` and ``BenchWiring`` are re-exported here.
"""

from __future__ import annotations

import math
import re
from collections import deque
from types import SimpleNamespace

import numpy as np

from xbarlab.emulator.lab_wiring import BUSES, COLUMNS_PER_SLOT, Bench, BenchWiring
from xbarlab.emulator.scpi import (
    Boolean,
    Choice,
    Number,
    ScpiEngine,
    ScpiError,
    ScpiTree,
    Status,
    fmt,
)
from xbarlab.emulator.tsp import OUT_OF_RANGE, Attr, Table, TspEngine, TspError, number

__all__ = [
    "Bench",
    "BenchWiring",
    "Instrument",
    "Keithley2450",
    "Keithley2600",
    "Keithley707B",
    "Keysight33500B",
    "Lab",
    "OVERFLOW",
    "ScpiInstrument",
    "SourceMeterChannel",
    "declare",
]

#: optional nodes of an SCPI level command
LEVEL = "[:LEVel][:IMMediate][:AMPLitude]"
#: what an SCPI SMU returns for a reading beyond its fixed range (9.9e37, "overflow")
OVERFLOW = 9.9e37


class SourceMeterChannel:
    """One SMU channel's settings and its measurement through the bench (SI units)."""

    def __init__(self, bench: Bench, bus: int | None):
        self.bench, self.bus = bench, bus
        self.reset()

    def reset(self) -> None:
        self.source_func = "VOLT"
        self.level_v, self.level_i = 0.0, 0.0
        self.limit_i, self.limit_v = 105e-6, 21.0
        self.range_i, self.autorange_i = 1e-4, True
        self.nplc = 1.0
        self.output = False
        self.tripped = False

    def measure(self) -> tuple[float, float]:
        """(current in A, voltage in V) at the terminals; compliance sets ``tripped``."""
        if not self.output:
            self.tripped = False
            return 0.0, 0.0
        g = self.bench.conductance(self.bus) if self.bus is not None else 0.0
        if self.source_func == "VOLT":
            i = g * self.level_v if self.level_v else 0.0  # a short at 0 V carries nothing
            self.tripped = abs(i) > self.limit_i
            i = math.copysign(self.limit_i, i) if self.tripped else i
            return i, self.level_v
        if g > 0 or not self.level_i:
            v = self.level_i / g if g > 0 else 0.0
        else:
            v = math.copysign(math.inf, self.level_i)  # current into an open circuit
        self.tripped = abs(v) > self.limit_v
        v = math.copysign(self.limit_v, v) if self.tripped else v
        return (v * g if self.tripped else self.level_i), v

    def current_reading(self) -> float:
        """Current in A, or the overflow value beyond a fixed range."""
        i, _ = self.measure()
        if not self.autorange_i and abs(i) > 1.05 * self.range_i:
            return OVERFLOW
        return i


#: how a query shows each kind of setting
_SHOW = {Number: fmt, Choice: str, Boolean: lambda v: str(int(v))}


def declare(tree: ScpiTree, target, rows) -> None:
    """Declare settings kept as attributes of ``target(*suffix)``.

    rows: (pattern, parameter, attribute name); the query shows the value as the
    parameter kind answers (numbers in NR3, choices by short form, booleans as 1/0).
    """
    for pattern, param, name in rows:
        show = _SHOW[type(param)]

        def write(*args, name=name):
            setattr(target(*args[:-1]), name, args[-1])

        def read(*args, name=name, show=show):
            return show(getattr(target(*args), name))

        tree.add(pattern, param, write=write, read=read)


class Instrument:
    """Common part of the emulated instruments: identity, status, one engine.

    Subclasses set ``engine`` once their own state exists: a :class:`TspEngine`, whose
    replies are already a list of lines, or an SCPI engine through :class:`ScpiInstrument`.
    """

    idn = ""

    def __init__(self, bench: Bench):
        self.bench = bench
        self.status = Status(self)

    def execute(self, line: str) -> list[str]:
        """Run one received line; the reply lines (queries only)."""
        return self.engine.execute(line)

    def reset(self) -> None:
        """*RST: default settings, outputs off."""

    def trigger(self) -> None:
        """*TRG: instruments without a bus-triggered action accept it and do nothing."""


class ScpiInstrument(Instrument):
    """An instrument with a :class:`ScpiEngine`, which answers a line with one reply or none."""

    def execute(self, line: str) -> list[str]:
        reply = self.engine.execute(line)
        return [] if reply is None else [reply]


class Keithley2450(ScpiInstrument):
    """Keithley 2450 SourceMeter (SCPI) with its HI on the bench's SMU bus."""

    idn = "KEITHLEY INSTRUMENTS,MODEL 2450,04480001,1.7.12b"

    def __init__(self, bench: Bench, bus: str | None = None):
        super().__init__(bench)
        self.smu = SourceMeterChannel(bench, BUSES.index(bus) if bus else bench.wiring.bus("smu"))
        self.engine = ScpiEngine(self._tree(), self.status)
        self.reset()

    def reset(self) -> None:
        self.smu.reset()
        self.sense = "CURR"

    def _tree(self) -> ScpiTree:
        s, t = self.smu, ScpiTree()
        src, cur = "[:SOURce#]", "[:SENSe#]:CURRent[:DC]"
        fixed = {"write": lambda *a: None, "read": lambda *a: fmt(210)}  # autoranged source
        t.add(f"{src}:VOLTage:RANGe", Number("V", 0.02, 210, 0.2), **fixed)
        t.add(f"{src}:VOLTage:RANGe:AUTO", Boolean(), write=lambda *a: None, read=lambda *a: "1")
        declare(
            t,
            lambda *_: s,
            [
                (f"{src}:FUNCtion[:MODE]", Choice(("VOLTage", "CURRent")), "source_func"),
                (f"{src}:VOLTage{LEVEL}", Number("V", -210, 210, 0), "level_v"),
                (f"{src}:CURRent{LEVEL}", Number("A", -1.05, 1.05, 0), "level_i"),
                (f"{src}:VOLTage:ILIMit[:LEVel]", Number("A", 1e-9, 1.05, 105e-6), "limit_i"),
                (f"{src}:CURRent:VLIMit[:LEVel]", Number("V", 0.02, 210, 21), "limit_v"),
                (f"{cur}:RANGe[:UPPer]", Number("A", 1e-8, 1.05, 1e-4), "range_i"),
                (f"{cur}:RANGe:AUTO", Boolean(), "autorange_i"),
                (f"{cur}:NPLCycles", Number("", 0.01, 10, 1), "nplc"),
                (":OUTPut#[:STATe]", Boolean(), "output"),
            ],
        )
        t.add(f"{src}:VOLTage:ILIMit[:LEVel]:TRIPped", read=lambda *a: str(int(s.tripped)))
        t.add(f"{src}:CURRent:VLIMit[:LEVel]:TRIPped", read=lambda *a: str(int(s.tripped)))
        sense_func = Choice(("CURRent", "VOLTage", "CURRent:DC", "VOLTage:DC"))
        read_sense = lambda *a: f'"{self.sense}:DC"'  # noqa: E731
        t.add("[:SENSe#]:FUNCtion[:ON]", sense_func, write=self._set_sense, read=read_sense)
        t.add(":READ", read=self._read)
        t.add(":MEASure:CURRent[:DC]", read=lambda: fmt(s.current_reading()))
        t.add(":MEASure:VOLTage[:DC]", read=lambda: fmt(s.measure()[1]))
        t.add(":ABORt", write=lambda: None)
        return t

    def _set_sense(self, _suffix, value: str) -> None:
        self.sense = value.split(":")[0]

    def _read(self) -> str:
        return fmt(self.smu.current_reading() if self.sense == "CURR" else self.smu.measure()[1])


class Keithley2600(Instrument):
    """Keithley 2636B System SourceMeter (TSP): smua on the SMU bus, smub on ``smub_bus``."""

    idn = "Keithley Instruments Inc., Model 2636B, 4480002, 4.0.5"

    def __init__(self, bench: Bench, smua_bus: str | None = None, smub_bus: str | None = "D"):
        super().__init__(bench)
        a = BUSES.index(smua_bus) if smua_bus else bench.wiring.bus("smu")
        self.smus = {
            "a": SourceMeterChannel(bench, a),
            "b": SourceMeterChannel(bench, BUSES.index(smub_bus) if smub_bus else None),
        }
        tables = {f"smu{name}": self._smu_table(smu) for name, smu in self.smus.items()}
        localnode = Table(model="2636B", serialno="4480002", revision="4.0.5")
        self.engine = TspEngine(
            {**tables, "reset": self.reset, "localnode": localnode}, self.status
        )
        self.reset()

    def reset(self) -> None:
        for smu in self.smus.values():
            smu.reset()

    @staticmethod
    def _smu_table(s: SourceMeterChannel) -> Table:
        def attr(name, check, encode=float, decode=lambda v: v):
            return Attr(
                lambda: encode(getattr(s, name)), lambda v: setattr(s, name, decode(v)), check
            )

        flag = number(0, 1, "flag", (0.0, 1.0))
        func = Attr(
            lambda: 1.0 if s.source_func == "VOLT" else 0.0,
            lambda v: setattr(s, "source_func", "VOLT" if v else "CURR"),
            number(0, 1, "source.func", (0.0, 1.0)),
        )
        source = Table(
            func=func,
            levelv=attr("level_v", number(-200, 200, "source.levelv")),
            leveli=attr("level_i", number(-1.5, 1.5, "source.leveli")),
            limiti=attr("limit_i", number(1e-9, 1.5, "source.limiti")),
            limitv=attr("limit_v", number(0.02, 200, "source.limitv")),
            output=attr("output", flag, float, bool),
            compliance=Attr(lambda: s.tripped),
        )
        measure = Table(
            nplc=attr("nplc", number(0.001, 25, "measure.nplc")),
            autorangei=attr("autorange_i", flag, float, bool),
            rangei=attr("range_i", number(1e-10, 1.5, "measure.rangei")),
            i=lambda: float(s.current_reading()),
            v=lambda: float(s.measure()[1]),
            iv=lambda: tuple(map(float, s.measure())),
        )
        constants = dict(OUTPUT_DCAMPS=0.0, OUTPUT_DCVOLTS=1.0, OUTPUT_OFF=0.0, OUTPUT_ON=1.0)
        constants.update(AUTORANGE_OFF=0.0, AUTORANGE_ON=1.0)
        return Table(source=source, measure=measure, reset=s.reset, **constants)


class Keysight33500B(ScpiInstrument):
    """Keysight 33522B two-channel generator (SCPI) used as a bus-triggered pulse source.

    Channel 1's output is on the bench's pulse bus (channel 2 is not wired). The
    programmed levels are the voltages at the load the instrument assumes: with
    ``OUTP:LOAD 50`` (the power-on default) a high-impedance array sees twice them.
    A pulse goes from the low level to the high level; ``OUTP:POL INV`` mirrors the
    waveform about the offset, so it goes from the high level to the low one (HIGH 0,
    LOW -V, POL INV: a negative pulse of -V from 0 V). The bench sees the level the
    pulse goes to (the idle level is not modelled).
    """

    idn = "Keysight Technologies,33522B,MY44800003,4.00-1.19-2.00-58-00"

    def __init__(self, bench: Bench, buses: dict[int, str] | None = None):
        super().__init__(bench)
        wired = buses if buses is not None else {1: dict(bench.wiring.buses)["pulse"]}
        self.buses = {ch: BUSES.index(bus) for ch, bus in wired.items()}
        self.channels = {1: SimpleNamespace(), 2: SimpleNamespace()}
        self.engine = ScpiEngine(self._tree(), self.status)
        self.reset()

    def reset(self) -> None:
        for ch in self.channels.values():
            vars(ch).update(func="SIN", high=0.05, low=-0.05, width=100e-6, period=1e-3)
            vars(ch).update(edge=8.4e-9, burst=False, mode="TRIG", ncyc=1, source="IMM")
            vars(ch).update(output=False, load=50.0, polarity="NORM")

    def trigger(self) -> None:
        """*TRG: fire every channel armed for a bus trigger."""
        for n, ch in self.channels.items():
            if ch.source == "BUS":
                self._fire(n)

    def _fire(self, n: int) -> None:
        ch = self.channels[n]
        if not (ch.burst and ch.mode == "TRIG" and ch.func == "PULS"):
            self.status.push(
                -211, "burst of pulses not armed (FUNC PULS, BURS:MODE TRIG, BURS:STAT ON)"
            )
            return
        if ch.output and n in self.buses:
            scale = 1.0 if math.isinf(ch.load) else 2.0  # open circuit vs assumed load
            level = ch.high if ch.polarity == "NORM" else ch.low
            self.bench.pulse(self.buses[n], scale * level, ch.width, int(ch.ncyc))

    def _tree(self) -> ScpiTree:
        t, src, pulse = ScpiTree(suffix_max=2), "[:SOURce#]", "[:SOURce#]:FUNCtion:PULSe"
        shapes = ("SINusoid", "SQUare", "TRIangle", "RAMP", "PULSe", "PRBS", "NOISe", "ARB", "DC")
        declare(
            t,
            self.channels.__getitem__,
            [
                (f"{src}:FUNCtion[:SHAPe]", Choice(shapes), "func"),
                (f"{pulse}:WIDTh", Number("S", 16e-9, 1e6, 100e-6), "width"),
                (f"{pulse}:PERiod", Number("S", 33e-9, 1e6, 1e-3), "period"),
                (f"{pulse}:TRANsition[:BOTH]", Number("S", 8.4e-9, 1e-6, 8.4e-9), "edge"),
                (f"{src}:BURSt:MODE", Choice(("TRIGgered", "GATed")), "mode"),
                (f"{src}:BURSt:NCYCles", Number("", 1, 1e8, 1, integer=True), "ncyc"),
                (f"{src}:BURSt:STATe", Boolean(), "burst"),
                (":TRIGger#:SOURce", Choice(("IMMediate", "EXTernal", "TIMer", "BUS")), "source"),
                (":OUTPut#[:STATe]", Boolean(), "output"),
                (":OUTPut#:LOAD", Number("OHM", 1, 10e3, 50, words={"INFinity": math.inf}), "load"),
                (":OUTPut#:POLarity", Choice(("NORMal", "INVerted")), "polarity"),
            ],
        )
        level, vpp = Number("V", -10, 10, 0), Number("V", 1e-3, 20, 0.1)
        for name, param, write, read in [
            (":HIGH", level, lambda n, v: self._set(n, high=v), lambda n: self.channels[n].high),
            (":LOW", level, lambda n, v: self._set(n, low=v), lambda n: self.channels[n].low),
            (LEVEL, vpp, lambda n, v: self._set(n, vpp=v), lambda n: self._span(n)[0]),
            (":OFFSet", level, lambda n, v: self._set(n, offset=v), lambda n: self._span(n)[1]),
        ]:
            t.add(
                f"{src}:VOLTage{name}",
                param,
                write=write,
                read=lambda n, r=read: fmt(r(n)),
            )
        t.add(":TRIGger#[:IMMediate]", write=self._fire)
        return t

    def _span(self, n: int) -> tuple[float, float]:
        ch = self.channels[n]
        return ch.high - ch.low, (ch.high + ch.low) / 2

    def _set(self, n: int, **change: float) -> None:
        """New levels from high/low or vpp/offset (V); -222/-221 and no change if invalid."""
        ch = self.channels[n]
        if "high" in change or "low" in change:
            high, low = change.get("high", ch.high), change.get("low", ch.low)
        else:
            vpp, offset = self._span(n)
            vpp, offset = change.get("vpp", vpp), change.get("offset", offset)
            high, low = offset + vpp / 2, offset - vpp / 2
        if max(abs(high), abs(low)) > 10.0:
            raise ScpiError(-222, f"levels {low:g} V .. {high:g} V outside -10..10 V")
        if high <= low:
            raise ScpiError(-221, f"high level {high:g} V must exceed low level {low:g} V")
        ch.high, ch.low = high, low


#: one item of a 707B channel list: a crosspoint, a rectangle of them, a slot, all slots
_ITEM = re.compile(r"(?i)allslots|slot([1-6])|([1-6])([A-H])(\d\d)(?::([1-6])([A-H])(\d\d))?")


class Keithley707B(Instrument):
    """Keithley 707B switching matrix (TSP): six 8 x 12 cards; its relays are the bench's.

    ``operations`` logs the relay actions in order (("open" | "close", channels)),
    so tests can see break-before-make at work.
    """

    idn = "Keithley Instruments Inc., Model 707B, 04480004, 1.6.2"
    BREAK_BEFORE_MAKE, MAKE_BEFORE_BREAK, OFF = 1.0, 2.0, 0.0

    def __init__(self, bench: Bench):
        super().__init__(bench)
        self.operations: deque[tuple[str, tuple[str, ...]]] = deque(maxlen=256)
        rules = (self.OFF, self.BREAK_BEFORE_MAKE, self.MAKE_BEFORE_BREAK)
        channel = Table(
            close=lambda names: self._switch(self._mask(names), None),
            open=lambda names: self._switch(None, self._mask(names)),
            exclusiveclose=self._exclusive,
            getclose=self._getclose,
            reset=lambda names: self._reset_slots(self._mask(names)),
            connectrule=Attr(
                lambda: self.connect_rule,
                lambda v: setattr(self, "connect_rule", v),
                number(0, 2, "channel.connectrule", rules),
            ),
            BREAK_BEFORE_MAKE=self.BREAK_BEFORE_MAKE,
            MAKE_BEFORE_BREAK=self.MAKE_BEFORE_BREAK,
            OFF=self.OFF,
        )
        localnode = Table(model="707B", serialno="04480004", revision="1.6.2")
        self.engine = TspEngine(
            {"channel": channel, "reset": self.reset, "localnode": localnode}, self.status
        )
        self.reset()

    def reset(self) -> None:
        """Power-on state: every relay open, break-before-make."""
        self.connect_rule = self.BREAK_BEFORE_MAKE
        self._switch(None, np.ones_like(self.bench.closed))

    def _reset_slots(self, mask: np.ndarray) -> None:
        self.connect_rule = self.BREAK_BEFORE_MAKE
        self._switch(None, mask)

    def _mask(self, names) -> np.ndarray:
        """Crosspoints of a channel list string; TspError (nothing switched) if invalid."""
        if not isinstance(names, str):
            raise TspError(OUT_OF_RANGE, f"channel list must be a string, got {names!r}")
        mask = np.zeros_like(self.bench.closed)
        for item in names.split(","):
            m = _ITEM.fullmatch(item.strip())
            if m is None or not _fill(mask, m):
                raise TspError(OUT_OF_RANGE, f"invalid channel list item {item.strip()!r}")
        return mask

    def _switch(self, close: np.ndarray | None, open_: np.ndarray | None) -> None:
        """Open then close (or the rule's order): log each step, update the bench."""
        steps = [("open", open_), ("close", close)]
        if self.connect_rule == self.MAKE_BEFORE_BREAK:
            steps.reverse()
        closed = self.bench.closed.copy()
        for action, mask in steps:
            if mask is None:
                continue
            changed = mask & (closed if action == "open" else ~closed)
            closed = closed & ~mask if action == "open" else closed | mask
            if changed.any():
                self.operations.append((action, tuple(_names(changed))))
        self.bench.set_closed(closed)

    def _exclusive(self, names) -> None:
        mask = self._mask(names)
        self._switch(mask, ~mask)

    def _getclose(self, names) -> str | None:
        closed = _names(self.bench.closed & self._mask(names))
        return ";".join(closed) if closed else None


def _fill(mask: np.ndarray, m: re.Match) -> bool:
    """Set the crosspoints of one matched channel-list item; False if out of range."""
    text = m.group(0).lower()
    if text == "allslots":
        mask[:] = True
        return True
    if m.group(1):
        slot = int(m.group(1)) - 1
        mask[:, slot * COLUMNS_PER_SLOT : (slot + 1) * COLUMNS_PER_SLOT] = True
        return True
    slot, row, col = int(m.group(2)), m.group(3).upper(), int(m.group(4))
    end = (int(m.group(5)), m.group(6).upper(), int(m.group(7))) if m.group(5) else (slot, row, col)
    if end[0] != slot or not (1 <= col <= end[2] <= COLUMNS_PER_SLOT) or end[1] < row:
        return False
    base = (slot - 1) * COLUMNS_PER_SLOT
    mask[BUSES.index(row) : BUSES.index(end[1]) + 1, base + col - 1 : base + end[2]] = True
    return True


def _names(mask: np.ndarray) -> list[str]:
    """Channel names of the set crosspoints, ordered by slot, row, column."""
    buses, flat = np.nonzero(mask)
    order = np.lexsort((flat % COLUMNS_PER_SLOT, buses, flat // COLUMNS_PER_SLOT))
    return [
        f"{f // COLUMNS_PER_SLOT + 1}{BUSES[b]}{f % COLUMNS_PER_SLOT + 1:02d}"
        for b, f in zip(buses[order], flat[order], strict=True)
    ]


class Lab:
    """The four emulated instruments on one bench (one chip, one wiring), keyed by the
    driver names station.yaml uses."""

    def __init__(self, chip, wiring: BenchWiring | None = None):
        self.bench = Bench(chip, wiring)
        self.instruments: dict[str, Instrument] = {
            "keithley2450": Keithley2450(self.bench),
            "keithley2600": Keithley2600(self.bench),
            "keysight33500b": Keysight33500B(self.bench),
            "keithley707b": Keithley707B(self.bench),
        }
