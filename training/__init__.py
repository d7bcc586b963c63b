"""Chip-in-the-loop training: mixed-precision and hardware-aware training."""
