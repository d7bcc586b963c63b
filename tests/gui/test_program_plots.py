"""Level-capacity and program-report views, fed with real records of small emulated runs."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.events import EventBus, Record
from xbarlab.gui.plots import PLOT_REGISTRY, make_live_plot, plot_for_run
from xbarlab.gui.program_plots import LevelCapacityPlot, ProgramReportPlot
from xbarlab.procedures.program_report import DEFECT_CODES
from xbarlab.procedures.registry import PROCEDURES
from xbarlab.procedures.runner import Runner
from xbarlab.store import RunStore

SPEC = "emulator:pcm?rows=16&cols=16&seed=1&stuck_set_fraction=0.02&stuck_reset_fraction=0.02"


def _run(store, name, values):
    bus = EventBus()
    records: list[Record] = []
    bus.subscribe(records.append, Record)
    with open_crossbar(SPEC) as xbar:
        outcome = Runner(store, bus).run(PROCEDURES[name].from_values(values), xbar, backend=SPEC)
    assert outcome.status == "completed"
    return outcome, records


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("prog") / "runs.sqlite"
    with RunStore(path) as store:
        cap = _run(store, "level-capacity", {"levels": "2,4,8", "read_after": 100.0})
        prog, _ = _run(store, "program-array", {"algorithm": "ispp"})
        values = {"run": prog.run_id, "store": str(path), "png": "none"}
        rep = _run(store, "program-report", values)
        yield {"store": store, "capacity": cap, "report": rep}


def test_views_are_registered():
    assert PLOT_REGISTRY["level-capacity"] is LevelCapacityPlot
    assert PLOT_REGISTRY["program-report"] is ProgramReportPlot


def test_level_capacity_plot_shows_ber_per_l_and_the_threshold(qtbot, runs):
    outcome, records = runs["capacity"]
    plot = make_live_plot("level-capacity")
    qtbot.addWidget(plot)
    for event in records:
        plot.on_record(event.step_id, event.data)
    by_l = outcome.summary["by_levels"]
    assert list(plot.ber.x) == [2, 4, 8]
    expected = [max(r["ber"], 0.5 / 256) for r in by_l]
    np.testing.assert_allclose(plot.ber.y, expected)
    assert plot.threshold.getData()[1] is not None
    np.testing.assert_allclose(10 ** plot.threshold.getData()[1], [0.01, 0.01])
    assert len(plot.level_curves) == 8  # one histogram per level of the latest L
    assert plot.latest_levels == 8
    # BER grows with the number of levels on this noisy chip after 100 s
    assert by_l[0]["ber"] <= by_l[2]["ber"] and by_l[2]["ber"] > 0


def test_report_plot_draws_the_stored_report(qtbot, runs):
    outcome, _ = runs["report"]
    plot = plot_for_run(runs["store"], outcome.run_id)
    qtbot.addWidget(plot)
    assert isinstance(plot, ProgramReportPlot)
    rep = plot.report
    assert rep["defects"] == outcome.summary["defects"]
    assert rep["defect_map"].shape == (16, 16)
    for name, code in DEFECT_CODES.items():
        assert np.count_nonzero(rep["defect_map"] == code) == rep["defects"][name]
    assert rep["defects"]["stuck_set"] + rep["defects"]["stuck_reset"] > 0  # 4% stuck
    assert len(plot.graphics.ci.items) >= 4  # the four panels
    image = plot.grab().toImage()
    assert image.width() > 0 and image.height() > 0
    plot.clear()
    assert plot.report is None and not plot.graphics.ci.items
