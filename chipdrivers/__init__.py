"""The ``Crossbar`` interface, its backends, and algorithms over any backend.

Open a chip with :func:`open_crossbar`::

    from xbarlab.chipdrivers import open_crossbar
    xbar = open_crossbar("emulator:pcm?rows=256&cols=256&seed=1")
    g = xbar.read()                    # (256, 256) float32, S
"""

from xbarlab.chipdrivers.crossbar import CAPABILITIES, ChipInfo, Crossbar, PulseShape
from xbarlab.chipdrivers.factory import backends, open_crossbar, parse_spec, register_backend
from xbarlab.chipdrivers.selection import Selection, resolve

__all__ = [
    "CAPABILITIES",
    "ChipInfo",
    "Crossbar",
    "PulseShape",
    "Selection",
    "backends",
    "open_crossbar",
    "parse_spec",
    "register_backend",
    "resolve",
]
