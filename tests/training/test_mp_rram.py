"""Mixed-precision training on the emulated RRAM chip: both pulse polarities, no refresh."""

from __future__ import annotations

import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.chipdrivers.selection import resolve
from xbarlab.training.data import load_digits
from xbarlab.training.mixed_precision import MixedPrecisionTrainer

SPEC = "emulator:rram?rows=64&cols=128&differential=1&pristine=0&seed={}"


def _recording(xbar, log: list):
    """``xbar`` with its pulse calls' polarity and device count appended to ``log``."""
    pulse = xbar.pulse

    def recorded(sel, *, polarity, amplitude, width, count=1):
        log.append((polarity, resolve(sel, xbar.info.shape).size * count))
        pulse(sel, polarity=polarity, amplitude=amplitude, width=width, count=count)

    xbar.pulse = recorded
    return xbar


def test_short_rram_run_uses_both_polarities_and_learns():
    log: list[tuple[int, int]] = []
    arrays = [_recording(open_crossbar(SPEC.format(s)), log) for s in (1, 2)]
    data = load_digits(0)
    with MixedPrecisionTrainer((64, 32, 10), arrays, seed=0) as trainer:
        assert trainer.bipolar and trainer.options["refresh_every"] == 0
        eps_set, eps_reset = trainer.epsilons[0], trainer.describe()["epsilon_reset"][0]
        assert eps_set > 0 and eps_reset > 0
        start = len(log)
        history = trainer.train(data, epochs=4)
    updates = log[start:]
    set_pulses = sum(n for p, n in updates if p == 1)
    reset_pulses = sum(n for p, n in updates if p == -1)
    # pairs start with one device at g_min, so SETs dominate until the devices with
    # more room to fall than to rise take RESETs
    assert set_pulses > 1000 and reset_pulses > 300
    assert sum(h.refreshes for h in history) == 0
    assert history[-1].test_accuracy >= 0.9
    assert history[-1].train_loss < history[0].train_loss


def test_gradual_reset_pulse_comes_from_the_chip_and_can_be_overridden():
    xbar = open_crossbar(SPEC.format(3))
    gradual = xbar.info.details["gradual_reset_pulse"]
    with MixedPrecisionTrainer((64, 8, 10), [xbar, open_crossbar(SPEC.format(4))]) as t:
        assert t.options["reset_amplitude_V"] == gradual["amplitude_V"]
        assert t.characterisation["reset"]["mean_decrement_S"] > 0
    with MixedPrecisionTrainer(
        (64, 8, 10), [open_crossbar(SPEC.format(5)), open_crossbar(SPEC.format(6))],
        reset_amplitude=1.1, refresh_every=5,
    ) as t:  # fmt: skip
        assert t.options["reset_amplitude_V"] == pytest.approx(1.1)
        assert t.options["refresh_every"] == 5
