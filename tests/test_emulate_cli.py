"""``xbarlab emulate serve`` in a subprocess: one JSON line, live servers, clean exit on signals."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys

import pytest

from xbarlab import board_protocol as bp
from xbarlab.chipdrivers.station import load_station

_MAIN = "import sys; from xbarlab.cli import main; sys.exit(main())"


def _serve(*args: str) -> tuple[subprocess.Popen, dict]:
    """Start the server and parse its one JSON line (at most 60 s: numba may compile)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _MAIN, "emulate", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=60):
            proc.kill()
            pytest.fail(f"no JSON line within 60 s; stderr: {proc.communicate()[1]}")
    line = proc.stdout.readline()
    if not line:
        pytest.fail(f"server exited ({proc.wait()}): {proc.stderr.read()}")
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"server ignored signal {sig}: {err}")
    return proc.returncode, out, err


def _hello(url: str) -> bp.HelloReply:
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(bp.request_frame(bp.Hello(), 1))
        decoder = bp.FrameDecoder()
        while True:
            frames = decoder.feed(conn.recv(65536))
            if frames:
                return bp.decode_reply(bp.MsgType.HELLO, frames[0])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_board_only_serves_and_exits_cleanly(sig):
    proc, info = _serve("--board", "--rows", "5", "--cols", "7", "--seed", "3")
    try:
        assert info["board"].startswith("socket://127.0.0.1:")
        assert info["instruments"] == {} and info["station"] is None
        hello = _hello(info["board"])
        assert (hello.rows, hello.cols) == (5, 7)
    finally:
        code, out, err = _stop(proc, sig)
    assert code == 0, err
    assert out == "" and "Traceback" not in err


def test_bench_serves_instruments_and_a_station_that_loads(tmp_path):
    station = tmp_path / "station.yaml"
    proc, info = _serve("--bench", "--rows", "3", "--cols", "4", "--station", str(station))
    try:
        assert info["board"] is None
        assert info["station"] == str(station)
        st = load_station(info["station"])
        assert (st.chip.rows, st.chip.cols) == (3, 4)
        assert set(info["instruments"]) == {"smu", "pulse", "switch"}
        for role, resource in info["instruments"].items():
            assert st.instruments[role].resource == resource
            host, port = resource.split("::")[1:3]
            with socket.create_connection((host, int(port)), timeout=10) as conn:
                conn.sendall(b"*IDN?\n" if role != "switch" else b"print(localnode.model)\n")
                assert conn.recv(4096).endswith(b"\n")
    finally:
        code, _, err = _stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert station.exists()  # a given path is the caller's file


def test_default_serves_both_and_removes_its_temporary_station():
    proc, info = _serve()
    try:
        assert info["board"] and info["station"] and len(info["instruments"]) == 3
        assert os.path.exists(info["station"])
    finally:
        code, _, err = _stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert not os.path.exists(info["station"])


def test_bad_options_fail_with_one_line_and_no_server():
    proc = subprocess.run(
        [sys.executable, "-c", _MAIN, "emulate", "serve", "--rows", "60", "--cols", "20"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "rows + cols = 80" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("scheme", ["board", "bench"])
def test_program_array_runs_end_to_end_on_the_served_lab(tmp_path, scheme):
    from click.testing import CliRunner

    from xbarlab.cli import main
    from xbarlab.emulator.lab import EmulatedLab

    with EmulatedLab(3, 4, seed=2, board=scheme == "board", bench=scheme == "bench") as lab:
        spec = f"board:{lab.board_url}" if scheme == "board" else f"bench:{lab.station_path}"
        args = ["run", "program-array", "--backend", spec, "--json"]
        args += ["--store", str(tmp_path / "runs.sqlite"), "-p", "n_levels=3"]
        result = CliRunner().invoke(main, args)
        pulses = int(lab.chip.pulse_count.sum())
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["status"] == "completed", out
    assert pulses > 0
