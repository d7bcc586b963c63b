"""The training live plot: registered for training runs, one point per epoch record."""

import numpy as np

from xbarlab.gui.plots import make_live_plot, plot_for_run
from xbarlab.gui.training_plot import TRAINING_RUNS, TrainingPlot
from xbarlab.store import RunStore
from xbarlab.training.runs import run_training


def test_registered_for_every_training_run(qtbot):
    for name in TRAINING_RUNS:
        plot = make_live_plot(name)
        qtbot.addWidget(plot)
        assert isinstance(plot, TrainingPlot)


def test_draws_loss_accuracy_and_pulses_of_a_stored_run(qtbot, tmp_path):
    spec = "emulator:pcm?differential=1&rows=64&cols=64&seed=2"
    with RunStore(tmp_path / "runs.sqlite") as store:
        out = run_training("mixed-precision", spec, epochs=2, hidden=4, store=store)
        plot = plot_for_run(store, out["run_id"])
    qtbot.addWidget(plot)
    assert isinstance(plot, TrainingPlot) and plot.records_seen == 4  # setup, 2 epochs, final
    for key in ("train_loss", "test_accuracy", "pulses"):
        s = plot.series[key]
        np.testing.assert_array_equal(s.x, [1, 2])
        np.testing.assert_allclose(s.y, [h[key] for h in out["history"]])
