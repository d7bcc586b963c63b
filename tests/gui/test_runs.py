"""RunBrowser: the store's runs newest first with their status; reopening draws the plot;
a campaign's children follow it with their counts by status."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt5 import QtCore

from xbarlab.chipdrivers import open_crossbar
from xbarlab.gui.plots import IVSweepPlot, plot_for_run
from xbarlab.gui.runs import CHILD_MARK, COLUMNS, STATUS_COLOURS, RunBrowser
from xbarlab.procedures.campaign import Campaign
from xbarlab.procedures.executors import LocalExecutor, failed_result, run_task
from xbarlab.procedures.registry import PROCEDURES
from xbarlab.procedures.runner import RunControl, Runner

SMALL = "emulator:pcm?rows=16&cols=16&seed=1"


def run(store, name, values=None, *, abort=False):
    """Run procedure ``name`` on a fresh 16 x 16 chip (aborted before its first step)."""
    control = RunControl()
    if abort:
        control.abort()
    with open_crossbar(SMALL) as xbar:
        procedure = PROCEDURES[name].from_values(values or {})
        return Runner(store, control=control).run(procedure, xbar, backend=SMALL)


@pytest.fixture
def browser(qtbot, store):
    """A browser over a store holding a completed iv-sweep and an aborted drift run."""
    run(store, "iv-sweep", {"voltages": "0.1,0.2"})
    run(store, "drift", {"n_reads": 3}, abort=True)
    widget = RunBrowser(store)
    qtbot.addWidget(widget)
    return widget


def cell(browser, row, column):
    return browser.table.item(row, COLUMNS.index(column))


def double_click(qtbot, browser, row):
    """A user's double click on a row: press-release, then the double click (Qt's item views
    open only the row the first press went to)."""
    browser.show()
    qtbot.waitExposed(browser)
    viewport = browser.table.viewport()
    pos = browser.table.visualItemRect(browser.table.item(row, 0)).center()
    qtbot.mouseClick(viewport, QtCore.Qt.LeftButton, pos=pos)
    qtbot.mouseDClick(viewport, QtCore.Qt.LeftButton, pos=pos)


def test_lists_the_runs_newest_first_with_their_status(browser, store):
    runs = store.runs()
    assert browser.table.rowCount() == 2
    assert browser.run_ids == [r.run_id for r in runs]
    assert [cell(browser, k, "procedure").text() for k in range(2)] == ["drift", "iv-sweep"]
    assert [cell(browser, k, "status").text() for k in range(2)] == ["aborted", "completed"]
    assert [cell(browser, k, "records").text() for k in range(2)] == ["0", "2"]
    colour = cell(browser, 1, "status").foreground().color().name()
    assert colour == STATUS_COLOURS["completed"]
    assert '"devices":16' in cell(browser, 1, "summary").text()


def test_refresh_shows_new_runs_and_keeps_the_selection(browser, store):
    browser.table.selectRow(1)
    selected = browser.selected_run()
    run(store, "conductance-map", {"repeats": 2})
    assert browser.table.rowCount() == 2  # until refreshed
    browser.refresh()
    assert browser.table.rowCount() == 3
    assert cell(browser, 0, "procedure").text() == "conductance-map"
    assert browser.selected_run() == selected


def test_double_click_opens_a_run_once(qtbot, browser):
    opened = []
    browser.run_opened.connect(opened.append)
    with qtbot.waitSignal(browser.run_opened, timeout=2000):
        double_click(qtbot, browser, 1)
    assert opened == [browser.run_ids[1]]


def test_open_button_opens_the_selected_run_only(qtbot, browser):
    with qtbot.assertNotEmitted(browser.run_opened):
        qtbot.mouseClick(browser.open_button, QtCore.Qt.LeftButton)
    browser.table.selectRow(0)
    with qtbot.waitSignal(browser.run_opened, timeout=2000) as opened:
        qtbot.mouseClick(browser.open_button, QtCore.Qt.LeftButton)
    assert opened.args == [browser.run_ids[0]]


def test_reopening_a_run_draws_its_plot(qtbot, browser, store):
    shown = []

    def show(run_id):
        plot = plot_for_run(store, run_id)
        qtbot.addWidget(plot)
        shown.append(plot)

    browser.run_opened.connect(show)
    with qtbot.waitSignal(browser.run_opened, timeout=2000):
        double_click(qtbot, browser, 1)
    (plot,) = shown
    assert isinstance(plot, IVSweepPlot)
    x, mean = plot.mean.curve.getOriginalDataset()
    np.testing.assert_allclose(x, [0.1, 0.2])
    summary = store.run(browser.run_ids[1]).summary
    np.testing.assert_allclose(mean, summary["mean_current_A"], rtol=1e-6)


def test_failed_run_shows_its_error(qtbot, store):
    run(store, "iv-sweep")
    store.set_status(store.runs()[0].run_id, "failed", error="BackendError: link lost")
    widget = RunBrowser(store)
    qtbot.addWidget(widget)
    assert cell(widget, 0, "status").text() == "failed"
    assert cell(widget, 0, "summary").text() == "BackendError: link lost"


class OneFails(LocalExecutor):
    """Runs fan-out tasks in this process; the task labelled ``label`` fails."""

    def __init__(self, label):
        self.label = label

    def run(self, tasks):
        for task in tasks:
            if task.label == self.label:
                yield task, failed_result(task, "KilledWorker: worker lost")
            else:
                yield task, run_task(task)


def test_campaign_children_follow_their_campaign_with_counts_by_status(qtbot, store):
    run(store, "iv-sweep", {"voltages": "0.1,0.2"})
    doc = {
        "backend": SMALL,
        "steps": [
            {"procedure": "iv-sweep", "params": {"voltages": [0.1]}},
            {
                "procedure": "pulse-response",
                "params": {"n_pulses": 2},
                "backend_sweep": {"seed": [1, 2, 3]},
            },
        ],
    }
    with open_crossbar(SMALL) as xbar:
        out = Campaign(doc).run(
            Runner(store), xbar, backend=SMALL, executor=OneFails("pulse-response[backend.seed=2]")
        )
    assert out.status == "failed"
    widget = RunBrowser(store)
    qtbot.addWidget(widget)
    assert widget.table.rowCount() == 6
    procedures = [cell(widget, k, "procedure").text() for k in range(6)]
    assert procedures == ["campaign"] + [
        CHILD_MARK + p for p in ("iv-sweep", "pulse-response", "pulse-response", "pulse-response")
    ] + ["iv-sweep"]
    assert cell(widget, 0, "children").text() == "4: 3 completed, 1 failed"
    assert cell(widget, 0, "status").text() == "failed"
    assert "1 of 3 tasks of step 2 failed" in cell(widget, 0, "summary").text()
    assert [cell(widget, k, "campaign").text() for k in range(1, 5)] == [out.run_id] * 4
    failed = [k for k in range(1, 5) if cell(widget, k, "status").text() == "failed"]
    assert len(failed) == 1 and cell(widget, failed[0], "summary").text().startswith("KilledWorker")
    widget.show_children.setChecked(False)  # children hidden: top-level runs only
    assert widget.run_ids == [out.run_id, widget.run_ids[1]] and widget.table.rowCount() == 2


def test_a_running_fanout_step_shows_its_tasks_running_and_queued(qtbot, store):
    seen = []

    class Peek(LocalExecutor):
        """Looks at the browser after the first task's result is stored."""

        def run(self, tasks):
            for k, task in enumerate(tasks):
                if k == 1:
                    widget = RunBrowser(store)
                    qtbot.addWidget(widget)
                    seen.append([cell(widget, r, "children").text() for r in range(2)])
                    seen.append(cell(widget, 0, "status").text())
                yield task, run_task(task)

    doc = {
        "backend": SMALL,
        "steps": [{"procedure": "iv-sweep", "backend_sweep": {"seed": [1, 2, 3]}}],
    }
    out = Campaign(doc).run(Runner(store), None, backend=SMALL, executor=Peek())
    assert out.status == "completed"
    assert seen == [["1: 1 completed; tasks of step 1: 1 running, 1 queued", ""], "running"]
    widget = RunBrowser(store)
    qtbot.addWidget(widget)
    assert cell(widget, 0, "children").text() == "3: 3 completed"
