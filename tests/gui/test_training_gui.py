"""Training from the GUI's launcher: run on the worker thread, live plot per epoch, store."""

import numpy as np
from PyQt5.QtCore import Qt

from xbarlab.events import Record
from xbarlab.gui.app import LAUNCHER
from xbarlab.gui.training_plot import TrainingPlot

SPEC = "emulator:pcm?differential=1&rows=64&cols=64&seed=2"


def test_train_is_listed_next_to_the_procedures(win):
    names = [win.procedure_box.itemText(k) for k in range(win.procedure_box.count())]
    assert names == list(LAUNCHER) and names[-1] == "train" and "program-array" in names
    form = win.show_procedure("train")
    assert list(form.values()) == ["mode", "epochs", "hidden", "seed"]
    form.set_values({"hidden": 0})
    assert not form.run_button.isEnabled() and "hidden" in form.errors()


def test_mixed_precision_from_the_form_plots_each_epoch_and_stores_the_run(win, idle, qtbot, store):
    epochs = []
    win.queue.run_event.connect(
        lambda ev: epochs.append(ev.step_id) if isinstance(ev, Record) else None
    )
    form = win.show_procedure("train")
    form.set_values({"mode": "mixed-precision", "epochs": 2, "hidden": 4, "seed": 1})
    qtbot.mouseClick(form.run_button, Qt.LeftButton)
    idle(win, 120_000)
    (run,) = store.runs()
    assert run.procedure == "train-mixed-precision" and run.status == "completed"
    assert run.backend == SPEC and run.parameters["epochs"] == 2
    assert epochs == ["epoch-0001", "epoch-0002"]  # live, one Record per epoch
    plot = win.live_plot
    assert isinstance(plot, TrainingPlot) and plot is win.plots["train-mixed-precision"]
    stored = [store.record(run.run_id, s) for s in epochs]
    for key in ("train_loss", "test_accuracy", "pulses"):
        np.testing.assert_array_equal(plot.series[key].x, [1, 2])
        np.testing.assert_allclose(plot.series[key].y, [d[key] for d in stored])
    assert run.summary["pulses"] == sum(d["pulses"] for d in stored) > 0
    assert win.progress.value() == 2 == win.progress.maximum()
    assert any(run.run_id in line and "completed" in line for line in win.log.lines())
    assert win.runs.table.rowCount() == 1  # the run browser lists it

    plot.clear()
    win.open_run(run.run_id)  # reopened from the store: same plot, same points
    np.testing.assert_allclose(plot.series["pulses"].y, [d["pulses"] for d in stored])


def test_pause_holds_between_epochs_and_abort_while_paused_adds_none(win, idle, qtbot, store):
    def on_event(ev):
        if isinstance(ev, Record) and ev.step_id == "epoch-0001":
            win.pause_button.click()

    win.queue.run_event.connect(on_event)
    form = win.show_procedure("train")
    form.set_values({"mode": "fp", "epochs": 200, "hidden": 4})
    qtbot.mouseClick(form.run_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: [r.status for r in store.runs()] == ["paused"], timeout=60_000)
    (run,) = store.runs()
    held = len(store.step_ids(run.run_id))  # the worker waits in its checkpoint now
    assert 1 <= held < 200
    qtbot.waitUntil(lambda: "paused" in win.state_label.text(), timeout=10_000)
    assert win.resume_button.isEnabled() and not win.pause_button.isEnabled()
    win.abort_button.click()
    idle(win, 120_000)
    run = store.run(run.run_id)
    assert run.status == "aborted" and run.summary == {"epochs_done": held}
    assert len(store.step_ids(run.run_id)) == held == win.live_plot.series["train_loss"].n


def test_abort_after_an_epoch_keeps_the_epochs_done(win, idle, qtbot, store):
    def on_event(ev):
        if isinstance(ev, Record) and ev.step_id == "epoch-0001":
            win.abort_button.click()

    win.queue.run_event.connect(on_event)
    form = win.show_procedure("train")
    form.set_values({"mode": "fp", "epochs": 200, "hidden": 4})
    qtbot.mouseClick(form.run_button, Qt.LeftButton)
    idle(win, 120_000)
    (run,) = store.runs()
    done = run.summary["epochs_done"]
    assert run.status == "aborted" and 1 <= done < 200
    assert store.step_ids(run.run_id) == [f"epoch-{k:04d}" for k in range(1, done + 1)]
