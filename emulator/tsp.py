"""A safe interpreter for the TSP (Lua) subset that instrument drivers send.

Keithley TSP instruments (2600B SMUs, the 707B matrix) execute Lua chunks line by
line. Drivers use a small part of it: attribute assignments
(``smua.source.levelv = 0.1``, ``smua.source.output = smua.OUTPUT_ON``), function
calls (``channel.close("1A01,1B03")``) and ``print(...)`` of attributes and call
results, several statements per line. This module parses exactly that, with its
own tokenizer and a recursive-descent parser: nothing is ever passed to Python's
``eval``/``exec``, and only names the instrument declares (:class:`Table`,
:class:`Attr`, functions) can be reached.

As on the instrument, a line is compiled first (a syntax error runs nothing),
then executed statement by statement; a runtime error (unknown name, value out of
range, wrong type) goes to the error queue and ends the line. ``*IDN?`` and the
other IEEE 488.2 common commands work on TSP instruments too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from xbarlab.emulator.scpi import ScpiError, Status, split_units

#: TSP error codes (Series 2600B reference manual, error summary)
SYNTAX_ERROR, RUNTIME_ERROR, OUT_OF_RANGE = -285, -286, -222
_SEVERITY = 20  # "recoverable: possibly invalid user input"
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<str>\"[^\"\\\n]*\"|'[^'\\\n]*')"
    r"|(?P<op>--|[().,=;\-]))"
)
_KEYWORDS = {"true": True, "false": False, "nil": None}


class TspError(Exception):
    """A statement the instrument rejects (code and message go to the error queue)."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Attr:
    """An attribute: ``get()`` reads it; ``set(value)`` writes it after ``check``.

    ``check(value) -> value`` raises TspError for a bad value (see :func:`number`).
    A read-only attribute has ``set=None``.
    """

    get: Callable
    set: Callable | None = None
    check: Callable | None = None


class Table(dict):
    """A TSP table: names to constants, :class:`Attr`, functions or tables."""


def number(lo: float, hi: float, name: str, choices: tuple = ()) -> Callable:
    """A validator of a numeric attribute in lo..hi (or one of ``choices``)."""

    def check(value):
        if isinstance(value, bool) or not isinstance(value, float):
            raise TspError(RUNTIME_ERROR, f"{name} must be a number, got {fmt(value)}")
        if choices and value not in choices:
            allowed = ", ".join(fmt(c) for c in choices)
            raise TspError(OUT_OF_RANGE, f"Parameter out of range: {name} = {value:g} ({allowed})")
        if not (lo <= value <= hi):
            raise TspError(
                OUT_OF_RANGE, f"Parameter out of range: {name} = {value:g} ({lo:g} to {hi:g})"
            )
        return value

    return check


def fmt(value) -> str:
    """A value as TSP's print shows it (numbers in %e form with 6 digits)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.5e}"
    if isinstance(value, (Table, Attr)) or callable(value):
        return f"{type(value).__name__.lower()}: 0x0"
    return str(value)


# -- parser ---------------------------------------------------------------------------
def tokenize(line: str) -> list[tuple[str, object]]:
    """(kind, value) tokens of a line; a ``--`` comment ends it."""
    tokens, pos = [], 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if m is None:
            if line[pos:].strip() == "":
                break
            raise TspError(SYNTAX_ERROR, f"unexpected symbol near '{line[pos : pos + 8]}'")
        pos = m.end()
        kind = m.lastgroup
        text = m.group(kind)
        if text == "--":
            break
        value = float(text) if kind == "num" else text[1:-1] if kind == "str" else text
        tokens.append((kind, value))
    return tokens


class _Parser:
    """Recursive descent over the tokens: chunk := {stat [';']}."""

    def __init__(self, tokens):
        self.tokens, self.i = tokens, 0

    def peek(self, value=None):
        if self.i >= len(self.tokens):
            return None
        tok = self.tokens[self.i]
        return tok if value is None or tok[1] == value else None

    def take(self, value=None):
        tok = self.peek(value)
        if tok is None:
            near = self.tokens[self.i][1] if self.i < len(self.tokens) else "<eol>"
            want = f"'{value}' expected" if value else "unexpected end"
            raise TspError(SYNTAX_ERROR, f"{want} near '{near}'")
        self.i += 1
        return tok

    def chunk(self) -> list:
        stats = []
        while self.peek() is not None:
            if self.peek(";"):
                self.take()
                continue
            stats.append(self.statement())
        return stats

    def statement(self):
        path = self.path()
        if self.peek("("):
            return ("call", path, self.args())
        self.take("=")
        return ("set", path, self.expr())

    def path(self) -> tuple[str, ...]:
        kind, name = self.take()
        if kind != "name" or name in _KEYWORDS:
            raise TspError(SYNTAX_ERROR, f"unexpected symbol near '{name}'")
        names = [name]
        while self.peek("."):
            self.take()
            kind, name = self.take()
            if kind != "name":
                raise TspError(SYNTAX_ERROR, f"<name> expected near '{name}'")
            names.append(name)
        return tuple(names)

    def args(self) -> list:
        self.take("(")
        out = []
        if not self.peek(")"):
            out.append(self.expr())
            while self.peek(","):
                self.take()
                out.append(self.expr())
        self.take(")")
        return out

    def expr(self):
        tok = self.peek()
        if tok is None:
            raise TspError(SYNTAX_ERROR, "unexpected symbol near '<eol>'")
        kind, value = tok
        if value == "-":
            self.take()
            return ("neg", self.expr())
        if kind in ("num", "str"):
            self.take()
            return ("const", value)
        if kind == "name" and value in _KEYWORDS:
            self.take()
            return ("const", _KEYWORDS[value])
        path = self.path()
        return ("call", path, self.args()) if self.peek("(") else ("get", path)


def parse(line: str) -> list:
    """The statements of one line (syntax checked; nothing evaluated)."""
    return _Parser(tokenize(line)).chunk()


# -- interpreter ----------------------------------------------------------------------
class TspEngine:
    """Runs TSP lines against an instrument's global namespace.

    Parameters
    ----------
    globals_ : dict
        Names the instrument exposes (``smua``, ``channel``, ...); ``print``,
        ``errorqueue`` and ``localnode`` are added here.
    status : Status
        The instrument's status and error queue (shared with its ``*`` commands).
    """

    def __init__(self, globals_: dict, status: Status):
        self.status = status
        self.globals = dict(globals_)
        errors = status.errors
        self.globals["errorqueue"] = Table(
            count=Attr(lambda: float(len(errors))),
            next=self._next_error,
            clear=errors.clear,
        )
        self._out: list[str] = []
        self.globals["print"] = self._print

    def execute(self, line: str) -> list[str]:
        """Run one line; the lines its print calls produced (possibly none)."""
        self._out = []
        try:
            stripped = line.strip()
            if stripped.startswith("*"):
                return self._common(stripped)
            if not line.isascii():
                raise TspError(SYNTAX_ERROR, "unexpected non-ASCII symbol")
            for stat in parse(line):
                self._run(stat)
        except TspError as exc:
            kind = _KIND.get(exc.code)
            self.status.push(
                exc.code, f"TSP {kind} at line 1: {exc.message}" if kind else exc.message
            )
        except ScpiError as exc:
            self.status.push(exc.code, exc.message)
        return self._out

    def _common(self, line: str) -> list[str]:
        replies = []
        for unit in split_units(line):
            header, _, args = unit.strip().partition(" ")
            if header:
                reply = self.status.common(header, args)
                if reply is not None:
                    replies.append(reply)
        return [";".join(replies)] if replies else []

    def _next_error(self):
        code, message = self.status.errors.next()
        if code == 0:
            return (0.0, "Queue Is Empty", 0.0, 0.0)
        return (float(code), message, float(_SEVERITY), 0.0)

    def _print(self, *values) -> None:
        self._out.append("\t".join(fmt(v) for v in values))

    def _run(self, stat) -> None:
        kind, path, arg = stat
        if kind == "call":
            self._call(path, arg)
            return
        parent, name = self._lookup(path[:-1]), path[-1]
        if not isinstance(parent, Table) or not isinstance(parent.get(name), Attr):
            raise TspError(RUNTIME_ERROR, f"cannot assign {'.'.join(path)}")
        attr = parent[name]
        if attr.set is None:
            raise TspError(RUNTIME_ERROR, f"{'.'.join(path)} is read-only")
        value = self._eval(arg)
        attr.set(attr.check(value) if attr.check else value)

    def _call(self, path, args):
        func = self._lookup(path)
        if not callable(func) or isinstance(func, (Table, Attr)):
            raise TspError(RUNTIME_ERROR, f"attempt to call {'.'.join(path)} (not a function)")
        values = []
        for i, a in enumerate(args):
            v = self._eval(a, multi=i == len(args) - 1)
            values.extend(v if isinstance(v, tuple) else (v,))
        try:
            return func(*values)
        except TypeError:
            raise TspError(RUNTIME_ERROR, f"bad arguments to {'.'.join(path)}") from None

    def _eval(self, node, multi: bool = False):
        kind = node[0]
        if kind == "const":
            return node[1]
        if kind == "neg":
            v = self._eval(node[1])
            if not isinstance(v, float):
                raise TspError(RUNTIME_ERROR, f"attempt to negate {fmt(v)}")
            return -v
        if kind == "get":
            v = self._lookup(node[1])
            return v.get() if isinstance(v, Attr) else v
        v = self._call(node[1], node[2])
        return v if multi or not isinstance(v, tuple) else v[0]

    def _lookup(self, path: tuple[str, ...]):
        value = self.globals
        for i, name in enumerate(path):
            if isinstance(value, Attr):
                value = value.get()
            if not isinstance(value, dict) or name not in value:
                where = ".".join(path[: i + 1])
                raise TspError(RUNTIME_ERROR, f"attempt to index a nil value ({where})")
            value = value[name]
        return value


_KIND = {SYNTAX_ERROR: "Syntax error", RUNTIME_ERROR: "Runtime error"}
