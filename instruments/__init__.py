"""Drivers for real instruments and test boards (pyvisa, pyserial)."""
