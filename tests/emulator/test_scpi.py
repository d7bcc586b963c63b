"""SCPI engine: keyword forms, compound lines, numbers with units, common commands,
the error queue, and fuzzing (random and corrupted lines never crash, never hang,
and every query is answered or leaves an error)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.emulator.scpi import (
    QUEUE_SIZE,
    Boolean,
    Choice,
    Number,
    ScpiEngine,
    ScpiTree,
    Status,
    fmt,
)


class Device:
    """A two-channel toy instrument recording what it was told."""

    idn = "ACME,TOY-1,0001,1.0"

    def __init__(self):
        self.resets = 0
        self.triggers = 0
        self.level = {1: 0.0, 2: 0.0}
        self.width = 1e-6
        self.output = False
        self.func = "SIN"
        self.load = 50.0

    def reset(self):
        self.resets += 1
        self.level = {1: 0.0, 2: 0.0}

    def trigger(self):
        self.triggers += 1


def make_engine() -> tuple[ScpiEngine, Device]:
    d = Device()
    t = ScpiTree(suffix_max=2)
    t.add(
        "[:SOURce#]:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
        Number("V", -10, 10, 0.5),
        write=lambda ch, v: d.level.__setitem__(ch, v),
        read=lambda ch: fmt(d.level[ch]),
    )
    t.add(
        "[:SOURce#]:FUNCtion:PULSe:WIDTh",
        Number("S", 1e-8, 1.0, 1e-6),
        write=lambda ch, v: setattr(d, "width", v),
        read=lambda ch: fmt(d.width),
    )
    t.add(
        "[:SOURce#]:FUNCtion[:SHAPe]",
        Choice(("SINusoid", "PULSe")),
        write=lambda ch, v: setattr(d, "func", v),
        read=lambda ch: d.func,
    )
    t.add(
        ":OUTPut#[:STATe]",
        Boolean(),
        write=lambda ch, v: setattr(d, "output", v),
        read=lambda ch: str(int(d.output)),
    )
    t.add(
        ":OUTPut#:LOAD",
        Number("OHM", 1, 1e4, 50, words={"INFinity": math.inf}),
        write=lambda ch, v: setattr(d, "load", v),
    )
    t.add(":READ", read=lambda: "1.000000E-06")
    return ScpiEngine(t, Status(d)), d


@pytest.fixture
def eng():
    return make_engine()


def errors(engine: ScpiEngine) -> list[int]:
    """Drain the queue through SYST:ERR? and return the codes."""
    codes = []
    while True:
        code = int(engine.execute("SYST:ERR?").split(",")[0])
        if code == 0:
            return codes
        codes.append(code)


@pytest.mark.parametrize(
    "line",
    [
        ":SOURce1:VOLTage:LEVel:IMMediate:AMPLitude 2",
        ":SOUR:VOLT:LEV 2",
        "sour:volt 2",
        "VOLT 2",
        "Voltage:Level 2",
        ":source:volt:lev:imm:ampl 2",
    ],
)
def test_long_short_and_optional_forms_are_one_command(eng, line):
    engine, d = eng
    assert engine.execute(line) is None
    assert d.level[1] == 2.0
    assert engine.execute("SOUR1:VOLT?") == "2.000000E+00"
    assert errors(engine) == []


@pytest.mark.parametrize("line", ["SOURC:VOLT 1", "VOL 1", "VOLTA 1", "SOUR:VOLT:LEVE 1", "FOO"])
def test_other_abbreviations_are_undefined_headers(eng, line):
    engine, d = eng
    engine.execute(line)
    assert d.level[1] == 0.0
    assert errors(engine) == [-113]


def test_compound_lines_use_the_previous_path_and_join_query_replies(eng):
    engine, d = eng
    # "WIDT" is relative to SOUR2:FUNC:PULS:, ":OUTP" restarts at the root.
    reply = engine.execute("SOUR2:FUNC:PULS:WIDT 2us;:OUTP ON;:SOUR2:VOLT 3;VOLT?;:OUTP?;*OPC?;")
    assert reply == "3.000000E+00;1;1"
    assert (d.width, d.output, d.level[2]) == (2e-6, True, 3.0)
    assert errors(engine) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [("1.5", 1.5), ("1500mV", 1.5), ("1.5 V", 1.5), ("-2e0", -2.0), ("MIN", -10), ("max", 10)],
)
def test_numbers_with_units_prefixes_and_limits(eng, text, value):
    engine, d = eng
    engine.execute(f"VOLT {text}")
    assert d.level[1] == pytest.approx(value)
    assert errors(engine) == []


def test_time_and_ohm_suffixes_and_keyword_values(eng):
    engine, d = eng
    engine.execute("FUNC:PULS:WIDT 250NS")
    assert d.width == pytest.approx(250e-9)
    engine.execute("OUTP:LOAD INF")
    assert d.load == math.inf
    engine.execute("OUTP:LOAD 1KOHM")
    assert d.load == 1000.0
    engine.execute("FUNC:PULS:WIDT DEF")
    assert d.width == 1e-6
    assert engine.execute("VOLT? MAX;VOLT? DEF") == "1.000000E+01;5.000000E-01"
    assert errors(engine) == []


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("VOLT 11", -222),
        ("VOLT -1e3", -222),
        ("VOLT 1A", -131),
        ("VOLT abc", -104),
        ("VOLT", -109),
        ("VOLT 1,2", -108),
        ("FUNC TRIANGLE", -224),
        ("OUTP MAYBE", -224),
        ("SOUR3:VOLT 1", -114),
        (":READ 1", -113),
        ("READ? 1", -108),
        ("VOLT 1\x07", -101),
        ("VOLT 'x", -102),
        ("VO LT 1", -113),
        ("*FOO", -113),
        ("*IDN? 1", -108),
        ("1VOLT 2", -102),
    ],
)
def test_bad_commands_queue_their_code_and_never_act(eng, line, code):
    engine, d = eng
    assert engine.execute(line) is None
    assert errors(engine) == [code]
    assert d.level == {1: 0.0, 2: 0.0} and not d.output and d.func == "SIN"


def test_an_error_stops_the_rest_of_the_line_but_not_what_came_before(eng):
    engine, d = eng
    assert engine.execute("VOLT 1;VOLT 99;OUTP ON;*IDN?") is None
    assert d.level[1] == 1.0 and not d.output
    assert errors(engine) == [-222]


def test_error_queue_fifo_count_overflow_and_clear(eng):
    engine, _ = eng
    assert engine.execute("SYST:ERR?") == '0,"No error"'
    engine.execute("FOO")
    engine.execute("VOLT 99")
    assert engine.execute(":SYSTem:ERRor:COUNt?") == "2"
    assert engine.execute(":SYST:ERR:NEXT?").startswith("-113,")
    assert engine.execute("SYST:ERR?").startswith('-222,"Data out of range')
    for _ in range(QUEUE_SIZE + 5):
        engine.execute("FOO")
    assert engine.execute("SYST:ERR:COUN?") == str(QUEUE_SIZE)
    codes = errors(engine)
    assert codes[-1] == -350 and codes[:-1] == [-113] * (QUEUE_SIZE - 1)
    engine.execute("FOO;*CLS")
    engine.execute("FOO")
    engine.execute("*CLS")
    assert errors(engine) == []


def test_common_commands(eng):
    engine, d = eng
    assert engine.execute("*IDN?") == Device.idn
    engine.execute("VOLT 2;*RST;*TRG;*TRG")
    assert (d.resets, d.triggers, d.level[1]) == (1, 2, 0.0)
    assert engine.execute("*OPC?") == "1"
    engine.execute("*ESE 60")
    engine.execute("VOLT 99")  # execution error: ESR bit 4 (16)
    assert engine.execute("*STB?") == str(4 | 32)
    assert engine.execute("*ESR?;*ESR?") == "16;0"
    engine.execute("*OPC")
    assert engine.execute("*ESR?") == "1"


# -- fuzzing --------------------------------------------------------------------------
WORDS = [
    "SOUR", "SOUR2", "SOUR9", "VOLT", "LEV", "FUNC", "PULS", "WIDT", "OUTP", "LOAD", "READ",
    "SYST", "ERR", "COUN", "*IDN", "*RST", "*OPC", "*TRG", "*CLS", "*ESR", "MAX", "INF",
]  # fmt: skip
PIECES = WORDS + [":", ";", "?", " ", ",", "'", '"', "1", "-2.5e3", "mV", "ON", "\t", "\r", "é"]


def _check_line(engine: ScpiEngine, line: str) -> None:
    before = len(engine.status.errors)
    reply = engine.execute(line)
    assert reply is None or (isinstance(reply, str) and "\n" not in reply)
    if "?" in line:
        # A query is answered with one line, or the line left an error behind.
        assert reply is not None or len(engine.status.errors) > before


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_random_text_never_raises(line):
    engine, _ = make_engine()
    _check_line(engine, line)
    assert engine.execute("*IDN?") == Device.idn  # still serving


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=25))
def test_fuzz_token_soup_never_raises(pieces):
    engine, d = make_engine()
    _check_line(engine, "".join(pieces))
    assert -10 <= d.level[1] <= 10 and -10 <= d.level[2] <= 10
    assert engine.execute("*IDN?") == Device.idn


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60), st.integers(0, 59))
def test_fuzz_corrupted_valid_lines(noise, at):
    engine, _ = make_engine()
    valid = ":SOUR2:VOLT:LEV 1.5;:OUTP ON;:SOUR2:VOLT?;*OPC?"
    line = (valid[:at] + noise.decode("latin-1") + valid[at:]).replace("\n", "")
    _check_line(engine, line)
    assert engine.execute("*IDN?") == Device.idn
