"""Compile (or load from numba's cache) every emulator kernel once per process.

A first call compiles the kernels it reaches: about 30 s on a fresh checkout, a second
or so once numba's on-disk cache holds them. An emulated instrument or board answers
over a socket with a client timeout of a few seconds, so a first MVM or read arriving
at a cold server would time out. The servers call :func:`warm_up` before they accept
connections, as a real board finishes booting before it answers.
"""

from __future__ import annotations

import functools

import numpy as np

from xbarlab.emulator.pcm import PCMArray
from xbarlab.emulator.peripherals import PRESETS as PERIPHERAL_PRESETS
from xbarlab.emulator.rram import RRAMArray

#: batch rows of the warm-up MVM on a 2 x 2 chip: enough values to reach the parallel
#: drivers of every pass (2^19 inputs)
_BIG_BATCH = 1 << 18


@functools.cache
def warm_up() -> None:
    """Run read, pulse and MVM (forward and transposed, small and large batches, with
    device noise) on a tiny chip, so that every kernel is compiled; once per process."""
    chip = PCMArray(2, 2, seed=0, periphery=PERIPHERAL_PRESETS["default"])
    chip.read()
    chip.pulse(None, np.array([1.0]), np.array([50e-9]))
    for batch in (1, _BIG_BATCH):
        x = np.full((batch, 2), 0.05, dtype=np.float32)
        chip.mvm(x)
        chip.mvm(x, transpose=True)
    rram = RRAMArray(2, 2, seed=0)  # the RRAM model's own read, pulse and conductance kernels
    rram.read()
    rram.pulse(None, np.array([4.0]), np.array([1e-6]), polarity=1)  # forms the devices
    rram.pulse(None, np.array([1.0]), np.array([100e-9]), polarity=1)
    rram.pulse(None, np.array([1.0]), np.array([100e-9]), polarity=-1)
    rram.conductance()
