"""The run store: round-trips, order, statuses, lookups, atomicity, WAL, export, crashes."""

from __future__ import annotations

import io
import json
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

import xbarlab.store as store_module
from xbarlab import __version__
from xbarlab.errors import ConfigError
from xbarlab.store import STATUSES, RunStore, export_hdf5


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "runs" / "store.sqlite") as s:
        yield s


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _raw(store: RunStore) -> sqlite3.Connection:
    return sqlite3.connect(store.path)


# --- round trips and order ---------------------------------------------------


def test_arrays_round_trip_bit_exact(store):
    rng = np.random.default_rng(1)
    data = {
        "g_S": (rng.random((5, 7)) * 25e-6).astype(np.float32),
        "nan_inf": np.array([np.nan, -np.inf, -0.0, 1e-45], dtype=np.float32),
        "mask": rng.random((4, 3)) > 0.5,
        "count": rng.integers(-(2**40), 2**40, size=6),
        "u8": np.arange(10, dtype=np.uint8),
        "t_s": np.geomspace(1.0, 86400.0, 30),
        "fortran": np.asfortranarray(rng.random((3, 4))),
        "scalar0d": np.array(3.5, dtype=np.float32),
        "labels": np.array(["set", "reset"]),
    }
    run = store.create_run("p", {}, backend="emulator:pcm")
    store.add_record(run, "s0", data)
    back = store.record(run, "s0")
    assert list(back) == list(data)
    for name, value in data.items():
        assert isinstance(back[name], np.ndarray), name
        assert _same_bits(back[name], value), name


def test_scalars_and_dicts_round_trip(store):
    data = {
        "i": 3,
        "x": 0.1,
        "big": 2**53 + 1,
        "s": "éµ",
        "flag": True,
        "none": None,
        "lst": [1, 2.5, "a"],
        "nested": {"fit": {"nu": 0.05, "levels": [1e-6, 2e-6]}},
        "np_scalar": np.float32(0.25),
        "np_int": np.int64(7),
        "nan": float("nan"),
    }
    run = store.create_run("p", {}, backend="b")
    store.add_record(run, "s0", data)
    back = store.record(run, "s0")
    assert {k: v for k, v in back.items() if k != "nan"} == {
        **{k: v for k, v in data.items() if k != "nan"},
        "np_scalar": 0.25,
        "np_int": 7,
    }
    assert type(back["np_int"]) is int and type(back["np_scalar"]) is float
    assert back["big"] == 2**53 + 1 and np.isnan(back["nan"])


def test_records_keep_insertion_order_and_seq(store):
    run = store.create_run("p", {}, backend="b")
    steps = [f"read-{k}" for k in (5, 1, 9, 0, 3)]
    seqs = [store.add_record(run, step, {"k": i}) for i, step in enumerate(steps)]
    assert seqs == [0, 1, 2, 3, 4]
    assert store.step_ids(run) == steps
    recs = store.records(run)
    assert [r.seq for r in recs] == seqs
    assert [r.step_id for r in recs] == steps
    assert [r.data["k"] for r in recs] == [0, 1, 2, 3, 4]
    assert all(a.time <= b.time for a, b in zip(recs, recs[1:], strict=False))
    assert store.run(run).n_records == 5


def test_empty_record_and_empty_run(store):
    run = store.create_run("p", {}, backend="b")
    assert store.records(run) == [] and store.step_ids(run) == []
    store.add_record(run, "nothing", {})
    assert store.record(run, "nothing") == {}
    assert [r.step_id for r in store.records(run)] == ["nothing"]


def test_arrays_stacks_fields_in_record_order(store):
    run = store.create_run("p", {}, backend="b")
    for i in range(4):
        data = {"g": np.full((2, 3), i, np.float32), "err": 0.5 * i}
        if i != 2:
            data["only_some"] = np.int16(i)
        store.add_record(run, f"s{i}", data)
    g = store.arrays(run, "g")
    assert g.shape == (4, 2, 3) and g.dtype == np.float32
    assert np.array_equal(g[:, 1, 2], [0, 1, 2, 3])
    assert np.array_equal(store.arrays(run, "err"), [0.0, 0.5, 1.0, 1.5])
    assert np.array_equal(store.arrays(run, "only_some"), [0, 1, 3])


def test_arrays_errors_name_the_field(store):
    run = store.create_run("p", {}, backend="b")
    store.add_record(run, "a", {"g": np.zeros(3)})
    store.add_record(run, "b", {"g": np.zeros(4)})
    with pytest.raises(ConfigError, match=r"'g'.*\(3,\).*'a'.*\(4,\).*'b'"):
        store.arrays(run, "g")
    with pytest.raises(ConfigError, match=r"field 'q'; fields: g"):
        store.arrays(run, "q")


# --- statuses and catalog ----------------------------------------------------


def test_create_run_catalog_entry(store):
    run = store.create_run(
        "drift",
        {"n_reads": 30, "t_end_s": 86400.0},
        backend="emulator:pcm?seed=1",
        chip_info={"rows": 4, "cols": 4},
        seed=np.int64(11),
    )
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", run)
    info = store.run(run)
    assert (info.run_id, info.procedure, info.backend) == (run, "drift", "emulator:pcm?seed=1")
    assert info.parameters == {"n_reads": 30, "t_end_s": 86400.0}
    assert info.chip_info == {"rows": 4, "cols": 4}
    assert (info.status, info.ended, info.seed, info.parent) == ("running", None, 11, None)
    assert (info.summary, info.error, info.n_records, info.version) == ({}, None, 0, __version__)
    assert abs(info.started - time.time()) < 60
    d = json.loads(json.dumps(info.to_dict()))
    assert d["run_id"] == run and d["procedure"] == "drift" and d["status"] == "running"


def test_statuses_and_ended(store):
    run = store.create_run("p", {}, backend="b")
    store.set_status(run, "paused")
    assert (store.run(run).status, store.run(run).ended) == ("paused", None)
    store.set_status(run, "aborted", summary={"done": 2})
    info = store.run(run)
    assert info.status == "aborted" and info.ended >= info.started
    assert info.summary == {"done": 2}
    store.set_status(run, "running")  # resumed: no longer ended, summary kept
    assert (store.run(run).ended, store.run(run).summary) == (None, {"done": 2})
    store.set_status(run, "failed", error="BackendError: link lost")
    info = store.run(run)
    assert (info.status, info.error) == ("failed", "BackendError: link lost")
    assert info.ended is not None
    store.set_status(run, "completed", summary={"nu": 0.05})
    info = store.run(run)
    assert (info.status, info.error, info.summary) == ("completed", None, {"nu": 0.05})
    store.set_status(run, "interrupted")
    assert store.run(run).ended is None
    with pytest.raises(ConfigError, match="'done' is not one of running, paused"):
        store.set_status(run, "done")
    assert set(STATUSES) == {"running", "paused", "aborted", "completed", "failed", "interrupted"}


def test_runs_filters_and_newest_first(store):
    camp = store.create_run("campaign", {}, backend="b")
    kids = [store.create_run(p, {}, backend="b", parent=camp) for p in ("drift", "iv", "drift")]
    lone = store.create_run("drift", {}, backend="b")
    other = store.create_run("campaign", {}, backend="b")
    other_kid = store.create_run("iv", {}, backend="b", parent=other)
    ids = lambda infos: [i.run_id for i in infos]  # noqa: E731
    assert ids(store.runs()) == [other_kid, other, lone, *kids[::-1], camp]
    assert ids(store.runs(procedure="drift")) == [lone, kids[2], kids[0]]
    assert ids(store.runs(parent=camp)) == kids[::-1]
    assert ids(store.runs(parent=camp, procedure="iv")) == [kids[1]]
    assert ids(store.runs(top_level=True)) == [other, lone, camp]
    assert store.run(kids[0]).parent == camp
    assert store.runs(procedure="nothing") == []
    with pytest.raises(ConfigError, match="exclude"):
        store.runs(parent=camp, top_level=True)
    with pytest.raises(ConfigError, match="unknown run id 'nope'"):
        store.create_run("drift", {}, backend="b", parent="nope")


def test_unique_prefix_lookup_and_unknown_ids(store, monkeypatch):
    tokens = iter(["1a2b", "1a2b", "1a2f", "9c00"])  # the second one collides: drawn again
    clock = SimpleNamespace(time=lambda: 1.8e9, gmtime=time.gmtime, strftime=time.strftime)
    monkeypatch.setattr(store_module, "time", clock)
    monkeypatch.setattr(store_module, "secrets", SimpleNamespace(token_hex=lambda n: next(tokens)))
    a, b, c = (store.create_run(p, {}, backend="b") for p in "pqr")
    assert (a, b, c) == ("20270115-080000-1a2b", "20270115-080000-1a2f", "20270115-080000-9c00")
    assert [i.run_id for i in store.runs()] == [c, b, a]  # same start time: newest insert first
    assert store.run("20270115-080000-9").run_id == c
    store.add_record("20270115-080000-1a2b", "s", {"x": 1})
    assert store.step_ids("20270115-080000-1a2b") == ["s"]
    with pytest.raises(
        ConfigError, match=f"'20270115-080000-1a2' is ambiguous: it matches {a}, {b}"
    ):
        store.run("20270115-080000-1a2")
    with pytest.raises(
        ConfigError, match=f"unknown run id '20270115-080000-1a2c'.*nearest known: {b}"
    ):
        store.run("20270115-080000-1a2c")
    with pytest.raises(ConfigError, match=f"unknown run id '2000'.*nearest known: {c}, {b}, {a}"):
        store.add_record("2000", "s", {})
    with pytest.raises(ConfigError, match="run id 3 must be a non-empty string"):
        store.run(3)


def test_unknown_id_in_empty_store(store):
    with pytest.raises(ConfigError, match="holds no runs"):
        store.run("20260101")


def test_bad_inputs_raise_config_error_and_write_nothing(store):
    run = store.create_run("p", {}, backend="b")
    bad = [
        ({"obj": np.array([1, "a", None], dtype=object)}, "'obj'.*dtype object.*pickle"),
        ({"f": object()}, "record field 'f'.*cannot be stored"),
        ({"nested": {"g": np.zeros(2)}}, "record field 'nested'.*top-level"),
        ({"b": b"raw"}, "record field 'b'"),
        ({"": 1}, "field name ''"),
        ({"a/b": 1}, "without '/'"),
        ({3: 1}, "field name 3"),
    ]
    for data, match in bad:
        with pytest.raises(ConfigError, match=match):
            store.add_record(run, "s", {"ok": np.ones(3), **data}, chip_state=("k", b"x"))
    with pytest.raises(ConfigError, match="step id"):
        store.add_record(run, "", {})
    with pytest.raises(ConfigError, match="mapping"):
        store.add_record(run, "s", [("x", 1)])
    with pytest.raises(ConfigError, match="chip_state"):
        store.add_record(run, "s", {}, chip_state=("k", "text"))
    with pytest.raises(ConfigError, match="parameters"):
        store.create_run("p", {"f": object()}, backend="b")
    with pytest.raises(ConfigError, match="seed"):
        store.create_run("p", {}, backend="b", seed=1.5)
    with pytest.raises(ConfigError, match="summary"):
        store.set_status(run, "completed", summary={"x": object()})
    assert store.step_ids(run) == [] and store.chip_state("k") is None
    assert store.run(run).status == "running" and len(store.runs()) == 1


def test_duplicate_step_id_is_refused(store):
    run = store.create_run("p", {}, backend="b")
    store.add_record(run, "s", {"x": 1})
    with pytest.raises(ConfigError, match=r"step id 's' is already recorded"):
        store.add_record(run, "s", {"x": 2})
    assert store.record(run, "s") == {"x": 1}
    other = store.create_run("p", {}, backend="b")
    assert store.add_record(other, "s", {"x": 3}) == 0  # unique per run, not per store
    with pytest.raises(ConfigError, match=r"'t' is not recorded.*nearest: s"):
        store.record(run, "t")


# --- chip state: replaced atomically with its record ------------------------


def test_chip_state_replaced_with_its_record(store, tmp_path):
    run = store.create_run("p", {}, backend="b")
    assert store.chip_state("chip") is None
    store.add_record(run, "s0", {"x": 0}, chip_state=("chip", b"state-0"))
    store.add_record(run, "s1", {"x": 1}, chip_state=("chip", bytearray(b"state-1")))
    store.add_record(run, "s2", {"x": 2})  # no state: the old one stays
    store.add_record(run, "s3", {"x": 3}, chip_state=("other", b"o"))
    with RunStore(store.path) as second:  # another connection sees both, together
        assert second.chip_state("chip") == b"state-1"
        assert second.chip_state("other") == b"o"
        assert second.step_ids(run) == ["s0", "s1", "s2", "s3"]
    rows = _raw(store).execute("SELECT key, run_id, step_id FROM chip_state ORDER BY key")
    assert rows.fetchall() == [("chip", run, "s1"), ("other", run, "s3")]


def test_failed_add_record_writes_neither_record_nor_state(store):
    run = store.create_run("p", {}, backend="b")
    store.add_record(run, "s0", {"x": 0}, chip_state=("chip", b"old"))
    with pytest.raises(ConfigError):  # a bad field: refused before the transaction
        store.add_record(run, "s1", {"x": 1, "bad": {1, 2}}, chip_state=("chip", b"new"))
    with pytest.raises(ConfigError):  # a duplicate step: refused inside the transaction
        store.add_record(run, "s0", {"x": 1}, chip_state=("chip", b"new"))
    assert (store.chip_state("chip"), store.step_ids(run)) == (b"old", ["s0"])


class _FailOnChipState:
    """A connection stand-in whose chip-state write fails, after the record was written."""

    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql, *args):
        if "INTO chip_state" in sql:
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_failure_late_in_the_transaction_rolls_everything_back(store):
    run = store.create_run("p", {}, backend="b")
    store.add_record(run, "s0", {"g": np.ones(2)}, chip_state=("chip", b"old"))
    real = store._conn
    store._conn = _FailOnChipState(real)
    try:
        with pytest.raises(sqlite3.OperationalError, match="simulated"):
            store.add_record(run, "s1", {"g": np.zeros(2)}, chip_state=("chip", b"new"))
    finally:
        store._conn = real
    assert store.step_ids(run) == ["s0"] and store.chip_state("chip") == b"old"
    assert _raw(store).execute("SELECT COUNT(*) FROM fields").fetchone() == (1,)
    assert store.add_record(run, "s1", {"g": np.zeros(2)}) == 1  # the store still works


def test_reader_snapshot_never_sees_state_without_its_record(store):
    """In any read snapshot, the chip state names the newest record (one transaction)."""
    run = store.create_run("p", {}, backend="b")
    n, seen, stop = 150, [], threading.Event()

    def read():
        conn = sqlite3.connect(store.path)
        while not stop.is_set():
            conn.execute("BEGIN")
            newest = conn.execute("SELECT MAX(seq) FROM records").fetchone()[0]
            state = conn.execute("SELECT blob FROM chip_state").fetchone()
            conn.execute("COMMIT")
            seen.append((newest, state and state[0]))
        conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(n):
            store.add_record(run, f"s{i}", {"g": np.full(64, i)}, chip_state=("k", f"{i}".encode()))
    finally:
        stop.set()
        reader.join()
    assert seen, "the reader never ran"
    assert all((s is None) if q is None else s == f"{q}".encode() for q, s in seen)


# --- SQLite: WAL, integrity, threads, schema, bad files ---------------------


def test_wal_mode_integrity_and_schema_version(store):
    run = store.create_run("p", {}, backend="b")
    store.add_record(run, "s", {"g": np.ones((3, 3))})
    conn = _raw(store)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    assert store._conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert store._conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL


def test_no_blob_needs_pickle(store):
    run = store.create_run("p", {}, backend="b")
    store.add_record(run, "a", {"g": np.eye(3, dtype=np.float32), "m": np.ones(2, bool)})
    store.add_record(run, "b", {"s": np.array(["x", "yz"]), "d": {"k": [1]}, "v": 2.0})
    rows = _raw(store).execute("SELECT kind, value FROM fields").fetchall()
    assert sorted(k for k, _ in rows) == ["json", "json", "npy", "npy", "npy"]
    for kind, value in rows:
        if kind == "npy":
            np.load(io.BytesIO(value), allow_pickle=False)
        else:
            json.loads(value)


def test_reader_in_another_thread_sees_committed_records(store):
    run = store.create_run("p", {}, backend="b")
    got, errors = [], []
    written = [threading.Event() for _ in range(3)]
    checked = [threading.Event() for _ in range(3)]

    def read():
        try:
            with RunStore(store.path) as reader:
                for i in range(3):
                    written[i].wait(10)
                    got.append((reader.step_ids(run), reader.arrays(run, "g")[:, 0].tolist()))
                    checked[i].set()
        except Exception as exc:  # reported below, in the test thread
            errors.append(exc)
            for ev in checked:
                ev.set()

    thread = threading.Thread(target=read)
    thread.start()
    for i in range(3):
        store.add_record(run, f"s{i}", {"g": np.full(4, float(i))})
        written[i].set()
        checked[i].wait(10)
    thread.join(10)
    assert errors == []
    assert got == [(["s0"], [0.0]), (["s0", "s1"], [0.0, 1.0]), (["s0", "s1", "s2"], [0, 1, 2])]


def test_store_shared_between_threads(store):
    runs = [store.create_run("p", {}, backend="b") for _ in range(4)]

    def write(run):
        for i in range(20):
            store.add_record(run, f"s{i}", {"g": np.full(8, i)})

    threads = [threading.Thread(target=write, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for run in runs:
        assert np.array_equal(store.arrays(run, "g")[:, 0], np.arange(20))


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    RunStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ConfigError, match="schema version 99, newer than the 1.*upgrade"):
        RunStore(path)


def test_files_that_are_not_run_stores(tmp_path):
    h5 = tmp_path / "data.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(600))
    with pytest.raises(ConfigError, match=r"data.h5' is not an xbarlab run store.*\\x89HDF"):
        RunStore(h5)
    assert h5.read_bytes()[:4] == b"\x89HDF"  # left alone
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="SQLite database but not an xbarlab run store"):
        RunStore(other)
    with pytest.raises(ConfigError, match="is a directory"):
        RunStore(tmp_path)


def test_reopen_keeps_everything(tmp_path):
    path = tmp_path / "deep" / "dir" / "s.sqlite"
    with RunStore(path) as s:
        run = s.create_run("p", {"a": 1}, backend="b")
        s.add_record(run, "s", {"g": np.arange(3)}, chip_state=("k", b"z"))
    with RunStore(str(path)) as s:
        assert s.run(run).parameters == {"a": 1} and s.chip_state("k") == b"z"
        assert np.array_equal(s.record(run, "s")["g"], [0, 1, 2])


# --- HDF5 export --------------------------------------------------------------


def test_export_hdf5_round_trips_arrays_and_metadata(store, tmp_path):
    run = store.create_run("drift", {"n": 2}, backend="emu", chip_info={"rows": 2}, seed=5)
    g = np.array([[1e-6, 2e-6], [3e-6, np.nan]], dtype=np.float32)
    scalars = {"t_s": 25.0, "n": 3, "tag": "a", "ok": True}
    labels = np.array(["p", "q"])
    store.add_record(run, "read/0", {"g": g, "mask": g > 1e-6, "fit": {"nu": 0.05}, **scalars})
    store.add_record(run, "read-1", {"g": 2 * g, "labels": labels})
    store.set_status(run, "completed", summary={"nu_mean": 0.05})
    out = export_hdf5(store, run[:12], tmp_path / "out.h5")
    assert out == tmp_path / "out.h5"
    info = store.run(run).to_dict()
    with h5py.File(out, "r") as f:
        root = dict(f.attrs)
        for key in ("parameters", "chip_info", "summary"):
            root[key] = json.loads(root[key])
        assert root == {k: v for k, v in info.items() if v is not None}
        assert list(f["records"]) == ["00000_read_0", "00001_read-1"]
        r0 = f["records/00000_read_0"]
        assert dict(r0.attrs) == {
            "seq": 0, "step_id": "read/0", "time": store.records(run)[0].time,
            "fit": '{"nu": 0.05}', **scalars,
        }  # fmt: skip
        assert sorted(r0) == ["g", "mask"]
        assert _same_bits(r0["g"][()], g) and _same_bits(r0["mask"][()], g > 1e-6)
        r1 = f["records/00001_read-1"]
        assert _same_bits(r1["g"][()], 2 * g)
        assert [s.decode() for s in r1["labels"][()]] == ["p", "q"]
        assert "children" not in f
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "runs"]  # no temp file left


def test_export_hdf5_campaign_children(store, tmp_path):
    camp = store.create_run("campaign", {}, backend="emu")
    kids = [store.create_run("drift", {"i": i}, backend="emu", parent=camp) for i in range(2)]
    for i, kid in enumerate(kids):
        store.add_record(kid, "s", {"g": np.full(3, i, np.float32)})
    path = export_hdf5(store, camp, tmp_path / "camp.h5")
    with h5py.File(path, "r") as f:
        assert list(f["records"]) == []
        assert sorted(f["children"]) == sorted(kids)
        for i, kid in enumerate(kids):
            child = f["children"][kid]
            assert child.attrs["parent"] == camp
            assert json.loads(child.attrs["parameters"]) == {"i": i}
            assert np.array_equal(child["records/00000_s/g"][()], np.full(3, i, np.float32))


def test_failed_export_leaves_no_file(store, tmp_path, monkeypatch):
    import xbarlab.hdf5_export as hx

    run = store.create_run("p", {}, backend="b")
    store.add_record(run, "s", {"g": np.ones(3)})
    target = tmp_path / "out.h5"
    target.write_bytes(b"previous export")

    def boom(*_):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(hx, "_write_array", boom)
    with pytest.raises(OSError, match="simulated"):
        export_hdf5(store, run, target)
    assert target.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "runs"]


# --- crash safety -------------------------------------------------------------

_WRITER = """
import sys
import numpy as np
from xbarlab.store import RunStore
store = RunStore(sys.argv[1])
run = store.create_run("crash", {}, backend="test")
print(run, flush=True)
for i in range(100000):
    g = np.full((64, 64), i, dtype=np.float32)
    store.add_record(run, f"s{i}", {"g": g, "i": i}, chip_state=("chip", b"%d" % i))
"""


def test_sigkill_mid_write_leaves_a_readable_store(tmp_path):
    path = tmp_path / "crash.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_WRITER), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        run = proc.stdout.readline().strip()
        assert run, "the writer did not start"
        with RunStore(path) as reader:  # a second process reading while the first writes
            deadline = time.monotonic() + 20
            while reader.run(run).n_records < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
    finally:
        proc.kill()
        proc.stdout.close()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    with RunStore(path) as store:
        recs = store.records(run)
        assert len(recs) >= 20
        assert [r.step_id for r in recs] == [f"s{i}" for i in range(len(recs))]
        for i, rec in enumerate(recs):
            assert rec.data["i"] == i
            assert _same_bits(rec.data["g"], np.full((64, 64), i, np.float32))
        assert store.chip_state("chip") == b"%d" % (len(recs) - 1)
        assert store.add_record(run, "after", {"x": 1}) == len(recs)
