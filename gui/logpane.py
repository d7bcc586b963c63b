"""The log pane: time-stamped messages from the GUI, the runs and Python logging.

:class:`LogPane` shows lines appended with :meth:`LogPane.append` and, through
:class:`QtLogHandler`, records of the ``xbarlab`` logger from any thread: the handler
emits a Qt signal, which Qt queues to the UI thread.
"""

from __future__ import annotations

import logging
import time

from PyQt5.QtCore import QObject, pyqtSignal
from PyQt5.QtGui import QFont
from PyQt5.QtWidgets import QPlainTextEdit, QWidget

#: lines kept; older ones scroll away
MAX_LINES = 5000


class LogPane(QPlainTextEdit):
    """Read-only, bounded list of log lines ("HH:MM:SS LEVEL message")."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setFont(QFont("monospace", 9))
        self.handler = QtLogHandler()
        self.handler.message.connect(self.append)

    def append(self, text: str, level: str = "INFO") -> None:
        """Add one line, stamped with the local time."""
        self.appendPlainText(f"{time.strftime('%H:%M:%S')} {level:<7} {text}")

    def lines(self) -> list[str]:
        """The shown lines (for tests)."""
        return self.toPlainText().splitlines()


class _Emitter(QObject):
    message = pyqtSignal(str, str)


class QtLogHandler(logging.Handler):
    """A logging handler that forwards records to the UI thread as a Qt signal."""

    def __init__(self, level: int = logging.INFO):
        super().__init__(level)
        self._emitter = _Emitter()
        self.message = self._emitter.message

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.message.emit(self.format(record), record.levelname)
        except RuntimeError:  # the pane is gone (window closed)
            pass
