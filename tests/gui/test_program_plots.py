"""Level-capacity and program-report views, fed with real records of small emulated runs."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.events import EventBus, Record
from xbarlab.gui.plots import PLOT_REGISTRY, make_live_plot, plot_for_run
from xbarlab.gui.program_plots import FormingPlot, LevelCapacityPlot, ProgramReportPlot
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


def test_forming_view_shows_progress_histogram_and_status_map(qapp, tmp_path):
    spec = "emulator:rram?rows=12&cols=10&seed=2"
    bus = EventBus()
    records: list[Record] = []
    bus.subscribe(records.append, Record)
    with RunStore(tmp_path / "runs.sqlite") as store:
        with open_crossbar(spec) as xbar:
            out = Runner(store, bus).run(PROCEDURES["forming"].from_values({}), xbar, backend=spec)
        assert out.status == "completed"
        plot = make_live_plot("forming")
        assert isinstance(plot, FormingPlot) and PLOT_REGISTRY["forming"] is FormingPlot
        for rec in records:
            plot.on_record(rec.step_id, rec.data)
        ramps = [r for r in records if r.step_id.startswith("ramp-")]
        assert plot.unformed.n == len(ramps) == out.summary["ramp_steps"]
        np.testing.assert_allclose(plot.unformed.x, [r.data["v_V"] for r in ramps])
        unformed = plot.unformed.y
        assert unformed[0] == 120 and np.all(np.diff(unformed) <= 0)
        assert plot.image.image.shape == (10, 12)  # (columns, rows)
        for name in ("formed", "unformable", "shorted", "stuck_set"):
            assert plot.counts[name] == out.summary[name]
        _, counts = plot.hist.getData()
        assert counts.sum() == out.summary["formed"] + out.summary["stuck_set"]
        stored = plot_for_run(store, out.run_id)
        assert isinstance(stored, FormingPlot) and stored.counts == plot.counts
