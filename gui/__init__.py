"""PyQt5 + pyqtgraph live-monitoring GUI."""
