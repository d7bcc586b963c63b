"""Crash safety: a campaign killed with SIGKILL at 20 seeded random moments loses nothing.

A subprocess (the ``xbarlab`` CLI) runs a multi-step campaign on an emulated chip and
is killed; then ``xbarlab resume`` continues it and is killed again, until 20 kills
have landed (a kill-resume-kill chain; if a process finishes before its kill lands,
the kill is retried on a new chain with a fresh store). The moments are seeded: 4 fall
at a random time of start-up (imports, opening the chip, restoring its state), 16 at
a random delay of up to a few ms after a randomly drawn record has been committed,
spread over the whole campaign (about 130 records). After every kill:

- ``PRAGMA integrity_check`` is ok;
- every stored record loads (arrays with ``allow_pickle=False``), every record a
  reader saw while polling the store during the run is still there and equal, and
  every stored record equals the same step's record of an uninterrupted reference
  run (same campaign, same seed: the emulator's RNG state travels with its state).

When a chain completes, the campaign's status is "completed", its records equal the
reference run's, and the chip state kept in the store, loaded into a fresh chip,
equals the reference run's final chip, per-device pulse counters first: no step's
pulses were applied twice (nor lost). About 30 s on 2 cores (each process starts in
about 1-2 s with numba's cache); ``-s`` prints the kill moments.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.store import RunStore

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")

SPEC = "emulator:pcm?rows=32&cols=32&seed=5"
N_KILLS = 20
KILL_SEED = 20261125
#: no single CLI process may take longer than this (s): a hang fails the test
PROCESS_TIMEOUT_S = 60.0
POLL_S = 0.01
#: three procedures, two of them swept: about 130 records (each one store transaction
#: with the chip state), about 0.6 s of work after about 2 s of start-up
CAMPAIGN = """\
steps:
  - procedure: program-array
    params: {pattern: levels, n_levels: 4}
  - procedure: pulse-response
    params: {n_pulses: 40, region: "0:16,0:32"}
    sweep: {amplitude: [0.9, 1.1]}
  - procedure: drift
    params: {n_reads: 40, n_levels: 4, duration: 86400}
"""
#: kills at these positions of the sequence land at a random moment of start-up (imports,
#: opening the chip, restoring its state); the others land after a random record
STARTUP_KILLS = (0, 4, 8, 12)
#: upper end (s) of the extra random delay after a progress kill's record appeared:
#: moves the kill through the next step's pulses, reads and commit
STEP_JITTER_S = 0.006
#: progress kills wait for at most the total records minus this many
TAIL_RECORDS = 8


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "xbarlab.cli", *args]


class Watcher:
    """Polls the store from this process while the CLI writes to it: how many records
    are committed, and every record seen (run id, step id) -> data."""

    def __init__(self, path: Path):
        self.path = path
        self.seen: dict[tuple[str, str], dict] = {}
        self.count = 0
        self.error: BaseException | None = None
        self._n_seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        store = None
        try:
            while not self._stop.is_set():
                if store is None and self.path.exists():
                    store = RunStore(self.path)
                if store is not None:
                    self._poll(store)
                self._stop.wait(POLL_S)
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            if store is not None:
                store.close()

    def _poll(self, store: RunStore) -> None:
        runs = store.runs()
        self.count = sum(run.n_records for run in runs)  # first: the kill trigger
        for run in runs:
            known = self._n_seen.get(run.run_id, 0)
            if run.n_records > known:
                for step_id in store.step_ids(run.run_id)[known:]:
                    self.seen[(run.run_id, step_id)] = store.record(run.run_id, step_id)
                self._n_seen[run.run_id] = run.n_records


def run_cli(args: list[str], path: Path, kill_at=None) -> tuple[int, Watcher, float, float]:
    """Run the CLI on store ``path``; kill it with SIGKILL when ``kill_at(t, count)`` says
    so (t: s since start, count: committed records). Return code, the watcher, the
    time to the first new record and the total time (s)."""
    watcher = Watcher(path)
    n0 = watcher.count
    t0, t_first = time.monotonic(), None
    with (path.parent / "stderr.txt").open("ab") as err:
        proc = subprocess.Popen(cli(*args, "--store", str(path), "--json"), stdout=err, stderr=err)
        try:
            while proc.poll() is None:
                t = time.monotonic() - t0
                assert t < PROCESS_TIMEOUT_S, f"{args} hangs"
                if t_first is None and watcher.count > n0:
                    t_first = t
                if kill_at is not None and kill_at(t, watcher.count):
                    proc.send_signal(signal.SIGKILL)
                time.sleep(POLL_S / 4)
        finally:
            if proc.poll() is None:
                proc.kill()
            rc = proc.wait()
    t_end = time.monotonic() - t0
    watcher.stop()
    return rc, watcher, t_first if t_first is not None else t_end, t_end


def n_records(path: Path) -> int:
    if not path.exists():
        return 0
    with RunStore(path) as store:
        return sum(run.n_records for run in store.runs())


def top_runs(path: Path) -> list:
    with RunStore(path) as store:
        return store.runs(top_level=True)


def snapshot(path: Path) -> dict:
    """What the store holds: the campaign's records, each child's records (by position
    in the campaign, from its ``start-NNN`` record), the chip state and where it was saved."""
    with RunStore(path) as store:
        (camp,) = store.runs(top_level=True)
        own = {r.step_id: r.data for r in store.records(camp.run_id)}
        children = {}
        for step_id, data in own.items():
            if step_id.startswith("start-"):
                children[int(step_id[6:])] = [
                    (r.step_id, r.data) for r in store.records(data["run_id"])
                ]
        blob = store.chip_state(camp.run_id)
        referenced = {d["run_id"] for k, d in own.items() if k.startswith("start-")}
        orphans = [r for r in store.runs(parent=camp.run_id) if r.run_id not in referenced]
    with closing(sqlite3.connect(path)) as conn:
        saved_at = conn.execute(
            "SELECT run_id, step_id FROM chip_state WHERE key = ?", (camp.run_id,)
        ).fetchone()
    return {
        "campaign": camp,
        "own": {k: without_run_ids(v) for k, v in own.items()},
        "own_raw": own,
        "children": children,
        "child_ids": {int(k[6:]): v["run_id"] for k, v in own.items() if k.startswith("start-")},
        "blob": blob,
        "saved_at": saved_at,
        "orphans": orphans,
    }


def without_run_ids(value):
    """Record data with run ids (which differ between runs) left out."""
    if isinstance(value, dict):
        return {
            k: without_run_ids(v) for k, v in value.items() if k not in ("run_id", "stopped_at")
        }
    if isinstance(value, list):
        return [without_run_ids(v) for v in value]
    return value


def assert_equal_data(a, b, where: str) -> None:
    """Exact equality of record data: arrays element by element (NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), where
        for k in a:
            assert_equal_data(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal_data(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def chip_from(blob: bytes):
    xbar = open_crossbar(SPEC)
    xbar.load_state(blob)
    return xbar


def check_store(path: Path, watcher: Watcher, ref: dict, what: str) -> dict | None:
    """Every check after a kill; the store's snapshot, or None if no campaign was created."""
    if not path.exists():  # killed before the store was created
        assert not watcher.seen, what
        return None
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], what
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        if "fields" in tables:  # else killed before the schema was committed
            for (value,) in conn.execute("SELECT value FROM fields WHERE kind = 'npy'"):
                np.load(io.BytesIO(value), allow_pickle=False)
    if not top_runs(path):
        assert not watcher.seen, what
        return None
    snap = snapshot(path)
    stored = {}
    for i, records in snap["children"].items():
        stored.update({(snap["child_ids"][i], s): d for s, d in records})
        ref_records = ref["children"][i]
        assert [s for s, _ in records] == [s for s, _ in ref_records[: len(records)]], what
        for (s, d), (_, d_ref) in zip(records, ref_records, strict=False):
            assert_equal_data(d, d_ref, f"{what}: child {i} step {s}")
    cid = snap["campaign"].run_id
    for step_id, data in snap["own"].items():
        stored[(cid, step_id)] = snap["own_raw"][step_id]
        assert_equal_data(data, ref["own"][step_id], f"{what}: campaign step {step_id}")
    for key, data in watcher.seen.items():
        assert key in stored, f"{what}: record {key} seen during the run is gone"
        assert_equal_data(data, stored[key], f"{what}: seen record {key}")
    # a child created but killed before the campaign recorded it: never ran a step
    assert all(r.n_records == 0 for r in snap["orphans"]), what
    if snap["blob"] is not None:
        chip_from(snap["blob"])  # loads into a fresh chip of the spec
        run_id, step_id = snap["saved_at"]
        last = max((i, n) for i, recs in snap["children"].items() for n in range(len(recs)))
        assert (snap["child_ids"][last[0]], snap["children"][last[0]][last[1]][0]) == (
            run_id,
            step_id,
        ), f"{what}: chip state not saved with the last step"
    return snap


def check_completed(path: Path, watcher: Watcher, ref: dict, ref_chip, what: str) -> None:
    """The campaign completed with the reference's records and the reference's final chip."""
    final = check_store(path, watcher, ref, what)
    assert final["campaign"].status == "completed", what
    assert_equal_data(final["own"], ref["own"], f"{what}: campaign records")
    for i, records in ref["children"].items():
        assert [s for s, _ in final["children"][i]] == [s for s, _ in records], what
    chip = chip_from(final["blob"]).chip
    np.testing.assert_array_equal(chip.pulse_count, ref_chip.pulse_count, err_msg=what)
    for name, a in ref_chip.state_arrays().items():
        np.testing.assert_array_equal(chip.state_arrays()[name], a, err_msg=f"{what}: {name}")
    assert chip.clock.now() == ref_chip.clock.now(), what


def test_sigkill_at_random_moments_loses_nothing_and_repeats_no_pulse(tmp_path):
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN)
    start = ["campaign", str(tmp_path / "campaign.yaml"), "--backend", SPEC]
    ref_path = tmp_path / "reference" / "runs.sqlite"
    ref_path.parent.mkdir()
    rc, _, t_ready, t_total = run_cli(start, ref_path)
    assert rc == 0, (ref_path.parent / "stderr.txt").read_text()[-2000:]
    ref = snapshot(ref_path)
    assert ref["campaign"].status == "completed"
    n_total = sum(len(r) for r in ref["children"].values()) + len(ref["own"])
    ref_chip = chip_from(ref["blob"]).chip

    rng = np.random.default_rng(KILL_SEED)
    targets = np.sort(rng.choice(np.arange(1, n_total - TAIL_RECORDS), N_KILLS, replace=False))
    jitter = rng.uniform(0, STEP_JITTER_S, N_KILLS)
    startup = rng.uniform(0.2, 0.9, N_KILLS) * t_ready
    chains, landed, k = 0, [], 0
    path = tmp_path / "chain0" / "runs.sqlite"
    while k < N_KILLS:
        camp = top_runs(path) if path.exists() else []
        args = ["resume", camp[0].run_id] if camp else start
        target = max(targets[k], n_records(path) + 1)
        seen_at = []

        def kill_at(t, count, k=k, target=target, seen_at=seen_at):
            if k in STARTUP_KILLS:
                return t >= startup[k]
            if count >= target and not seen_at:
                seen_at.append(t)
            return bool(seen_at) and t >= seen_at[0] + jitter[k]

        path.parent.mkdir(exist_ok=True)
        rc, watcher, _, t_end = run_cli(args, path, kill_at)
        what = f"kill {k} ({'start-up' if k in STARTUP_KILLS else f'after record {target}'})"
        if rc == 0:  # the chain's campaign completed before the kill: retry on a new chain
            check_completed(path, watcher, ref, ref_chip, f"{what}, chain {chains} completed")
            chains += 1
            assert chains <= 3, f"{what}: the process keeps ending before its kill"
            path = tmp_path / f"chain{chains}" / "runs.sqlite"
            continue
        assert rc == -signal.SIGKILL, f"{what}: exit status {rc}"
        check_store(path, watcher, ref, what)
        landed.append((round(t_end, 2), n_records(path)))
        k += 1

    camp = top_runs(path)
    rc, watcher, _, _ = run_cli(["resume", camp[0].run_id], path)
    assert rc == 0, (path.parent / "stderr.txt").read_text()[-2000:]
    check_completed(path, watcher, ref, ref_chip, "final resume")
    # the kills were spread over the campaign, not bunched at start-up
    assert len({n for _, n in landed}) >= N_KILLS // 2, landed
    print(
        f"\nreference {t_total:.2f} s (first record at {t_ready:.2f} s), {n_total} records; "
        f"{chains + 1} chain(s); kills (s after start, records then stored): {landed}"
    )
