"""Live plot of training runs: loss, test accuracy and SET pulses per epoch.

Registered in the plot registry (:func:`xbarlab.gui.plots.register_plot`) for the runs
:func:`xbarlab.training.runs.run_training` records (``train-fp``,
``train-mixed-precision``, ``train-hwa``); importing this module registers it. It reads
the ``epoch-NNNN`` records (``train_loss``, ``test_accuracy`` and, for mixed precision,
``pulses``) and ignores the others.
"""

from __future__ import annotations

import pyqtgraph as pg

from xbarlab.gui.plots import LivePlot, Series, new_plot, register_plot

#: the procedure names training runs are stored under
TRAINING_RUNS = ("train-fp", "train-mixed-precision", "train-hwa")


class TrainingPlot(LivePlot):
    """Three panels over the epoch: train loss (nats), test accuracy, SET pulses."""

    title = "training"

    def __init__(self, parent=None):
        super().__init__(parent)
        panels = {  # field: (title, axis label, unit)
            "train_loss": ("train loss", "loss", "nats"),
            "test_accuracy": ("test accuracy", "accuracy", ""),
            "pulses": ("SET pulses per epoch", "pulses", ""),
        }
        self.series = {}
        for row, (key, (title, label, unit)) in enumerate(panels.items()):
            plot = new_plot(title, ("epoch", ""), (label, unit))
            # plain numbers: an SI prefix would read "600 mnats" or "x0.001" here
            plot.getAxis("left").enableAutoSIPrefix(False)
            self.graphics.addItem(plot, row=row, col=0)
            pen = pg.mkPen("b", width=2)
            self.series[key] = Series(plot.plot(pen=pen, symbol="o", symbolSize=5))
        self.clear()

    def clear(self) -> None:
        super().clear()
        for s in self.series.values():
            s.n = 0
            s.curve.setData([], [])

    def on_record(self, step_id: str, data: dict) -> None:
        self.records_seen += 1
        if not step_id.startswith("epoch-"):
            return
        epoch = float(data.get("epoch", int(step_id.removeprefix("epoch-"))))
        for key, s in self.series.items():
            if key in data:
                s.append(epoch, float(data[key]))


for _name in TRAINING_RUNS:
    register_plot(_name, TrainingPlot)
