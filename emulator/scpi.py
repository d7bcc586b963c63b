"""A small SCPI engine for the emulated instruments.

An emulated instrument declares its command tree once (:class:`ScpiTree`): each
entry is a header pattern in the manual's notation, ``[:SOURce#]:VOLTage[:LEVel]``
(upper case = short form, ``[...]`` = optional node, ``#`` = optional numeric
suffix such as the channel of ``SOUR2``), its parameters (:class:`Number`,
:class:`Choice`, :class:`Boolean`) and the functions that set and query it.
:class:`ScpiEngine` then parses program messages the way a real instrument does:
long and short keyword forms case-insensitively, several commands per line
separated by ``;`` (relative to the previous command's path, or absolute with a
leading ``:``), numeric values with units, SI prefixes and MIN/MAX/DEF, and the
IEEE 488.2 common commands (:class:`Status`).

Every error goes into the instrument's error queue with its standard SCPI code
(-113 undefined header, -222 data out of range, ...) and stops the rest of the
line, so a bad command never acts; the engine itself never raises.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: standard SCPI error messages (SCPI-99 vol. 2, chapter 21), by code
MESSAGES = {
    0: "No error",
    -100: "Command error",
    -101: "Invalid character",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -131: "Invalid suffix",
    -138: "Suffix not allowed",
    -141: "Invalid character data",
    -200: "Execution error",
    -211: "Trigger ignored",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -240: "Hardware error",
    -350: "Queue overflow",
    -363: "Input buffer overrun",
}
#: error queue depth; the newest entry becomes -350 when it overflows
QUEUE_SIZE = 32
_UNITS = {"V", "A", "S", "HZ", "OHM", "PCT"}
#: SCPI suffix multipliers ("M" is milli; MA (mega) is spelt out, MHZ and MOHM are mega)
_PREFIX = {"": 1.0, "N": 1e-9, "U": 1e-6, "M": 1e-3, "K": 1e3, "MA": 1e6, "G": 1e9}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_HEADER = re.compile(r"\*?[A-Za-z][A-Za-z0-9_]*(:[A-Za-z][A-Za-z0-9_]*)*\??")
#: event status register bit set by an error of each hundred (-1xx command, -2xx
#: execution, -3xx device-dependent, -4xx query)
_ESR_BITS = {1: 32, 2: 16, 3: 8, 4: 4}


class ScpiError(Exception):
    """A command the instrument rejects: code and detail go to the error queue."""

    def __init__(self, code: int, detail: str = ""):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    @property
    def message(self) -> str:
        text = MESSAGES.get(self.code, "Error")
        return f"{text}; {self.detail}" if self.detail else text


class ErrorQueue:
    """FIFO of (code, message); the newest entry turns into -350 when it is full."""

    def __init__(self, size: int = QUEUE_SIZE):
        self._q: deque[tuple[int, str]] = deque()
        self._size = size

    def push(self, code: int, message: str) -> None:
        if len(self._q) >= self._size:
            self._q[-1] = (-350, MESSAGES[-350])
            return
        self._q.append((code, message.replace('"', "'")))

    def next(self) -> tuple[int, str]:
        """Oldest error, or (0, "No error")."""
        return self._q.popleft() if self._q else (0, MESSAGES[0])

    def __len__(self) -> int:
        return len(self._q)

    def clear(self) -> None:
        self._q.clear()


def keyword(token: str, mixed: str) -> bool:
    """True if ``token`` (upper case) is the short or long form of ``mixed`` ("VOLTage")."""
    return token == mixed.upper() or token == "".join(c for c in mixed if not c.islower())


def fmt(value: float) -> str:
    """A number in NR3 with 7 significant digits; infinity as SCPI's 9.9E+37."""
    if math.isinf(value):
        value = math.copysign(9.9e37, value)
    return f"{value:.6E}"


# -- parameters -----------------------------------------------------------------------
@dataclass(frozen=True)
class Number:
    """A numeric parameter: unit (suffix accepted with SI prefixes), range, MIN/MAX/DEF.

    ``words`` adds keyword values (``{"INFinity": math.inf}``); ``integer`` rounds.
    """

    unit: str = ""
    lo: float = -math.inf
    hi: float = math.inf
    default: float | None = None
    integer: bool = False
    words: dict = field(default_factory=dict)

    def parse(self, text: str) -> float:
        token = text.upper()
        for word, value in {"MINimum": self.lo, "MAXimum": self.hi, **self.words}.items():
            if keyword(token, word):
                return value
        if keyword(token, "DEFault"):
            if self.default is None:
                raise ScpiError(-224, f"{text} has no default")
            return self.default
        m = _NUMBER.match(text)
        if m is None:
            raise ScpiError(-104, f"{text!r} is not a number")
        value = float(m.group(0)) * self._multiplier(token[m.end() :].strip())
        if not math.isfinite(value):
            raise ScpiError(-222, f"{text} is not finite")
        if self.integer:
            value = round(value)
        if not self.lo <= value <= self.hi:
            raise ScpiError(-222, f"{text} outside {self.lo:g}..{self.hi:g} {self.unit}".strip())
        return value

    def _multiplier(self, suffix: str) -> float:
        if not suffix:
            return 1.0
        unit = self.unit.upper()
        if unit and suffix.endswith(unit):
            prefix = suffix[: -len(unit)]
            if prefix == "M" and unit in ("HZ", "OHM"):
                return 1e6
            if prefix in _PREFIX:
                return _PREFIX[prefix]
        elif unit == "S" and suffix in ("MS", "US", "NS"):
            return _PREFIX[suffix[0]]
        raise ScpiError(-131 if unit else -138, f"suffix {suffix!r} (unit {self.unit!r})")


@dataclass(frozen=True)
class Choice:
    """Character data from a list of mixed-case words; quotes allowed. Parses to the
    short form ("VOLTage" -> "VOLT"), which is also how queries answer."""

    words: tuple[str, ...]

    def parse(self, text: str) -> str:
        token = text.strip("'\"").upper()
        for word in self.words:
            if keyword(token, word):
                return "".join(c for c in word if not c.islower())
        raise ScpiError(-224, f"{text} not in {', '.join(self.words)}")


@dataclass(frozen=True)
class Boolean:
    """ON/OFF or a number (non-zero after rounding = ON)."""

    def parse(self, text: str) -> bool:
        token = text.upper()
        if token in ("ON", "OFF"):
            return token == "ON"
        try:
            return round(float(token)) != 0
        except ValueError:
            raise ScpiError(-224, f"{text} is not ON, OFF, 1 or 0") from None


# -- the command tree -----------------------------------------------------------------
@dataclass(frozen=True)
class _Node:
    word: str  # mixed case, e.g. "VOLTage"
    optional: bool
    suffix: bool


@dataclass(frozen=True)
class Entry:
    """One declared header: its nodes, parameters and set/query functions."""

    pattern: str
    nodes: tuple[_Node, ...]
    params: tuple
    write: Callable | None
    read: Callable | None
    has_suffix: bool


def _nodes(pattern: str) -> tuple[_Node, ...]:
    out = []
    for part in re.findall(r"\[:?[^\]]+\]|:?[^:\[]+", pattern):
        optional = part.startswith("[")
        word = part.strip("[]").lstrip(":")
        out.append(_Node(word.rstrip("#"), optional, word.endswith("#")))
    return tuple(out)


class ScpiTree:
    """The command tree of one instrument, declared once.

    Parameters
    ----------
    suffix_max : int
        Largest numeric suffix a ``#`` node accepts (channels; 1 when unused).
    """

    def __init__(self, suffix_max: int = 1):
        self.entries: list[Entry] = []
        self.suffix_max = suffix_max
        self._cache: dict[tuple[str, ...], tuple[Entry, int] | None] = {}

    def add(self, pattern: str, *params, write=None, read=None) -> None:
        """Declare ``pattern``: ``write(*values)`` sets, ``read()`` answers the query.

        Patterns with a ``#`` node get the suffix (default 1) as first argument.
        """
        nodes = _nodes(pattern)
        suffix = any(n.suffix for n in nodes)
        self.entries.append(Entry(pattern, nodes, params, write, read, suffix))
        self._cache.clear()

    def find(self, tokens: tuple[str, ...]) -> tuple[Entry, int] | None:
        """The entry matching upper-case header tokens and the suffix, or None."""
        if tokens in self._cache:
            return self._cache[tokens]
        found = None
        for entry in self.entries:
            suffix = _match(entry.nodes, tokens, self.suffix_max)
            if suffix is not None:
                found = (entry, suffix)
                break
        if len(self._cache) < 4096:  # bounded: fuzzed headers must not grow memory
            self._cache[tokens] = found
        return found


def _match(nodes: Sequence[_Node], tokens: Sequence[str], suffix_max: int) -> int | None:
    """Suffix value (1 if none given) if the tokens match the nodes, else None.

    A suffix outside 1..suffix_max raises -114.
    """
    if not nodes:
        return 1 if not tokens else None
    node, rest = nodes[0], nodes[1:]
    if tokens:
        token, suffix = tokens[0], 1
        if node.suffix:
            m = re.fullmatch(r"(.*?[A-Z])(\d+)", token)
            if m:
                token, suffix = m.group(1), int(m.group(2))
        if keyword(token, node.word):
            found = _match(rest, tokens[1:], suffix_max)
            if found is not None:
                if not 1 <= suffix <= suffix_max:
                    raise ScpiError(-114, f"{tokens[0]} (1..{suffix_max})")
                return suffix if suffix != 1 else found
    return _match(rest, tokens, suffix_max) if node.optional else None


# -- common commands and status -------------------------------------------------------
class Status:
    """IEEE 488.2 status of one instrument: error queue, event status register, the
    common commands. ``device`` provides ``idn`` (str), ``reset()`` and ``trigger()``."""

    def __init__(self, device):
        self.device = device
        self.errors = ErrorQueue()
        self.esr = 0
        self.ese = 0
        self.sre = 0

    def push(self, code: int, message: str | None = None) -> None:
        self.errors.push(code, message or MESSAGES.get(code, "Error"))
        self.esr |= _ESR_BITS.get(-code // 100, 0)

    def error_reply(self) -> str:
        """SYST:ERR? form: ``-113,"Undefined header"``."""
        code, message = self.errors.next()
        return f'{code},"{message}"'

    def common(self, header: str, args: str) -> str | None:
        """Run a ``*XXX`` command; return the reply of a query, None for a command."""
        name = header.upper()
        if name in ("*ESE", "*SRE"):
            value = int(Number(lo=0, hi=255, integer=True).parse(args.strip()))
            setattr(self, name[1:].lower(), value)
            return None
        if args.strip():
            raise ScpiError(-108, header)
        if name == "*ESR?":
            value, self.esr = self.esr, 0
            return str(value)
        if name == "*STB?":
            return str((4 if len(self.errors) else 0) | (32 if self.esr & self.ese else 0))
        simple = {
            "*IDN?": lambda: self.device.idn,
            "*OPC?": lambda: "1",
            "*TST?": lambda: "0",
            "*ESE?": lambda: str(self.ese),
            "*SRE?": lambda: str(self.sre),
            "*RST": self.device.reset,
            "*CLS": self._clear,
            "*TRG": self.device.trigger,
            "*OPC": self._opc,
            "*WAI": lambda: None,
        }
        if name not in simple:
            raise ScpiError(-113, header)
        return simple[name]()

    def _clear(self) -> None:
        self.errors.clear()
        self.esr = 0

    def _opc(self) -> None:
        self.esr |= 1  # operations complete: nothing runs in the background here


def split_units(line: str, sep: str = ";") -> list[str]:
    """Split on ``sep`` outside single or double quotes."""
    out, start, quote = [], 0, ""
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == sep:
            out.append(line[start:i])
            start = i + 1
    if quote:
        raise ScpiError(-102, "unterminated string")
    out.append(line[start:])
    return out


class ScpiEngine:
    """Executes SCPI program messages (lines) against one instrument's tree."""

    def __init__(self, tree: ScpiTree, status: Status):
        self.tree = tree
        self.status = status
        tree.add(":SYSTem:ERRor[:NEXT]", read=status.error_reply)
        tree.add(":SYSTem:ERRor:COUNt", read=lambda: str(len(status.errors)))
        tree.add(":SYSTem:ERRor:CLEar", write=status.errors.clear)

    def execute(self, line: str) -> str | None:
        """Run one line; the replies of its queries joined by ``;``, or None if it has
        none. An error is queued and ends the line (the commands before it stay done)."""
        replies: list[str] = []
        try:
            line = line.replace("\t", " ")
            if not line.isascii() or not line.isprintable():
                raise ScpiError(-101, "non-printable or non-ASCII character")
            prefix: tuple[str, ...] = ()
            for unit in split_units(line):
                unit = unit.strip()
                if unit:
                    prefix = self._unit(unit, prefix, replies)
        except ScpiError as exc:
            self.status.push(exc.code, exc.message)
        return ";".join(replies) if replies else None

    def _unit(self, unit: str, prefix: tuple[str, ...], replies: list[str]) -> tuple[str, ...]:
        """Run one command; return the path prefix for the next one."""
        header, _, args = unit.partition(" ")
        header = header.strip()
        if _HEADER.fullmatch(header.lstrip(":")) is None:
            raise ScpiError(-102, f"header {header!r}")
        if header.startswith("*"):
            reply = self.status.common(header, args)
            if reply is not None:
                replies.append(reply)
            return prefix
        query = header.endswith("?")
        tokens = tuple(header.rstrip("?").lstrip(":").upper().split(":"))
        found = None
        if prefix and not header.startswith(":"):
            found = self.tree.find(prefix + tokens)
            tokens = prefix + tokens if found else tokens
        found = found or self.tree.find(tokens)
        if found is None:
            raise ScpiError(-113, header)
        entry, suffix = found
        lead = (suffix,) if entry.has_suffix else ()
        if query:
            replies.append(self._query(entry, lead, header, args))
        else:
            if entry.write is None:
                raise ScpiError(-113, f"{header} is a query only")
            entry.write(*lead, *self._args(entry, args))
        return tokens[:-1]

    @staticmethod
    def _query(entry: Entry, lead: tuple, header: str, args: str) -> str:
        """Answer a query; it takes no parameter except MIN/MAX/DEF of a number."""
        if entry.read is None:
            raise ScpiError(-113, f"{header} has no query form")
        text = args.strip()
        if not text:
            return entry.read(*lead)
        first = entry.params[0] if entry.params else None
        limits = ("MINimum", "MAXimum", "DEFault")
        if isinstance(first, Number) and any(keyword(text.upper(), w) for w in limits):
            return fmt(first.parse(text))
        raise ScpiError(-108, f"query takes no parameter: {text}")

    @staticmethod
    def _args(entry: Entry, args: str) -> list:
        """Parsed, validated parameter values of a command (nothing acts before this)."""
        texts = [a.strip() for a in split_units(args, ",")] if args.strip() else []
        if len(texts) < len(entry.params):
            raise ScpiError(-109, f"{entry.pattern} needs {len(entry.params)}")
        if len(texts) > len(entry.params):
            raise ScpiError(-108, args.strip())
        return [p.parse(t) for p, t in zip(entry.params, texts, strict=True)]
