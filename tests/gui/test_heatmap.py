"""Heatmap: coalesced updates, blocks, scales, selection (no timing asserted)."""

import numpy as np
import pytest

from xbarlab.gui.heatmap import Heatmap

WINDOW = (1e-6, 25e-6)


@pytest.fixture
def heatmap(qtbot):
    h = Heatmap(refresh_ms=10_000)  # the timer never fires in a test: flush() repaints
    qtbot.addWidget(h)
    h.set_shape(4, 6, WINDOW)
    h.flush()
    return h


def test_set_data_only_stores_and_one_repaint_shows_the_newest_map(heatmap):
    frames = heatmap.frames
    maps = [np.full((4, 6), k * 1e-6, dtype=np.float32) for k in range(1, 6)]
    for g in maps:
        heatmap.set_data(g)
    assert heatmap.frames == frames  # nothing drawn yet
    heatmap.flush()
    heatmap.flush()  # nothing new: no second repaint
    assert heatmap.frames == frames + 1
    # colour index 1..255 over the window 1..25 uS: 5 uS -> 1 + 4 * 254 / 24 = 43.3
    np.testing.assert_array_equal(heatmap.image.image, 43)


def test_devices_without_data_get_index_0(heatmap):
    np.testing.assert_array_equal(heatmap.image.image, 0)  # set_shape: all NaN
    assert tuple(heatmap.image.lut[0][:3]) == (220, 220, 220)


def test_block_lands_at_its_origin_and_callers_array_is_untouched(heatmap):
    full = np.full((4, 6), 2e-6, dtype=np.float32)
    heatmap.set_data(full)
    heatmap.set_data(np.full((2, 3), 9e-6, dtype=np.float32), origin=(1, 2))
    heatmap.flush()
    shown = heatmap.image.image
    np.testing.assert_array_equal(shown[1:3, 2:5], 85)  # 9 uS: 1 + 8 * 254 / 24 = 85.7
    assert np.count_nonzero(shown == 85) == 6
    assert np.count_nonzero(shown == 11) == 24 - 6  # 2 uS: 1 + 254 / 24 = 11.6
    np.testing.assert_array_equal(full, np.float32(2e-6))


def test_log_scale_shows_log10_uS_with_the_window_as_colour_range(heatmap):
    heatmap.set_data(np.full((4, 6), 10e-6, dtype=np.float32))
    heatmap.set_scale("log")
    heatmap.flush()
    # log10(10 uS) = 1 over log10(1 .. 25 uS): 1 + 254 / log10(25) = 182.7
    np.testing.assert_array_equal(heatmap.image.image, 182)
    np.testing.assert_allclose(heatmap.bar.levels(), np.log10([1.0, 25.0]))
    assert "log10" in heatmap.bar.axis.labelText
    heatmap.set_scale("linear")
    np.testing.assert_allclose(heatmap.bar.levels(), [1.0, 25.0])
    with pytest.raises(ValueError, match="scale"):
        heatmap.set_scale("cubic")


def test_select_emits_the_devices_of_the_rectangle(heatmap, qtbot):
    with qtbot.waitSignal(heatmap.devices_selected, timeout=1000) as sig:
        heatmap.select(1, 3, 4, 6)
    rows, cols = sig.args
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(1, 4), (1, 5), (2, 4), (2, 5)]


def test_non_2d_data_is_refused(heatmap):
    with pytest.raises(ValueError, match="2-D"):
        heatmap.set_data(np.zeros(6))
