"""End-to-end: the main window runs procedures on an emulated chip through its worker."""

import numpy as np
from PyQt5.QtCore import Qt
from PyQt5.QtGui import QImage

from xbarlab.events import Record
from xbarlab.gui.app import launch
from xbarlab.store import RunStore

SPEC = "emulator:pcm?rows=16&cols=16&seed=2"


def test_program_array_from_the_form_updates_heatmap_and_store(win, idle, qtbot, store):
    form = win.show_procedure("program-array")
    form.set_values({"n_levels": 4})
    assert np.isnan(win.heatmap.data).all()  # nothing read for display before the run
    qtbot.mouseClick(form.run_button, Qt.LeftButton)
    idle(win)
    (run,) = store.runs()
    assert run.procedure == "program-array" and run.status == "completed"
    g_after = store.record(run.run_id, "program")["g_after"]
    np.testing.assert_array_equal(win.heatmap.data, g_after)  # the record's map, as is
    win.heatmap.flush()
    lo, hi = win.xbar.info.g_min * 1e6, win.xbar.info.g_max * 1e6
    index = np.clip((g_after * 1e6 - lo) * 254 / (hi - lo) + 1, 1, 255).astype(np.uint8)
    assert np.mean(win.heatmap.image.image == index) > 0.99  # float32 rounding at edges
    assert win.live_plot is win.plots["program-array"]
    assert any(run.run_id in line and "completed" in line for line in win.log.lines())


def test_procedures_run_off_the_ui_thread(win, idle, qtbot):
    threads = []
    win.queue._worker.run_event.connect(
        lambda ev: threads.append(__import__("threading").get_ident()), Qt.DirectConnection
    )
    win.submit(win.show_procedure("conductance-map").procedure())
    idle(win)
    assert threads and __import__("threading").get_ident() not in set(threads)


def test_abort_mid_run_leaves_a_consistent_aborted_run(win, idle, qtbot, store):
    form = win.show_procedure("drift")
    form.set_values({"n_reads": 200})

    def on_event(ev):
        if isinstance(ev, Record) and ev.step_id == "read-002":
            win.abort_button.click()

    win.queue.run_event.connect(on_event)
    qtbot.mouseClick(form.run_button, Qt.LeftButton)
    idle(win)
    (run,) = store.runs()
    assert run.status == "aborted"
    steps = store.step_ids(run.run_id)
    n_reads = len(steps) - 1
    assert 3 <= n_reads < 200  # stopped after the step in flight, long before the end
    assert steps == ["program"] + [f"read-{k:03d}" for k in range(n_reads)]
    assert run.summary["steps_done"] == len(steps)


def test_invalid_parameter_shows_an_error_and_starts_nothing(win, qtbot, store):
    form = win.show_procedure("program-array")
    form.set_values({"n_levels": "many"})
    assert not form.is_valid() and not form.run_button.isEnabled()
    assert "n_levels" in form.errors()
    qtbot.mouseClick(form.run_button, Qt.LeftButton)
    assert not win.queue.busy and store.runs() == []


def test_value_beyond_chip_limits_cannot_be_submitted(win, qtbot, store):
    form = win.show_procedure("iv-sweep")
    limit = win.xbar.info.limits.max_read_voltage
    form.set_values({"voltages": f"0.1, {limit * 2:g}"})
    assert not form.is_valid() and not form.run_button.isEnabled()
    assert "max_read_voltage" in " ".join(form.errors().values())
    qtbot.mouseClick(form.run_button, Qt.LeftButton)
    assert not win.queue.busy and store.runs() == []


def test_region_maps_land_at_their_origin_and_history_plots_selected_devices(
    win, idle, qtbot, store
):
    form = win.show_procedure("conductance-map")
    form.set_values({"repeats": 3, "region": "4:8,2:6"})
    qtbot.mouseClick(form.run_button, Qt.LeftButton)
    idle(win)
    (run,) = store.runs()
    data = win.heatmap.data
    np.testing.assert_array_equal(data[4:8, 2:6], store.record(run.run_id, "stats")["g_mean"])
    assert np.isnan(data[:4]).all() and np.isnan(data[:, 6:]).all()
    win.heatmap.select(4, 6, 2, 4)  # 4 devices inside the region
    assert win.plot_area.currentWidget() is win.history
    curves = win.history.getPlotItem().listDataItems()
    assert len(curves) == 4
    reads = [r.data for r in store.records(run.run_id)]
    expected = [d.get("g", d.get("g_mean"))[0, 0] for d in reads]  # device (4, 2)
    np.testing.assert_allclose(curves[0].yData, expected)


def test_connection_panel_shows_limits_and_bad_specs(win):
    info = win.connection.info_text()
    assert info["array"] == "16 x 16 pcm"
    assert info["max read voltage"] == "0.3 V" and info["compliance"] == "500 uA"
    win.connection.disconnect_chip()
    assert not win.connection.connect_to("emulator:pcm?rows=0")
    assert "rows" in win.connection.error.text()


def test_screenshot_of_a_run_is_a_real_window(qtbot, tmp_path):
    path = tmp_path / "iv.png"
    store = str(tmp_path / "shot.sqlite")
    assert launch(SPEC, store, "iv-sweep", {"region": "all"}, str(path)) == 0
    img = QImage(str(path))
    assert (img.width(), img.height()) == (1200, 800)
    colours = {img.pixel(x, y) for x in range(0, 1200, 9) for y in range(0, 800, 9)}
    assert len(colours) > 20  # drawn widgets, text and a colour bar, not a blank frame
    with RunStore(store) as s:
        assert [r.status for r in s.runs()] == ["completed"]
