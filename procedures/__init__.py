"""Measurement procedures, the runner and campaigns."""
