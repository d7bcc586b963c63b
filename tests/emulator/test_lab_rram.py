"""The emulated lab serving an RRAM chip: the board's HELLO describes it as the in-process
``emulator:rram`` backend does, PULSE polarity reaches the chip (SET raises, gradual
RESET lowers G, bit for bit as the in-process chip of the same seed), board-side
write-verify converges with both polarities, and on the bench the generator's pulse
polarity (negative levels, inverted output, or row and column swapped on the matrix)
reaches the chip."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import yaml

from xbarlab.chipdrivers.factory import open_crossbar
from xbarlab.emulator import RRAMArray
from xbarlab.emulator.lab import EmulatedLab
from xbarlab.emulator.lab_instruments import Lab
from xbarlab.emulator.rram_params import load_preset
from xbarlab.errors import ConfigError, SpecError

SHAPE = (6, 5)
SEED = 7
TWIN = f"emulator:rram?rows={SHAPE[0]}&cols={SHAPE[1]}&seed={SEED}&pristine=0"


@pytest.fixture
def lab():
    """A served RRAM lab (formed chip), all threads joined afterwards."""
    before = set(threading.enumerate())
    with EmulatedLab(*SHAPE, seed=SEED, technology="rram", params={"pristine": 0}) as lab:
        yield lab
    assert set(threading.enumerate()) <= before


@pytest.fixture
def board(lab):
    xbar = open_crossbar(f"board:{lab.board_url}?timeout=5&retries=3")
    try:
        yield xbar
    finally:
        xbar.close()


def test_board_hello_describes_the_rram_chip_as_the_emulator_backend_does(lab, board):
    a, b = board.info, open_crossbar(TWIN).info
    assert a.technology == b.technology == "rram"
    assert "unipolar" not in a.capabilities
    assert a.capabilities == b.capabilities - {"state"}
    for name in ("rows", "cols", "g_min", "g_max", "limits", "v_read", "set_pulse", "mvm_shape"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.set_amplitude_range == b.set_amplitude_range
    assert (a.reset_pulse.amplitude, a.reset_pulse.width) == (
        b.reset_pulse.amplitude,
        b.reset_pulse.width,
    )
    assert a.limits.max_voltage == 4.0  # the RRAM chip's forming limit, not the generic 2.5 V
    assert a.periphery["seed"] == SEED
    assert lab.describe()["technology"] == "rram"


def test_board_pulses_with_polarity_equal_the_in_process_chip(lab, board):
    twin = open_crossbar(TWIN)
    mask = np.random.default_rng(1).random(SHAPE) < 0.5
    x = np.random.default_rng(2).uniform(0, 0.2, (3, SHAPE[0])).astype(np.float32)
    got = []
    for xbar in (board, twin):
        w = xbar.info.set_pulse.width
        g0 = xbar.read()
        xbar.pulse(mask, polarity=1, amplitude=xbar.info.set_pulse.amplitude, width=w, count=3)
        g1 = xbar.read()
        xbar.pulse(mask, polarity=-1, amplitude=1.2, width=w, count=3)  # gradual RESET
        g2 = xbar.read(mask, v_read=0.1)
        got.append((g0, g1, g2, xbar.mvm(x), xbar.mvm(x[:, :5], transpose=True)))
    for a, b in zip(*got, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(lab.chip.pulse_count, twin.chip.pulse_count)
    np.testing.assert_array_equal(lab.chip.g_prog, twin.chip.g_prog)
    g0, g1, g2 = got[0][:3]
    set_gain = (g1 - g0)[mask]
    assert np.all(set_gain > 2e-7)  # three SET pulses: 0.6 uS each at the reference height
    assert np.all(g2 < g1[mask] - 1e-7)  # three gradual RESET pulses lower every one
    assert np.all(np.abs(g1 - g0)[~mask] < 2e-7)  # unselected: read noise only (1 %)


def test_board_write_verify_reaches_targets_with_both_polarities(lab, board):
    targets = np.linspace(4e-6, 1.6e-5, lab.chip.size).astype(np.float32).reshape(SHAPE)
    board.pulse(None, polarity=1, amplitude=1.1, width=1e-7, count=4)  # most start above
    start = board.read()
    reply = board.program(targets, tolerance=5e-7, max_iterations=60)
    assert reply.converged.all() and reply.iterations <= 20  # 11 for this seed
    assert np.all(np.abs(reply.g_final - targets.ravel()) <= 5e-7)
    assert (start > targets + 5e-7).sum() > 5 and (start < targets - 5e-7).sum() > 5
    assert lab.chip.pulse_count.sum() == reply.pulses.sum() + 4 * lab.chip.size


def test_station_file_describes_the_rram_chip(lab):
    with open(lab.station_path, encoding="utf-8") as f:
        chip = yaml.safe_load(f)["chip"]
    info = open_crossbar(TWIN).info
    assert chip["technology"] == "rram"
    assert chip["g_min"] == info.g_min and chip["g_max"] == info.g_max
    assert chip["set_pulse"] == {"amplitude": 1.0, "width": 1e-7}
    assert chip["reset_pulse"]["amplitude"] == info.reset_pulse.amplitude
    assert chip["set_amplitude_range"] == list(info.set_amplitude_range)


# -- the bench: polarity from the generator's levels and the matrix's routing --------
def _chip() -> RRAMArray:
    return RRAMArray(8, 8, load_preset("default").with_overrides(pristine=False), seed=SEED)


def _run(bench: Lab, name: str, *lines: str) -> list[str]:
    return [out for line in lines for out in bench.instruments[name].execute(line)]


ARM = ["FUNC PULS", "OUTP1:LOAD INF", "VOLT:LOW 0", "VOLT:HIGH 1.0", "FUNC:PULS:WIDT 100ns"]
ARM += ["BURS:MODE TRIG", "BURS:NCYC 3", "BURS:STAT ON", "TRIG:SOUR BUS", "OUTP ON"]


def test_bench_generator_polarity_reaches_the_rram_chip():
    bench, twin = Lab(_chip()), _chip()
    flat = np.array([3 * 8 + 0, 3 * 8 + 1])  # array row 3, columns 0 and 1
    width = np.array([100e-9])
    g0 = twin.g_prog[flat].copy()

    # row 3 (matrix column 4) on the pulse bus, columns 0, 1 (9, 10) on ground: SET
    _run(bench, "keithley707b", 'channel.close("1B04,1C09:1C10")')
    _run(bench, "keysight33500b", *ARM, "*TRG")
    twin.pulse(flat, np.array([1.0]), width, 3, polarity=1)
    np.testing.assert_array_equal(bench.bench.chip.g_prog, twin.g_prog)
    g1 = twin.g_prog[flat].copy()
    assert np.all(g1 > g0 + 1e-7)

    # a negative pulse from 0 V: HIGH 0, LOW -1.2, inverted output: RESET
    _run(bench, "keysight33500b", "VOLT:LOW -1.2", "VOLT:HIGH 0", "OUTP:POL INV", "*TRG")
    twin.pulse(flat, np.array([-1.2]), width, 3, polarity=-1)
    np.testing.assert_array_equal(bench.bench.chip.g_prog, twin.g_prog)
    g2 = twin.g_prog[flat].copy()
    assert np.all(g2 < g1 - 1e-7)

    # a positive pulse with the lines swapped (columns on the pulse bus, row grounded): RESET
    _run(bench, "keithley707b", 'channel.exclusiveclose("1B09:1B10,1C04")')
    _run(bench, "keysight33500b", "OUTP:POL NORM", "VOLT:HIGH 1.2", "VOLT:LOW 0", "*TRG")
    twin.pulse(flat, np.array([1.2]), width, 3, polarity=-1)
    np.testing.assert_array_equal(bench.bench.chip.g_prog, twin.g_prog)
    assert np.all(twin.g_prog[flat] < g2 - 1e-7)
    assert _run(bench, "keysight33500b", "OUTP:POL?") == ["NORM"]
    assert _run(bench, "keysight33500b", "SYST:ERR?") == ['0,"No error"']
    counts = np.zeros(64, dtype=np.uint32)
    counts[flat] = 9
    np.testing.assert_array_equal(bench.bench.chip.pulse_count, counts)


def test_bench_smu_reads_devices_wired_either_way_round():
    bench, twin = Lab(_chip()), _chip()
    # column 2 (matrix column 11) on the SMU bus, rows 1 and 4 (2, 5) on ground
    _run(bench, "keithley707b", 'channel.close("1A11,1C02,1C05")')
    _run(bench, "keithley2450", ":SOUR:FUNC VOLT", ":SENS:FUNC 'CURR'", ":SOUR:VOLT:ILIM 1e-3")
    _run(bench, "keithley2450", ":SOUR:VOLT 0.2", ":OUTP ON")
    reading = float(_run(bench, "keithley2450", ":READ?")[0])
    expected = 0.2 * float(twin.read(np.array([1 * 8 + 2, 4 * 8 + 2])).sum(dtype=np.float64))
    assert reading == pytest.approx(expected, rel=1e-6) and reading > 0


# -- configuration errors --------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"technology": "mram"}, ["unknown lab technology 'mram'", "pcm, rram"]),
        ({"technology": "rram", "params": {"no_such": 1}}, ["no_such", "valid:"]),
        ({"technology": "rram", "params": {"pristine": "maybe"}}, ["pristine", "1/0"]),
        ({"technology": "rram", "params": {"c2c": "x"}}, ["c2c", "a number"]),
    ],
)
def test_bad_lab_configuration_names_what_is_wrong(kwargs, words):
    with pytest.raises(ConfigError) as err:
        EmulatedLab(2, 2, board=False, bench=False, **kwargs)
    for word in words:
        assert word in str(err.value)


def test_rram_limits_too_low_for_its_reset_pulse_are_refused():
    from xbarlab.limits import SafetyLimits

    with pytest.raises(SpecError, match="full RESET pulse needs 1.63 V"):
        EmulatedLab(2, 2, technology="rram", bench=False, limits=SafetyLimits(max_voltage=1.5))


def test_emulate_serve_technology_rram_serves_a_pristine_rram_board():
    """``xbarlab emulate serve --board --technology rram`` in a subprocess."""
    main = "import sys; from xbarlab.cli import main; sys.exit(main())"
    args = ["emulate", "serve", "--board", "--technology", "rram", "--rows", "3", "--cols", "4"]
    proc = subprocess.Popen(
        [sys.executable, "-c", main, *args, "--seed", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=60), "no JSON line within 60 s"
        info = json.loads(proc.stdout.readline())
        assert info["technology"] == "rram" and info["station"] is None
        xbar = open_crossbar(f"board:{info['board']}?timeout=5&retries=3")
        try:
            assert xbar.info.technology == "rram" and "unipolar" not in xbar.info.capabilities
            g = xbar.read()
        finally:
            xbar.close()
        twin = open_crossbar("emulator:rram?rows=3&cols=4&seed=2")  # pristine, as served
        np.testing.assert_array_equal(g, twin.read())
        assert np.all(g < twin.info.g_min)  # unformed devices sit far below the window
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == "" and "Traceback" not in err


def test_served_bench_sets_and_resets_an_rram_device_with_the_stock_drivers(lab):
    """Over the lab's sockets, with the drivers a bench backend uses: a positive pulse with
    the row on the pulse bus SETs a device, the same pulse with its lines swapped RESETs it,
    exactly as polarity +1 / -1 pulses on the in-process chip of the same seed (reads
    included: a read takes virtual time, so the twin reads where the SMU does)."""
    from xbarlab.instruments.keithley707b import Keithley707B
    from xbarlab.instruments.keithley2450 import Keithley2450
    from xbarlab.instruments.keysight33500 import Keysight33500B

    twin = open_crossbar(TWIN).chip
    res, rows = lab.instruments, SHAPE[0]
    row, col = 2, 3
    hot_row, cold_col = f"1B{row + 1:02d}", f"1C{rows + col + 1:02d}"  # default layout
    hot_col, cold_row = f"1B{rows + col + 1:02d}", f"1C{row + 1:02d}"
    width, flat = 1e-7, np.array([row * SHAPE[1] + col])
    with (
        Keysight33500B(res["pulse"], max_voltage=4.0) as gen,
        Keithley707B(res["switch"]) as switch,
        Keithley2450(res["smu"], max_voltage=0.3, max_current=1e-3) as smu,
    ):
        readings = []
        for lines, polarity, amp in (([hot_row, cold_col], 1, 1.1), ([hot_col, cold_row], -1, 1.4)):
            switch.exclusive_close(lines)
            gen.configure_pulse(amplitude=amp, width=width, count=2)
            gen.trigger()
            twin.pulse(flat, np.array([amp]), np.array([width]), 2, polarity=polarity)
            np.testing.assert_array_equal(lab.chip.g_prog, twin.g_prog)
            switch.exclusive_close([f"1A{row + 1:02d}", cold_col])
            smu.configure_voltage_source(current_limit=1e-3)
            smu.source_voltage, smu.output_enabled = 0.2, True
            readings.append(smu.measure_current() / 0.2)
            assert readings[-1] == pytest.approx(float(twin.read(flat)[0]), rel=1e-6)
            smu.shutdown()
    g0 = float(open_crossbar(TWIN).chip.g_prog[flat[0]])
    assert readings[0] > g0 + 1e-6 and readings[1] < readings[0] - 1e-6
    assert lab.chip.pulse_count.sum() == 4
