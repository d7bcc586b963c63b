"""IR drop at the chip level: ``Crossbar.mvm`` with ``r_wire > 0`` against the exact nodal solve.

The chip folds the IR drop into an effective conductance (the ladder model of
:mod:`xbarlab.emulator.irdrop`); here the whole path (spec -> PCMArray -> cached array
matrices -> analog MVM) is checked against :func:`nodal_currents` on the chip's own
noise-free conductances. The periphery is ideal and device noise is off, so the only
difference between the chip and the reference is the IR-drop model.

Measured on 64 x 48 (seed 3, 10 SET pulses of 0.6-1.4 V per device, G about 0.05-22 uS,
mean about 10.5 uS, one hour after programming), relative to the nodal currents: the
ideal product ``x @ g`` is off by 7.5-7.8 % at 3 Ohm and 28 % at 12 Ohm, the chip by
1.2e-5 and 4e-4. With the upper half of the rows SET hard and the rest at RESET (the
ladder model's worst case): ``x @ g`` 7.6-13 % and 25-49 %, the chip 3e-5 to 9e-4 and
9e-4 to 1.2e-2. Run with ``-s`` to print the numbers.
"""

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.emulator.irdrop import nodal_currents

ROWS, COLS = 64, 48
#: Ohm per wire segment: IR drop of about 8 % and 28 % of the ideal output on this array
R_WIRES = (3.0, 12.0)
SETTLE_S = 3600.0


def spec(r_wire: float, **extra) -> str:
    params = f"rows={ROWS}&cols={COLS}&seed=3&periphery=ideal&device_noise=0&r_wire={r_wire:g}"
    params += "".join(f"&{k}={v}" for k, v in extra.items())
    return f"emulator:pcm?{params}"


def rel(approx, exact) -> float:
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


def spread(xbar, pattern: str = "random") -> None:
    """SET pulses to a spread of conductances, then let the chip settle for an hour.

    random: per-device amplitudes uniform in 0.6-1.4 V; halves: rows of the upper half
    pulsed hard, the lower half left at RESET (strongly structured, the worst case of
    the ladder model's mean field).
    """
    rng = np.random.default_rng(11)
    if pattern == "random":
        amp = rng.uniform(0.6, 1.4, xbar.info.shape)
        xbar.pulse(None, polarity=1, amplitude=amp, width=50e-9, count=10)
    else:
        top = np.zeros(xbar.info.shape, dtype=bool)
        top[: ROWS // 2] = True
        xbar.pulse(top, polarity=1, amplitude=1.4, width=50e-9, count=20)
    xbar.clock.sleep(SETTLE_S)


def inputs(n: int, seed: int, batch: int = 8) -> np.ndarray:
    """Mixed-sign input voltages within the DAC range (V), float32."""
    return np.random.default_rng(seed).uniform(-0.2, 0.2, (batch, n)).astype(np.float32)


@pytest.mark.parametrize("pattern", ["random", "halves"])
@pytest.mark.parametrize("r_wire", R_WIRES)
@pytest.mark.parametrize("transpose", [False, True], ids=["forward", "transposed"])
def test_chip_mvm_with_ir_drop_matches_the_nodal_solve(r_wire, transpose, pattern):
    with open_crossbar(spec(r_wire)) as xbar:
        spread(xbar, pattern)
        g, _ = xbar.chip.conductance()  # noise-free, drifted: what the MVM uses now
        x = inputs(COLS if transpose else ROWS, seed=int(r_wire) + transpose)
        out = xbar.mvm(x, transpose=transpose)
    exact = nodal_currents(g, x, r_wire, transpose=transpose)
    ideal = x.astype(np.float64) @ (g.T if transpose else g).astype(np.float64)
    err, drop = rel(out, exact), rel(ideal, exact)
    print(f"\n{pattern} r_wire={r_wire} transpose={transpose}: chip {err:.2e}, x@g {drop:.3f}")
    assert 0.02 < drop < 0.6  # the IR drop is a few % to tens of % of the output
    assert err <= 0.10
    assert err <= drop / 4


@pytest.mark.parametrize("transpose", [False, True], ids=["forward", "transposed"])
def test_without_wire_resistance_the_chip_computes_x_at_g(transpose):
    with open_crossbar(spec(0.0)) as xbar:
        spread(xbar)
        g, _ = xbar.chip.conductance()
        x = inputs(COLS if transpose else ROWS, seed=5)
        out = xbar.mvm(x, transpose=transpose)
    assert out.dtype == np.float32
    expected = x @ (g.T if transpose else g)  # float32, as the chip computes it
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6 * scale)
    assert rel(out, nodal_currents(g, x, 0.0, transpose=transpose)) < 1e-6


@pytest.mark.parametrize("transpose", [False, True], ids=["forward", "transposed"])
def test_differential_chip_with_ir_drop_is_the_pairwise_difference(transpose):
    """Forward: output p = I(column 2p) - I(column 2p + 1) of the full resistive network.
    Transposed: input p drives column 2p with +x_p and column 2p + 1 with -x_p."""
    r_wire = 12.0
    with open_crossbar(spec(r_wire, differential=1)) as xbar:
        assert xbar.info.mvm_shape == (ROWS, COLS // 2)
        assert "differential_columns" in xbar.info.capabilities
        spread(xbar)
        g, _ = xbar.chip.conductance()
        if transpose:
            x = inputs(COLS // 2, seed=7)
            drive = np.empty((x.shape[0], COLS), dtype=np.float32)
            drive[:, 0::2], drive[:, 1::2] = x, -x
            exact = nodal_currents(g, drive, r_wire, transpose=True)
            ideal = drive.astype(np.float64) @ g.T.astype(np.float64)
        else:
            x = inputs(ROWS, seed=8)
            cols = nodal_currents(g, x, r_wire)
            exact = cols[:, 0::2] - cols[:, 1::2]
            gd = g[:, 0::2].astype(np.float64) - g[:, 1::2]
            ideal = x.astype(np.float64) @ gd
        out = xbar.mvm(x, transpose=transpose)
    assert out.shape == exact.shape
    err, drop = rel(out, exact), rel(ideal, exact)
    print(f"\ndifferential r_wire={r_wire} transpose={transpose}: chip {err:.2e}, x@g {drop:.3f}")
    assert drop > 0.05
    assert err <= 0.10
    assert err <= drop / 4
