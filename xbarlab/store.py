"""The run store: every measurement of every run, kept safe in one SQLite file.

A run is one execution of a procedure (or a campaign of them). The store keeps a
catalog of runs (procedure, parameters, backend spec, chip info, status, start and
end time, software version, seed, parent campaign, summary, error) and, per run,
the ordered records its steps produced, each under a step id that is unique in
the run. The runner uses the step ids to resume a run without repeating a step.

Why SQLite in WAL mode: one file, no server, readers never block the writer, and
a committed transaction survives the writing process being killed
(``synchronous=NORMAL`` is durable against process death, not power loss).
Each :meth:`RunStore.add_record` is one transaction, so a killed process loses
at most the record in flight and the file stays consistent.

Record values are numpy arrays, stored as ``.npy`` bytes (``allow_pickle=False``
both ways: a store never executes code when read), or JSON-able values
(numbers, strings, lists, dicts; numpy scalars become Python numbers); the encoding
and its checks live in :mod:`xbarlab.store_values`.
:func:`export_hdf5` writes a run, with its campaign children, to HDF5.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xbarlab import __version__
from xbarlab.errors import ConfigError
from xbarlab.hdf5_export import export_hdf5
from xbarlab.store_values import decode, encode_fields, to_json

__all__ = ["DEFAULT_STORE", "STATUSES", "RunInfo", "RunStore", "StoredRecord", "export_hdf5"]

DEFAULT_STORE = "xbarlab-runs.sqlite"
STATUSES = ("running", "paused", "aborted", "completed", "failed", "interrupted")
TERMINAL_STATUSES = ("aborted", "completed", "failed")
SCHEMA_VERSION = 1
_PAGE_SIZE = 65536  # bytes, SQLite's largest
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's transaction

_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, procedure TEXT NOT NULL, parameters TEXT NOT NULL,
    backend TEXT NOT NULL, chip_info TEXT NOT NULL, status TEXT NOT NULL,
    started REAL NOT NULL, ended REAL, version TEXT NOT NULL, seed INTEGER,
    parent TEXT REFERENCES runs(run_id), summary TEXT NOT NULL, error TEXT);
CREATE INDEX runs_parent ON runs(parent);
CREATE TABLE records (
    run_id TEXT NOT NULL REFERENCES runs(run_id), seq INTEGER NOT NULL,
    step_id TEXT NOT NULL, time REAL NOT NULL,
    PRIMARY KEY (run_id, seq), UNIQUE (run_id, step_id));
CREATE TABLE fields (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, pos INTEGER NOT NULL, name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('npy', 'json')), value BLOB NOT NULL,
    PRIMARY KEY (run_id, seq, pos), UNIQUE (run_id, seq, name),
    FOREIGN KEY (run_id, seq) REFERENCES records(run_id, seq));
CREATE INDEX fields_name ON fields(run_id, name, seq);
CREATE TABLE chip_state (
    key TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id),
    step_id TEXT NOT NULL, blob BLOB NOT NULL);
"""
_RUN_COLUMNS = (
    "run_id, procedure, parameters, backend, chip_info, status, started, ended, version, "
    "seed, parent, summary, error, (SELECT COUNT(*) FROM records WHERE run_id = runs.run_id)"
)
_RUN_JSON_COLUMNS = (2, 4, 11)  # parameters, chip_info, summary
_NEWEST_FIRST = "ORDER BY started DESC, rowid DESC"


@dataclass(frozen=True)
class RunInfo:
    """One run's catalog entry. Times are unix times in s; ``ended`` is None until
    the run reaches a terminal status (aborted, completed, failed)."""

    run_id: str
    procedure: str
    parameters: dict
    backend: str
    chip_info: dict
    status: str
    started: float
    ended: float | None
    version: str
    seed: int | None
    parent: str | None
    summary: dict
    error: str | None
    n_records: int

    def to_dict(self) -> dict:
        """All fields as a JSON-ready dict (``run_id``, ``procedure``, ``status``, ...)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StoredRecord:
    """One stored record: its position ``seq`` (0, 1, ... in the run), step id,
    storage time (unix time, s) and data (arrays back as ndarray)."""

    seq: int
    step_id: str
    time: float
    data: dict[str, Any]


def _describe_file(path: Path) -> str:
    """A short guess of what a file that is not a run store holds (its first bytes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    return f"it is not an SQLite database (it starts with {head!r})"


class RunStore:
    """Embedded SQLite (WAL) run store; safe to use from several threads (internal lock).

    Several processes may open the same file (one writer at a time; readers see
    every committed record). Every method that takes a run id also accepts a
    unique prefix of one.

    Parameters
    ----------
    path : str or os.PathLike
        The store file; it and its parent directory are created if missing.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            raise ConfigError(f"run store path {str(self.path)!r} is a directory; give a file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            self._open_schema()
        except sqlite3.DatabaseError:
            self._conn.close()
            raise ConfigError(
                f"{str(self.path)!r} is not an xbarlab run store: {_describe_file(self.path)}. "
                "Pass the path of a run store, or a new path to start one."
            ) from None
        except BaseException:
            self._conn.close()
            raise

    def _open_schema(self) -> None:
        """Set the connection up, create the schema in a new file, check an old one's."""
        # large pages for a new file (ignored for an existing one): records and chip states
        # are blobs of megabytes, written three times faster than in 4 KB overflow pages
        self._conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self._transaction() as conn:
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found > SCHEMA_VERSION:
                raise ConfigError(
                    f"run store {str(self.path)!r} has schema version {found}, newer than the "
                    f"{SCHEMA_VERSION} this xbarlab {__version__} understands; upgrade xbarlab"
                )
            if found == 0:
                if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                    raise ConfigError(
                        f"{str(self.path)!r} is an SQLite database but not an xbarlab run "
                        "store; pass another path"
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the connection (idempotent); the file stays consistent."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE): all of it commits, or none of it."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _resolve(self, run_id: str) -> str:
        """The full id of ``run_id`` or of the one run whose id starts with it."""
        if not isinstance(run_id, str) or not run_id:
            raise ConfigError(f"run id {run_id!r} must be a non-empty string")
        if self._query("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)):
            return run_id
        found = self._query(
            "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY run_id",
            (len(run_id), run_id),
        )
        if len(found) == 1:
            return found[0][0]
        if found:
            ids = ", ".join(r[0] for r in found[:5])
            raise ConfigError(f"run id prefix {run_id!r} is ambiguous: it matches {ids}")
        known = [r[0] for r in self._query(f"SELECT run_id FROM runs {_NEWEST_FIRST}")]
        near = difflib.get_close_matches(run_id, known, n=3, cutoff=0.5) or known[:3]
        hint = f"nearest known: {', '.join(near)}" if near else "the store holds no runs"
        raise ConfigError(f"unknown run id {run_id!r} in {str(self.path)!r}; {hint}")

    def create_run(
        self,
        procedure: str,
        parameters: Mapping[str, Any],
        *,
        backend: str,
        chip_info: Mapping[str, Any] | None = None,
        seed: int | None = None,
        parent: str | None = None,
    ) -> str:
        """Add a run with status "running"; return its id ("YYYYmmdd-HHMMSS-xxxx", UTC).

        ``parameters`` and ``chip_info`` must be JSON-able; ``parent`` is the id of
        the campaign run this run belongs to.
        """
        if not isinstance(procedure, str) or not procedure:
            raise ConfigError(f"procedure {procedure!r} must be a non-empty string")
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ConfigError(f"seed = {seed!r} must be an integer or None")
        seed, backend = (None if seed is None else int(seed)), str(backend)
        params = to_json("parameters", dict(parameters))
        chip = to_json("chip_info", dict(chip_info or {}))
        parent = self._resolve(parent) if parent is not None else None
        with self._transaction() as conn:
            started = time.time()
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
            run_id = f"{stamp}-{secrets.token_hex(2)}"
            while conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                run_id = f"{stamp}-{secrets.token_hex(2)}"
            row = (run_id, procedure, params, backend, chip, started, __version__, seed, parent)
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, 'running', ?, NULL, ?, ?, ?, '{}', NULL)",
                row,
            )
        return run_id

    def add_record(
        self,
        run_id: str,
        step_id: str,
        data: Mapping[str, Any],
        *,
        chip_state: tuple[str, bytes] | None = None,
    ) -> int:
        """Store one step's record, and the chip state, in one transaction.

        Durable on return: a process killed afterwards keeps it.

        Parameters
        ----------
        run_id : str
            The run (or a unique prefix of its id).
        step_id : str
            Unique within the run; a duplicate raises ConfigError.
        data : mapping
            Field name -> numpy array (stored as ``.npy`` bytes, object arrays refused)
            or JSON-able value. A bad field raises ConfigError naming it; nothing is written.
        chip_state : (key, blob), optional
            Replaces the blob stored under ``key`` in the same transaction.

        Returns
        -------
        int
            The record's sequence number in the run (0 for the first).
        """
        if not isinstance(step_id, str) or not step_id:
            raise ConfigError(f"step id {step_id!r} must be a non-empty string")
        fields = encode_fields(data)
        if chip_state is not None:
            key, blob = chip_state
            if not isinstance(key, str) or not key or not isinstance(blob, (bytes, bytearray)):
                raise ConfigError("chip_state must be a (non-empty str key, bytes blob) pair")
        run_id = self._resolve(run_id)
        with self._transaction() as conn:
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM records WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            try:
                conn.execute(
                    "INSERT INTO records VALUES (?, ?, ?, ?)", (run_id, seq, step_id, time.time())
                )
            except sqlite3.IntegrityError:
                raise ConfigError(
                    f"step id {step_id!r} is already recorded in run {run_id}; step ids must be "
                    "unique within a run"
                ) from None
            conn.executemany(
                "INSERT INTO fields VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, seq, *f) for f in fields],
            )
            if chip_state is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO chip_state VALUES (?, ?, ?, ?)",
                    (key, run_id, step_id, bytes(blob)),
                )
        return seq

    def step_ids(self, run_id: str) -> list[str]:
        """The run's recorded step ids, in record order."""
        rows = self._query(
            "SELECT step_id FROM records WHERE run_id = ? ORDER BY seq", (self._resolve(run_id),)
        )
        return [r[0] for r in rows]

    def records(self, run_id: str) -> list[StoredRecord]:
        """All records of the run, in order, with their data decoded."""
        return self._records(self._resolve(run_id), None)

    def record(self, run_id: str, step_id: str) -> dict[str, Any]:
        """The data of one record; ConfigError naming the step id if it is not recorded."""
        run_id = self._resolve(run_id)
        found = self._records(run_id, step_id)
        if not found:
            known = self.step_ids(run_id)
            near = difflib.get_close_matches(str(step_id), known, n=3, cutoff=0.5) or known[:3]
            raise ConfigError(
                f"step id {step_id!r} is not recorded in run {run_id} ({len(known)} records"
                + (f"; nearest: {', '.join(near)})" if near else ")")
            )
        return found[0].data

    def _records(self, run_id: str, step_id: str | None) -> list[StoredRecord]:
        where = "r.run_id = ?" + (" AND r.step_id = ?" if step_id is not None else "")
        args = (run_id,) if step_id is None else (run_id, step_id)
        rows = self._query(
            "SELECT r.seq, r.step_id, r.time, f.name, f.kind, f.value FROM records r "
            "LEFT JOIN fields f ON f.run_id = r.run_id AND f.seq = r.seq "
            f"WHERE {where} ORDER BY r.seq, f.pos",
            args,
        )
        out: list[StoredRecord] = []
        for seq, step, stamp, name, kind, value in rows:
            if not out or out[-1].seq != seq:
                out.append(StoredRecord(seq, step, stamp, {}))
            if name is not None:
                out[-1].data[name] = decode(kind, value)
        return out

    def arrays(self, run_id: str, name: str) -> np.ndarray:
        """Field ``name`` of every record that has it, stacked in record order.

        Array fields of equal shape give an array of shape (n_records, *shape);
        numeric scalar fields give a 1-D array.
        """
        run_id = self._resolve(run_id)
        rows = self._query(
            "SELECT f.kind, f.value, r.step_id FROM fields f JOIN records r "
            "ON r.run_id = f.run_id AND r.seq = f.seq WHERE f.run_id = ? AND f.name = ? "
            "ORDER BY f.seq",
            (run_id, name),
        )
        if not rows:
            sql = "SELECT DISTINCT name FROM fields WHERE run_id = ? ORDER BY name"
            names = [r[0] for r in self._query(sql, (run_id,))]
            raise ConfigError(
                f"no record of run {run_id} has a field {name!r}; fields: {', '.join(names) or '-'}"
            )
        values = [np.asarray(decode(kind, value)) for kind, value, _ in rows]
        odd = next((i for i, v in enumerate(values) if v.shape != values[0].shape), None)
        if odd is not None:
            raise ConfigError(
                f"field {name!r} of run {run_id} has shape {values[0].shape} at step "
                f"{rows[0][2]!r} but {values[odd].shape} at step {rows[odd][2]!r}; "
                "read such records one by one with records()"
            )
        return np.stack(values)

    def set_status(
        self,
        run_id: str,
        status: str,
        *,
        summary: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Set the run's status; terminal ones (aborted, completed, failed) set ``ended``.

        A non-terminal status (e.g. "running" again on resume) clears ``ended``.
        ``summary`` replaces the stored one when given; ``error`` is always replaced
        (None clears it).
        """
        if status not in STATUSES:
            raise ConfigError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        ended = time.time() if status in TERMINAL_STATUSES else None
        summary_json = None if summary is None else to_json("summary", dict(summary))
        run_id = self._resolve(run_id)
        with self._transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, ended = ?, error = ?, "
                "summary = COALESCE(?, summary) WHERE run_id = ?",
                (status, ended, error, summary_json, run_id),
            )

    def run(self, run_id: str) -> RunInfo:
        """The catalog entry of a run (``run_id`` may be a unique prefix)."""
        run_id = self._resolve(run_id)
        return self._runs("WHERE run_id = ?", (run_id,))[0]

    def runs(
        self, *, procedure: str | None = None, parent: str | None = None, top_level: bool = False
    ) -> list[RunInfo]:
        """Runs, newest first: all, one procedure's, one campaign's children
        (``parent``), or only those without a parent (``top_level=True``)."""
        if parent is not None and top_level:
            raise ConfigError("runs(): parent and top_level=True exclude each other")
        terms, args = [], []
        if procedure is not None:
            terms.append("procedure = ?")
            args.append(procedure)
        if parent is not None:
            terms.append("parent = ?")
            args.append(self._resolve(parent))
        if top_level:
            terms.append("parent IS NULL")
        where = f"WHERE {' AND '.join(terms)}" if terms else ""
        return self._runs(f"{where} {_NEWEST_FIRST}", tuple(args))

    def _runs(self, tail: str, args: tuple) -> list[RunInfo]:
        infos = []
        for row in self._query(f"SELECT {_RUN_COLUMNS} FROM runs {tail}", args):
            values = list(row)
            for i in _RUN_JSON_COLUMNS:
                values[i] = json.loads(values[i])
            infos.append(RunInfo(*values))
        return infos

    def chip_state(self, key: str) -> bytes | None:
        """The latest chip state blob stored under ``key``, or None."""
        rows = self._query("SELECT blob FROM chip_state WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None
