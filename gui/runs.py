"""RunBrowser: the runs of a run store in a table, newest first; reopen one by double-click.

The browser only reads the catalog (:meth:`RunStore.runs`); opening a run emits
``run_opened(run_id)`` and the window draws it with
:func:`xbarlab.gui.plots.plot_for_run`, the same plot the run had while it ran.
A campaign's child runs follow it, indented, in the order they started (hidden with
"show campaign children" off); the campaign's row counts its children by status, so a
sweep running on Dask shows its tasks done, failed and running as they are stored.
"""

from __future__ import annotations

import json
import time

from PyQt5 import QtCore, QtGui, QtWidgets

#: table columns, in order
COLUMNS = (
    "started",
    "procedure",
    "status",
    "records",
    "children",
    "run id",
    "campaign",
    "summary",
)
#: prefix of a campaign child's procedure name in the table
CHILD_MARK = "  └ "
#: text colour per run status (others: the default)
STATUS_COLOURS = {
    "completed": "#1a7f37",
    "aborted": "#b35900",
    "failed": "#c00000",
    "interrupted": "#c00000",
    "running": "#0550ae",
    "paused": "#0550ae",
}
#: characters of the summary shown in the table (the tooltip holds all of it)
SUMMARY_CHARS = 80


def children_text(kids, info=None) -> str:
    """A campaign's children counted by status, e.g. ``"16: 12 completed, 1 failed"``;
    while the campaign ``info`` runs a fan-out step, its tasks still running and queued
    (from the progress the campaign keeps in its summary) follow."""
    counts: dict[str, int] = {}
    for kid in kids:
        counts[kid.status] = counts.get(kid.status, 0) + 1
    text = f"{len(kids)}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) if kids else ""
    tasks = info.summary.get("tasks") if info is not None and info.status == "running" else None
    if isinstance(tasks, dict):
        pending = f"tasks of step {tasks.get('step')}: {tasks.get('running')} running, "
        pending += f"{tasks.get('queued')} queued"
        text = f"{text}; {pending}" if text else pending
    return text


def summary_text(info) -> str:
    """One line about a run: its error if it failed, else its summary as compact JSON."""
    if info.error:
        return info.error
    return json.dumps(info.summary, separators=(",", ":")) if info.summary else ""


class RunBrowser(QtWidgets.QWidget):
    """Table of the runs in ``store`` (a RunStore), newest first, with their status.

    Signals
    -------
    run_opened(str)
        The run id of a run the user opened (double-click or the Open button).
    """

    run_opened = QtCore.pyqtSignal(str)

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(lambda row, _col: self._open_row(row))
        self.show_children = QtWidgets.QCheckBox("show campaign children")
        self.show_children.setChecked(True)
        self.show_children.toggled.connect(lambda _on: self.refresh())
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.open_button = QtWidgets.QPushButton("Open")
        self.open_button.setToolTip("show the selected run's plot (or double-click it)")
        self.open_button.clicked.connect(self.open_selected)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(refresh)
        buttons.addWidget(self.show_children)
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.run_ids: list[str] = []
        self.refresh()

    def refresh(self) -> None:
        """Re-read the catalog, keeping the selected run selected."""
        keep = self.selected_run()
        rows = self._rows(self.store.runs())
        self.run_ids = [info.run_id for info, _ in rows]
        self.table.setRowCount(len(rows))
        for row, (info, kids) in enumerate(rows):
            for col, text in enumerate(self._cells(info, kids)):
                item = QtWidgets.QTableWidgetItem(text)
                if COLUMNS[col] == "status" and info.status in STATUS_COLOURS:
                    item.setForeground(QtGui.QBrush(QtGui.QColor(STATUS_COLOURS[info.status])))
                if COLUMNS[col] == "summary":
                    item.setToolTip(json.dumps(info.summary, indent=1) if info.summary else "")
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        if keep in self.run_ids:
            self.table.selectRow(self.run_ids.index(keep))

    def _rows(self, infos) -> list[tuple]:
        """(run, its children) per table row: top-level runs newest first, each campaign
        followed by its children in start order (when shown)."""
        kids: dict[str, list] = {}
        for info in infos:
            if info.parent is not None:
                kids.setdefault(info.parent, []).append(info)
        rows = []
        for info in infos:
            if info.parent is not None:
                continue
            children = sorted(kids.get(info.run_id, []), key=lambda k: k.started)
            rows.append((info, children))
            if self.show_children.isChecked():
                rows += [(kid, []) for kid in children]
        return rows

    @staticmethod
    def _cells(info, kids=()) -> tuple[str, ...]:
        summary = summary_text(info)
        if kids and not info.error:  # a campaign: its children column says it shorter
            summary = ""
        if len(summary) > SUMMARY_CHARS:
            summary = summary[: SUMMARY_CHARS - 1] + "…"
        return (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.started)),
            (CHILD_MARK if info.parent else "") + info.procedure,
            info.status,
            str(info.n_records),
            children_text(kids, info),
            info.run_id,
            info.parent or "",
            summary,
        )

    def selected_run(self) -> str | None:
        """The run id of the selected row, or None."""
        rows = self.table.selectionModel().selectedRows()
        return self.run_ids[rows[0].row()] if rows else None

    def open_selected(self) -> None:
        """Emit ``run_opened`` for the selected run (nothing if none is selected)."""
        run_id = self.selected_run()
        if run_id is not None:
            self.run_opened.emit(run_id)

    def _open_row(self, row: int) -> None:
        if 0 <= row < len(self.run_ids):
            self.run_opened.emit(self.run_ids[row])
