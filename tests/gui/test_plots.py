"""Live plots fed with the real records of small emulated runs, live and from the store."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import ConfigError
from xbarlab.events import EventBus, Record
from xbarlab.gui import plots
from xbarlab.gui.plots import (
    PLOT_REGISTRY,
    ConvergencePlot,
    DriftPlot,
    GenericPlot,
    IVSweepPlot,
    LivePlot,
    PulseResponsePlot,
    Series,
    level_index,
    make_live_plot,
    plot_for_run,
    register_plot,
)
from xbarlab.procedures.drift import level_table
from xbarlab.procedures.registry import PROCEDURES
from xbarlab.procedures.runner import Runner
from xbarlab.store import RunStore

SMALL = "emulator:pcm?rows=16&cols=16&seed=1"
RUNS = {
    "program-array": {},
    "drift": {"n_reads": 6},
    "iv-sweep": {},
    "pulse-response": {"n_pulses": 5},
    "endurance": {"block_cycles": 10, "max_cycles": 50},
}


class Run:
    """One finished emulated run: its outcome, the Record events it emitted, its store."""

    def __init__(self, store, name, values):
        bus = EventBus()
        self.records: list[Record] = []
        bus.subscribe(self.records.append, Record)
        with open_crossbar(SMALL) as xbar:
            procedure = PROCEDURES[name].from_values(values)
            self.outcome = Runner(store, bus).run(procedure, xbar, backend=SMALL)
        self.store, self.run_id, self.summary = store, self.outcome.run_id, self.outcome.summary

    def feed(self, plot: LivePlot) -> LivePlot:
        for event in self.records:
            plot.on_record(event.step_id, event.data)
        return plot


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The RUNS on a 16 x 16 chip, in one store (closed after the module)."""
    with RunStore(tmp_path_factory.mktemp("plots") / "runs.sqlite") as store:
        yield {name: Run(store, name, values) for name, values in RUNS.items()}


@pytest.fixture
def live(qtbot):
    """make_live_plot(name), closed after the test."""

    def make(name):
        plot = make_live_plot(name)
        qtbot.addWidget(plot)
        return plot

    return make


def xy(curve):
    """The data of a curve as given to it (getData() is log10 of it on a log axis)."""
    x, y = curve.getOriginalDataset()
    return np.asarray(x), np.asarray(y)


def test_registry_has_the_builtins_and_falls_back_to_generic(live):
    assert {"program-array", "drift", "iv-sweep", "pulse-response"} <= set(PLOT_REGISTRY)
    assert type(live("drift")) is DriftPlot
    assert type(live("program-array")) is ConvergencePlot
    assert type(live("endurance")) is GenericPlot
    assert type(live("no-such-procedure")) is GenericPlot


def test_a_registered_plot_is_used_for_its_procedure(live, monkeypatch):
    monkeypatch.setattr(plots, "PLOT_REGISTRY", dict(PLOT_REGISTRY))

    class TrainingPlot(GenericPlot):
        pass

    assert register_plot("training", TrainingPlot) is TrainingPlot
    assert type(live("training")) is TrainingPlot
    with pytest.raises(ConfigError, match="callable"):
        register_plot("training", "not a factory")
    with pytest.raises(ConfigError, match="non-empty"):
        register_plot("", TrainingPlot)


def test_convergence_plot_shows_the_program_trace(runs, live):
    run = runs["program-array"]
    plot = run.feed(live("program-array"))
    data = run.records[0].data
    n = data["trace_converged"].size
    x, converged = xy(plot.converged)
    assert n == run.summary["iterations"] > 1
    np.testing.assert_array_equal(x, np.arange(1, n + 1))
    np.testing.assert_array_equal(converged, data["trace_converged"])
    _, error = xy(plot.error)
    np.testing.assert_allclose(error, data["trace_mean_abs_error_S"] * 1e6)
    _, tol = xy(plot.tolerance)
    np.testing.assert_allclose(tol, run.summary["tolerance_S"] * 1e6)
    label = plot.converged_plot.legend.getLabel(plot.converged).text
    assert "of 256 devices" in label
    assert plot.error_plot.getAxis("left").labelText == "mean |error|"
    assert plot.error_plot.getAxis("left").labelUnits == "µS"


def test_drift_plot_draws_one_curve_per_level_with_the_fitted_nu(runs, live):
    run = runs["drift"]
    levels = run.summary["levels"]
    plot = live("drift")
    for event in run.records[:-1]:  # everything but the fit
        plot.on_record(event.step_id, event.data)
    assert len(plot.series) == len(levels) == 8
    assert [s.n for s in plot.series] == [6] * 8
    np.testing.assert_allclose(plot.series[0].x, run.summary["read_times_s"])
    last = [s.y[-1] for s in plot.series]
    np.testing.assert_allclose(last, [lv["g_last_read_S"] * 1e6 for lv in levels], rtol=1e-6)
    live_nu = plot.nu.copy()
    assert np.all((live_nu > 0.01) & (live_nu < 0.2))  # PCM drift: nu of a few percent
    plot.on_record(run.records[-1].step_id, run.records[-1].data)
    np.testing.assert_allclose(plot.nu, [lv["nu_mean"] for lv in levels], rtol=1e-6)
    # the level-mean fit and the mean of per-device fits agree to a few 1e-3
    np.testing.assert_allclose(live_nu, plot.nu, atol=5e-3)
    texts = [label.text for _, label in plot.plot.legend.items]
    assert len(texts) == 8
    assert texts[0] == f"{levels[0]['target_S'] * 1e6:.3g} µS: ν = {levels[0]['nu_mean']:.4f} (fit)"
    assert plot.plot.getAxis("bottom").logMode
    assert plot.plot.getAxis("bottom").labelUnits == "s"
    assert plot.plot.getAxis("left").labelUnits == "µS"
    _, converged = xy(plot.convergence.converged)
    assert converged.size == run.summary["iterations"]


def test_drift_read_without_a_program_step_is_one_level(runs, live):
    plot = live("drift")
    reads = [e for e in runs["drift"].records if e.step_id.startswith("read-")]
    for event in reads[:3]:
        plot.on_record(event.step_id, event.data)
    assert len(plot.series) == 1 and plot.series[0].n == 3
    np.testing.assert_allclose(plot.series[0].y[-1], reads[2].data["g"].mean() * 1e6, rtol=1e-6)


def test_iv_plot_has_a_curve_per_device_and_the_mean(runs, live):
    run = runs["iv-sweep"]
    plot = run.feed(live("iv-sweep"))
    assert isinstance(plot, IVSweepPlot)
    assert len(plot.devices) == run.summary["devices"] == 16
    assert all(s.n == 4 for s in plot.devices)
    x, mean = xy(plot.mean.curve)
    np.testing.assert_allclose(x, run.summary["voltages_V"])
    np.testing.assert_allclose(mean, run.summary["mean_current_A"], rtol=1e-6)
    i_first = run.records[0].data["i_A"].ravel()
    np.testing.assert_allclose([s.y[0] for s in plot.devices], i_first, rtol=1e-6)
    assert plot.plot.getAxis("left").labelUnits == "A"
    assert plot.plot.getAxis("bottom").labelUnits == "V"


def test_pulse_response_plot_follows_the_mean_curve(runs, live):
    run = runs["pulse-response"]
    plot = run.feed(live("pulse-response"))
    assert isinstance(plot, PulseResponsePlot)
    x, mean = xy(plot.mean.curve)
    np.testing.assert_array_equal(x, np.arange(6))
    np.testing.assert_allclose(mean, np.array(run.summary["mean_g_S"]) * 1e6, rtol=1e-6)
    _, upper = xy(plot.upper.curve)
    assert np.all(upper >= mean)


def test_generic_plot_offers_every_numeric_field(runs, live):
    run = runs["endurance"]
    plot = run.feed(live("endurance"))
    fields = [plot.choice.itemText(i) for i in range(plot.choice.count())]
    assert {"cycles", "window_median", "closed_fraction", "mean g_set"} <= set(fields)
    plot.choice.setCurrentText("cycles")
    x, y = xy(plot.curve)
    np.testing.assert_array_equal(x, np.arange(5))
    np.testing.assert_array_equal(y, [10, 20, 30, 40, 50])
    plot.choice.setCurrentText("mean g_set")
    _, y = xy(plot.curve)
    expected = [e.data["g_set"].mean() * 1e6 for e in run.records]
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    assert plot.plot.getAxis("left").labelUnits == "µS"


@pytest.mark.parametrize("name", list(RUNS))
def test_reopened_run_draws_what_the_live_plot_drew(runs, live, qtbot, name):
    run = runs[name]
    shown = run.feed(live(name))
    reopened = plot_for_run(run.store, run.run_id)
    qtbot.addWidget(reopened)
    assert type(reopened) is type(shown)
    assert reopened.records_seen == shown.records_seen == len(run.records)
    for a, b in zip(curves(shown), curves(reopened), strict=True):
        np.testing.assert_allclose(xy(a), xy(b))
    reopened.load_run(run.store, run.run_id)  # loading again replaces, never doubles
    assert reopened.records_seen == len(run.records)


def curves(plot):
    """Every data curve of a plot, in drawing order."""
    views = plot.findChildren(pg.GraphicsView)
    items = [i for view in views for i in view.items() if isinstance(i, pg.PlotDataItem)]
    assert items
    return items


def test_series_grows_past_its_buffer(qtbot):
    s = Series(pg.PlotDataItem())
    for k in range(200):
        s.append(k, 2.0 * k)
    assert s.n == 200
    np.testing.assert_array_equal(s.y, 2.0 * np.arange(200))
    np.testing.assert_array_equal(xy(s.curve)[0], np.arange(200))


@pytest.mark.parametrize("n_distinct", [5, 16, 17, 1000])
def test_levels_are_grouped_as_in_the_drift_summary(n_distinct):
    rng = np.random.default_rng(n_distinct)
    values = np.linspace(2e-6, 20e-6, n_distinct)
    targets = rng.choice(values, size=(32, 32)).astype(np.float32)
    level, level_targets = level_index(targets)
    good = np.ones(targets.shape, dtype=bool)
    table = level_table(targets, good, targets, np.zeros(targets.shape))
    assert level_targets.size == (n_distinct if n_distinct <= 16 else 8)
    counts = np.bincount(level.ravel(), minlength=level_targets.size)
    assert [row["devices"] for row in table] == counts[counts > 0].tolist()
    np.testing.assert_allclose(
        [row["target_S"] for row in table], level_targets[counts > 0], rtol=1e-6
    )
