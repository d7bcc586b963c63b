"""GUI tests run headless: Qt's offscreen platform, set before Qt is imported."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from xbarlab.store import RunStore  # noqa: E402


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "runs.sqlite") as s:
        yield s


@pytest.fixture
def win(qtbot, store, request):
    """The main window connected to the test module's ``SPEC``; at the end it is closed
    and its worker thread has finished."""
    from xbarlab.gui.app import MainWindow

    spec = request.module.SPEC
    w = MainWindow(store, spec)
    qtbot.addWidget(w)
    assert w.connection.connect_to(spec)
    yield w
    w.close()
    assert w.queue.thread.isFinished()


def wait_idle(qtbot, win, timeout=60_000):
    """Wait until the window's run queue has nothing running or queued."""
    qtbot.waitUntil(lambda: not win.queue.busy, timeout=timeout)


@pytest.fixture
def idle(qtbot):
    """``idle(win, timeout_ms)``: wait_idle bound to this test's qtbot."""
    return lambda win, timeout=60_000: wait_idle(qtbot, win, timeout)
