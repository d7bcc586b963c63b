"""Mixed-precision training through the board: backend over loopback (issue 5).

Two emulated test boards (one per layer) serve their chips over TCP on 127.0.0.1; the
trainer drives them through BoardCrossbar only. The same run on in-process emulated
chips of the same seeds must give the same pulses and accuracies: the wire changes
nothing.
"""

import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.training.data import Dataset, load_digits
from xbarlab.training.mixed_precision import MixedPrecisionTrainer

SHAPE, SEEDS = (64, 20), (11, 12)


@pytest.fixture(scope="module")
def boards():
    from xbarlab.emulator.lab import EmulatedLab

    labs = [EmulatedLab(*SHAPE, seed=s, bench=False) for s in SEEDS]
    try:
        for lab in labs:
            lab.start()
        yield labs
    finally:
        for lab in labs:
            lab.stop()


def _digits_part() -> Dataset:
    """600 training samples: one epoch over the wire stays a few seconds."""
    d = load_digits(0)
    return Dataset(d.x_train[:600], d.y_train[:600], d.x_test, d.y_test)


def _train(arrays) -> list:
    with MixedPrecisionTrainer((64, 8, 10), arrays, seed=3, refresh_every=5) as mp:
        return mp.train(_digits_part(), 1)


def test_one_epoch_over_the_board_equals_the_in_process_chip(boards):
    arrays = [open_crossbar(f"board:{lab.board_url}") for lab in boards]
    try:
        over_wire = _train(arrays)
    finally:
        for a in arrays:
            a.close()
    assert over_wire[0].pulses > 0 and over_wire[0].test_accuracy > 0.3  # chance: 0.1
    assert sum(int(lab.chip.pulse_count.sum()) for lab in boards) > over_wire[0].pulses
    local = [open_crossbar(f"emulator:pcm?rows={SHAPE[0]}&cols={SHAPE[1]}&seed={s}") for s in SEEDS]
    try:
        in_process = _train(local)
    finally:
        for a in local:
            a.close()
    for a, b in zip(over_wire, in_process, strict=True):
        assert (a.pulses, a.refreshes, a.test_accuracy) == (b.pulses, b.refreshes, b.test_accuracy)
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-6)
