"""What every emulated array shares: construction, shape, readout and the analog MVM.

:class:`ArrayBase` is the skeleton of the PCM, RRAM and MRAM arrays: shape, device
parameters, periphery, seed and virtual clock; the per-chip readout mismatch of both
MVM directions; the MVM itself (:func:`~xbarlab.emulator.mvm.analog_mvm` over the
array's :class:`~xbarlab.emulator.mvm.ArrayMatrices`); and the identity a saved state
must match. A subclass draws its devices and says how its MVM matrices are built.

:class:`EventArray` adds what the gradual analog arrays (PCM, RRAM) share: device
conductances that change with the time since each device's programming event (a table
of event times, one per pulse call), kernel keys from one
:class:`~xbarlab.emulator.rng.KeyStream`, selections passed to the numba kernels as
flat indices, the saved-state format of :mod:`xbarlab.emulator.pcm_state`, and an MVM
matrix cache that is reused while the devices have barely moved since it was computed.

The module also holds the two calling conventions of the device kernels:
:func:`threads_for` (small calls run single-threaded) and :func:`kernel_array`
(C-contiguous, writable arrays of one dtype, so a kernel is compiled once).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np

from xbarlab.clock import VirtualClock
from xbarlab.emulator import pcm_state
from xbarlab.emulator.mvm import ArrayMatrices, Readout, analog_mvm
from xbarlab.emulator.peripherals import PRESETS as PERIPHERAL_PRESETS
from xbarlab.emulator.peripherals import PeripheralParams
from xbarlab.emulator.rng import KeyStream
from xbarlab.errors import ConfigError

#: calls touching fewer devices run their kernel on one thread: too little work to share,
#: and a parallel kernel started right after a multi-threaded BLAS call waits about 8 ms
#: for the BLAS threads to stop spinning
PARALLEL_MIN_DEVICES = 1 << 17
#: cached MVM matrices are reused while the time since they were computed is below this
#: fraction of the time since the last pulse (at least ``EventArray._settle_s``): drift,
#: relaxation and noise width then change by less than about 1e-5 relative
MVM_CACHE_REL_AGE = 1e-4
#: initial size of the programming-event table (it grows when most events stay live)
EVENTS_MIN = 4096


@contextmanager
def threads_for(n_devices: int):
    """Run the enclosed kernel calls single-threaded when the work is small."""
    if n_devices >= PARALLEL_MIN_DEVICES:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def kernel_array(a, dtype) -> np.ndarray:
    """``a`` as a C-contiguous, writable array of ``dtype``, copied only when needed.

    Kernels are compiled per argument type and a read-only array (e.g. np.frombuffer of
    bytes from a socket) is a type of its own: passing one would compile every kernel a
    second time, for seconds, in the middle of a request.
    """
    if isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous:
        if a.flags.writeable:
            return a  # the usual case, checked without np.require's overhead
    return np.require(a, dtype, ["C", "W"])


def generator(seq: np.random.SeedSequence) -> np.random.Generator:
    """The PCG64 Generator of one spawned seed sequence."""
    return np.random.Generator(np.random.PCG64(seq))


class ArrayBase:
    """A rows x cols emulated array: shape, parameters, periphery, seed, clock, MVM.

    Parameters
    ----------
    rows, cols : int
        Array shape.
    params : dataclass, optional
        Device physics, of the subclass's ``params_type`` (its defaults when omitted).
    seed : int
        Seed of everything random in this chip instance.
    clock : VirtualClock, optional
        Shared virtual clock; a new one starting at 0 s by default.
    periphery : PeripheralParams, optional
        DAC, ADC, mismatch and wiring of the analog MVM; the "default" preset when
        omitted.

    A subclass sets ``params_type``; its ``_build()`` (called last by the constructor)
    draws the devices and calls :meth:`_init_readout`; it provides
    ``_array_matrices(transpose)`` and ``_mvm_key()`` for :meth:`mvm`.
    """

    #: the device-parameter dataclass of this technology
    params_type: type

    def __init__(
        self,
        rows: int,
        cols: int,
        params=None,
        seed: int = 0,
        clock: VirtualClock | None = None,
        periphery: PeripheralParams | None = None,
    ):
        self.rows, self.cols = int(rows), int(cols)
        self.params = params or self.params_type()
        self.periphery = periphery or PERIPHERAL_PRESETS["default"]
        self.seed = int(seed)
        self.clock = clock or VirtualClock()
        self._build()

    def _build(self) -> None:
        raise NotImplementedError

    @property
    def size(self) -> int:
        return self.rows * self.cols

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def mvm_shape(self) -> tuple[int, int]:
        """(inputs, outputs) of a forward MVM: column pairs count once when differential."""
        return (self.rows, self.cols // 2 if self.periphery.differential else self.cols)

    def _init_readout(self, rng: np.random.Generator, g_ref: float) -> None:
        """Per-chip output mismatch of both directions, the ADC range set by ``g_ref``
        (S, one weight unit); an empty MVM cache."""
        p = self.periphery
        if p.differential and self.cols % 2:
            raise ConfigError(
                f"a differential array needs an even number of columns, got {self.cols}"
            )
        self._readout = {
            False: Readout.build(self.mvm_shape[1], p, g_ref, rng),
            True: Readout.build(self.rows, p, g_ref, rng),
        }
        self._version = 0
        self._mvm_cache: dict[bool, tuple] = {}

    def mvm(self, x: np.ndarray, transpose: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Output currents in A and ADC saturation flags for input voltages x in V.

        x: (batch, n_in) float32, C-contiguous, n_in = mvm_shape[0] (forward) or
        mvm_shape[1] (transposed). Virtual time advances by periphery.t_mvm per vector.
        """
        x = kernel_array(x, np.float32)
        mats = self._array_matrices(transpose)
        readout = self._readout[transpose]
        out = analog_mvm(x, mats, transpose, self.periphery, readout, self._mvm_key())
        self.clock.advance(self.periphery.t_mvm * x.shape[0])
        return out

    def _array_matrices(self, transpose: bool) -> ArrayMatrices:
        raise NotImplementedError

    def _mvm_key(self) -> np.uint64:
        raise NotImplementedError

    # -- saved state: the meta entries every array's state starts with -----------------
    def _identity(self) -> dict[str, Any]:
        """The chip's construction arguments, JSON-normalised (so saved and live compare).

        Fabrication draws and readout mismatch come only from these, so a saved state
        holds none of them and fits only a chip of the same identity.
        """
        ident = {
            "rows": self.rows,
            "cols": self.cols,
            "seed": self.seed,
            "params": self.params.to_dict(),
            "periphery": self.periphery.to_dict(),
        }
        return json.loads(json.dumps(ident))

    def _state_meta(self, version: int) -> dict[str, Any]:
        """The first entries of a saved state's meta: format ``version``, the identity
        and the clock time in s."""
        return {"format": version, **self._identity(), "time_s": self.clock.now()}

    def _checked_meta(self, state: Any, version: int, what: str) -> dict[str, Any]:
        """The meta dict of ``state`` (``what`` names it in errors, e.g. "chip state")
        after checking that it is of format ``version`` and saved from a chip of this
        identity; ConfigError naming every difference otherwise."""
        meta = state.get("meta") if isinstance(state, dict) else None
        if not isinstance(meta, dict):
            raise ConfigError(f"{what} has no 'meta' dict; it was not made by get_state")
        if meta.get("format") != version:
            raise ConfigError(
                f"{what} format {meta.get('format')!r} is not supported; this version reads "
                f"format {version}"
            )
        live = self._identity()
        diffs = [_difference(name, meta.get(name), value) for name, value in live.items()]
        diffs = [d for d in diffs if d]
        if diffs:
            raise ConfigError(
                f"{what} does not fit this chip: " + "; ".join(diffs) + ". Open the chip "
                "with the spec the state was saved from."
            )
        return meta


def _difference(name: str, saved: Any, live: Any) -> str:
    """'' when equal, else what differs (field by field for parameter dicts)."""
    if saved == live:
        return ""
    if isinstance(saved, dict) and isinstance(live, dict):
        fields = sorted(set(saved) | set(live))
        parts = [
            f"{k} {saved.get(k)!r} != {live.get(k)!r}"
            for k in fields
            if saved.get(k) != live.get(k)
        ]
        return f"{name}: saved vs this chip: " + ", ".join(parts)
    return f"{name}: saved {saved!r}, this chip {live!r}"


class EventArray(ArrayBase):
    """An array of gradual analog devices whose conductance depends on the time since
    their programming event (PCM, RRAM).

    A subclass names its per-device state arrays in ``state_names``; its ``_build``
    sets its kernel constants, then calls :meth:`_start` with its spawned seed
    sequences; it provides ``_fabricate(rng)``, ``conductance()``,
    ``_refresh_relax_z()`` and ``_settle_s`` (the shortest time in s since the last
    pulse the MVM cache rule counts).
    """

    #: the per-device state arrays (attribute names), in saved-state order
    state_names: tuple[str, ...] = ()

    def _start(self, fab_seq, ops_seq, periph_seq, g_ref: float) -> None:
        """Key stream and empty event table, then fabrication and readout (in that order:
        fabrication may register event 0)."""
        self._key = KeyStream(generator(ops_seq))
        self._all = np.empty(0, dtype=np.intp)  # kernels read an empty index as "all"
        self._event_times = np.zeros(EVENTS_MIN, dtype=np.float64)
        self._n_events = 0
        self._fabricate(generator(fab_seq))
        self._init_readout(generator(periph_seq), g_ref)
        self._t_last_pulse = 0.0

    def _mvm_key(self) -> np.uint64:
        return self._key()

    # -- programming events -----------------------------------------------------------
    def _new_event(self, t: float) -> int:
        """Register a programming event at time t (s) and return its id."""
        if self._n_events == self._event_times.size:
            self._compact_events()
        self._event_times[self._n_events] = t
        self._n_events += 1
        return self._n_events - 1

    def _compact_events(self) -> None:
        """Drop events no device refers to any more; grow the table if most are live."""
        used = np.zeros(self._n_events, dtype=bool)
        used[self.event] = True
        remap = np.cumsum(used, dtype=np.uint32) - 1
        live = int(used.sum())
        self.event[:] = remap[self.event]
        size = self._event_times.size * (2 if live > self._event_times.size // 2 else 1)
        times = np.zeros(size, dtype=np.float64)
        times[:live] = self._event_times[: self._n_events][used]
        self._event_times, self._n_events = times, live

    @property
    def t_prog(self) -> np.ndarray:
        """Time in s of each device's last programming pulse (flat, float64)."""
        return self._event_times[self.event]

    def _begin_pulse(self, t_start: float, duration: float, t_event: float) -> int:
        """Book a pulse call that starts at ``t_start`` and lasts ``duration`` (s), its
        devices programmed at ``t_event``: a new event id; cached MVM matrices go stale."""
        ev = self._new_event(t_event)
        self._version += 1
        self._t_last_pulse = t_start + duration
        return ev

    # -- state ------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every per-device state array by name (views, not copies): the attributes named
        in the subclass's ``state_names``, in that order (the saved-state layout)."""
        return {name: getattr(self, name) for name in self.state_names}

    def state_bytes(self) -> int:
        """Bytes of per-device state held by this array (the event table excluded)."""
        return sum(a.nbytes for a in self.state_arrays().values())

    def get_state(self, copy: bool = True) -> dict[str, np.ndarray | dict]:
        """The full chip state (devices, events, RNG, clock), a copy unless copy=False:
        see pcm_state.get_state."""
        return pcm_state.get_state(self, copy)

    def set_state(self, state: dict[str, np.ndarray | dict]) -> None:
        """Restore a :meth:`get_state` copy; ConfigError (chip untouched) on a mismatch."""
        pcm_state.set_state(self, state)

    # -- operations -------------------------------------------------------------------
    def _selected(self, idx: np.ndarray | None) -> tuple[np.ndarray, int]:
        """Kernel index argument and device count for flat indices ``idx`` or all (None)."""
        if idx is None:
            return self._all, self.size
        return kernel_array(idx, np.intp), int(np.size(idx))

    def _array_matrices(self, transpose: bool) -> ArrayMatrices:
        """Effective conductance and noise variance, recomputed when stale."""
        direction = transpose and self.periphery.r_wire > 0  # IR drop depends on direction
        now = self.clock.now()
        hit = self._mvm_cache.get(direction)
        if hit is not None:
            version, t_cached, mats = hit
            settled = max(t_cached - self._t_last_pulse, self._settle_s)
            if version == self._version and now - t_cached <= MVM_CACHE_REL_AGE * settled:
                return mats
        mats = self._compute_matrices(direction)
        self._mvm_cache[direction] = (self._version, now, mats)
        return mats

    def _compute_matrices(self, transpose: bool) -> ArrayMatrices:
        p = self.periphery
        g, sigma = self.conductance()
        if p.r_wire > 0:
            from xbarlab.emulator.irdrop import effective_conductance

            g = effective_conductance(g, p.r_wire, transpose=transpose).astype(np.float32)
        var = sigma * sigma if p.device_noise else None
        if p.differential:
            g = g[:, 0::2] - g[:, 1::2]
            var = None if var is None else var[:, 0::2] + var[:, 1::2]
        var = None if var is None else np.ascontiguousarray(var)
        return ArrayMatrices(np.ascontiguousarray(g), var)
