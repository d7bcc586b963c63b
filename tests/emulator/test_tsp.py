"""TSP subset interpreter: statements, print formatting, the error queue, safety (no
way out of the declared names), and fuzzing with random and corrupted lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.emulator.scpi import Status
from xbarlab.emulator.tsp import (
    OUT_OF_RANGE,
    RUNTIME_ERROR,
    SYNTAX_ERROR,
    Attr,
    Table,
    TspEngine,
    TspError,
    number,
    parse,
)


class Node:
    """A toy TSP instrument: one SMU-like table and a function that records calls."""

    idn = "ACME,TSP-1,0001,1.0"

    def __init__(self):
        self.levelv = 0.0
        self.output = 0.0
        self.calls: list[tuple] = []

    def reset(self):
        self.levelv = 0.0

    def trigger(self):
        pass


def make_engine() -> tuple[TspEngine, Node]:
    n = Node()
    smua = Table(
        OUTPUT_ON=1.0,
        OUTPUT_OFF=0.0,
        source=Table(
            levelv=Attr(
                lambda: n.levelv,
                lambda v: setattr(n, "levelv", v),
                number(-200, 200, "smua.source.levelv"),
            ),
            output=Attr(
                lambda: n.output,
                lambda v: setattr(n, "output", v),
                number(0, 1, "smua.source.output", (0.0, 1.0)),
            ),
            compliance=Attr(lambda: False),
        ),
        measure=Table(i=lambda: 1.25e-6, iv=lambda: (1.25e-6, 0.2)),
    )

    def close(names):
        if not isinstance(names, str):
            raise TspError(OUT_OF_RANGE, "channel list must be a string")
        n.calls.append(("close", names))

    channel = Table(close=close, getclose=lambda names: None)
    return TspEngine({"smua": smua, "channel": channel}, Status(n)), n


@pytest.fixture
def eng():
    return make_engine()


def drain(engine: TspEngine) -> list[tuple[int, str]]:
    out = []
    while True:
        code, message, *_ = engine.execute("print(errorqueue.next())")[0].split("\t")
        if float(code) == 0:
            assert message == "Queue Is Empty"
            return out
        out.append((int(float(code)), message))


def test_assignments_calls_and_several_statements_per_line(eng):
    engine, n = eng
    out = engine.execute(
        'smua.source.levelv = 0.1 smua.source.output = smua.OUTPUT_ON; channel.close("1A01,1B03")'
    )
    assert out == []
    assert (n.levelv, n.output, n.calls) == (0.1, 1.0, [("close", "1A01,1B03")])
    assert drain(engine) == []


def test_print_formats_like_the_instrument(eng):
    engine, _ = eng
    assert engine.execute("print(smua.measure.i())") == ["1.25000e-06"]
    assert engine.execute("print(smua.measure.iv())") == ["1.25000e-06\t2.00000e-01"]
    assert engine.execute("print(smua.measure.iv(), -3)") == ["1.25000e-06\t-3.00000e+00"]
    assert engine.execute("print(smua.source.compliance, nil, 'x')") == ["false\tnil\tx"]
    assert engine.execute('print(channel.getclose("allslots"))') == ["nil"]
    assert engine.execute("print(1) print(2) -- a comment") == ["1.00000e+00", "2.00000e+00"]


def test_common_commands_work_on_tsp_instruments(eng):
    engine, _ = eng
    assert engine.execute("*IDN?") == [Node.idn]
    engine.execute("smua.source.levelv = 3")
    assert engine.execute("*RST; *OPC?") == ["1"]
    assert engine.execute("print(smua.source.levelv)") == ["0.00000e+00"]


def test_error_queue_count_next_and_clear(eng):
    engine, _ = eng
    assert engine.execute("print(errorqueue.count)") == ["0.00000e+00"]
    engine.execute("smua.source.levelv = 500")
    engine.execute("smub.source.levelv = 1")
    assert engine.execute("print(errorqueue.count)") == ["2.00000e+00"]
    code, message, severity, node = engine.execute("print(errorqueue.next())")[0].split("\t")
    assert (float(code), float(severity), float(node)) == (OUT_OF_RANGE, 20.0, 0.0)
    assert "smua.source.levelv" in message and "500" in message
    engine.execute("errorqueue.clear()")
    assert drain(engine) == []


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("smua.source.levelv = ", SYNTAX_ERROR),
        ("smua.source.levelv 1", SYNTAX_ERROR),
        ("print(smua.measure.i()", SYNTAX_ERROR),
        ("smua.source.levelv = 1 +", SYNTAX_ERROR),
        ("x = {1}", SYNTAX_ERROR),
        ("smua.source.levelv = 201", OUT_OF_RANGE),
        ("smua.source.levelv = 1e999", OUT_OF_RANGE),
        ("smua.source.output = 0.5", OUT_OF_RANGE),
        ('smua.source.levelv = "1"', RUNTIME_ERROR),
        ("smua.source.levelv = smua.OUTPUT", RUNTIME_ERROR),
        ("smua.source.compliance = true", RUNTIME_ERROR),
        ("smua.measure.i = 3", RUNTIME_ERROR),
        ("smua.source()", RUNTIME_ERROR),
        ("channel.close(1)", OUT_OF_RANGE),
        ("smua.measure.i(1, 2)", RUNTIME_ERROR),
        ("os.execute('rm -rf /')", RUNTIME_ERROR),
        ("__import__('os')", RUNTIME_ERROR),
        ("print.__globals__ = 1", RUNTIME_ERROR),
    ],
)
def test_bad_statements_queue_an_error_and_never_act(eng, line, code):
    engine, n = eng
    assert engine.execute(line) == []
    assert [c for c, _ in drain(engine)] == [code]
    assert (n.levelv, n.output, n.calls) == (0.0, 0.0, [])


def test_a_syntax_error_runs_nothing_a_runtime_error_stops_the_line(eng):
    engine, n = eng
    engine.execute("smua.source.levelv = 1 smua.source.levelv = ")
    assert n.levelv == 0.0
    engine.execute("smua.source.levelv = 1 smua.source.levelv = 999 smua.source.output = 1")
    assert (n.levelv, n.output) == (1.0, 0.0)
    assert [c for c, _ in drain(engine)] == [SYNTAX_ERROR, OUT_OF_RANGE]


def test_parse_builds_plain_statements():
    assert parse('smua.source.levelv = -0.5; channel.close("1A01")') == [
        ("set", ("smua", "source", "levelv"), ("neg", ("const", 0.5))),
        ("call", ("channel", "close"), [("const", "1A01")]),
    ]


# -- fuzzing --------------------------------------------------------------------------
PIECES = [
    "smua", "smub", ".", "source", "levelv", "output", "measure", "i", "(", ")", "=", ";",
    ",", "print", "errorqueue", "next", "count", "channel", "close", '"1A01"', "'x", "-",
    "0.1", "1e999", "nil", "true", " ", "--", "*IDN?", "OUTPUT_ON", "\t", "[", "{", "é",
]  # fmt: skip


def _check_line(engine: TspEngine, line: str) -> None:
    out = engine.execute(line)
    assert isinstance(out, list) and all("\n" not in o for o in out)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_random_text_never_raises(line):
    engine, n = make_engine()
    _check_line(engine, line)
    assert engine.execute("*IDN?") == [Node.idn]
    assert -200 <= n.levelv <= 200 and n.output in (0.0, 1.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=25))
def test_fuzz_token_soup_never_raises(pieces):
    engine, n = make_engine()
    _check_line(engine, "".join(pieces))
    assert engine.execute("print(1)") == ["1.00000e+00"]
    assert -200 <= n.levelv <= 200 and n.output in (0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.integers(0, 60))
def test_fuzz_corrupted_valid_lines(noise, at):
    engine, _ = make_engine()
    valid = 'smua.source.levelv = 0.1 channel.close("1A01") print(smua.measure.i())'
    _check_line(engine, valid[:at] + noise.decode("latin-1") + valid[at:])
    assert engine.execute("*IDN?") == [Node.idn]
