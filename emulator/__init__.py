"""Emulated chips: device physics, peripheral circuits, emulated board and bench.

The emulator never imports instruments; chipdrivers wraps it as a backend.

OpenMP threads (numba's parallel kernels) are asked to sleep rather than spin
while idle, unless the environment already says otherwise: spinning OpenMP
threads and OpenBLAS's own threads fight for the cores, and a parallel kernel
started right after a BLAS product then waits a scheduler slice (about 8 ms on
two cores, as measured on the machines used here). This must happen before numba
starts its thread pool.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from xbarlab.emulator.pcm import PCMArray  # noqa: E402
from xbarlab.emulator.pcm_params import PRESETS, PCMParams, load_preset  # noqa: E402

__all__ = ["PCMArray", "PCMParams", "PRESETS", "load_preset"]
