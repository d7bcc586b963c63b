"""Emulated chips: device physics, peripheral circuits, emulated board and bench.

The emulator never imports instruments; chipdrivers wraps it as a backend.
"""

from xbarlab.emulator.pcm import PCMArray
from xbarlab.emulator.pcm_params import PRESETS, PCMParams, load_preset
from xbarlab.emulator.rram import RRAMArray
from xbarlab.emulator.rram_params import RRAMParams

__all__ = ["PCMArray", "PCMParams", "PRESETS", "load_preset", "RRAMArray", "RRAMParams"]
