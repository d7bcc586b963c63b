"""Readout calibration, drift compensation and fitting the emulator to a chip."""
