"""Saving and restoring the full state of an emulated PCM (or RRAM) array.

The layout serves every :class:`~xbarlab.emulator.array_base.EventArray` (PCM and
RRAM, 38 bytes per RRAM device); its meta starts as every array's does
(``ArrayBase._state_meta``, checked by ``ArrayBase._checked_meta``).

A real chip keeps its state physically between sessions; an emulated one keeps it
here, so a resumed campaign continues on the same chip. The state is everything
that affects future results:

- the per-device arrays (:meth:`PCMArray.state_arrays`, 33 bytes per device);
- the programming-event table (times and its capacity, which decides when the
  table is compacted and so which event ids devices hold);
- the operations RNG: the PCG64 state and the block of kernel keys already drawn
  from it but not yet used (:class:`~xbarlab.emulator.rng.KeyStream`);
- the virtual clock time and the time of the last pulse.

Not saved, because it is rederived identically: the fabrication draws and the
readout mismatch come only from (seed, rows, cols, params, periphery), which must
match (:func:`check_compatible`). Post-programming relaxation needs no state of its
own either: each device's relaxation is a function of the seed, its index and the
time of its programming event (pcm_kernels.event_keys), all restored here (the chip's
per-device cache of it is rebuilt on restore), so the format is unchanged. The MVM
matrix cache is emptied both when saving and when restoring, so the saved chip and a
restored one compute their next MVM from the same (fresh) matrices and give
bit-identical results.

The state is a dict: ``"meta"`` (JSON-able) plus one numpy array per name in
:data:`ARRAY_NAMES`; no pickle anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from xbarlab.errors import ConfigError

if TYPE_CHECKING:
    from xbarlab.emulator.array_base import EventArray

#: bump when the layout changes; a state of another version is refused
FORMAT_VERSION = 1
#: types of the meta entries set_state reads (times may be whole numbers)
_META_TYPES = {
    "time_s": (float, int),
    "t_last_pulse_s": (float, int),
    "event_capacity": (int,),
    "key_next": (int,),
    "rng": (dict,),
}


def get_state(chip: EventArray, copy: bool = True) -> dict[str, Any]:
    """The chip's full state: ``{"meta": dict, <array name>: ndarray, ...}``.

    copy=False gives views of the live arrays, for a caller that serialises them at once
    (saving a 1024 x 1024 chip copies 35 MB less). Also empties the chip's MVM cache
    (see the module docstring).
    """
    chip._mvm_cache.clear()
    bit_state, keys, position = chip._key.get_state()
    meta = {
        **chip._state_meta(FORMAT_VERSION),
        "t_last_pulse_s": chip._t_last_pulse,
        "event_capacity": int(chip._event_times.size),
        "rng": bit_state,
        "key_next": position,
    }
    state: dict[str, Any] = {"meta": meta}
    state.update({name: a.copy() if copy else a for name, a in chip.state_arrays().items()})
    times = chip._event_times[: chip._n_events]
    state["event_times"] = times.copy() if copy else times
    state["keys"] = keys
    return state


def check_compatible(chip: EventArray, state: dict[str, Any]) -> None:
    """Raise ConfigError naming every difference if ``state`` cannot go into ``chip``."""
    meta = chip._checked_meta(state, FORMAT_VERSION, "chip state")
    _check_meta_types(meta)
    _check_arrays(chip, state, meta)


def _check_meta_types(meta: dict[str, Any]) -> None:
    for name, kinds in _META_TYPES.items():
        value = meta.get(name)
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ConfigError(
                f"chip state meta {name!r} must be {' or '.join(k.__name__ for k in kinds)}, "
                f"got {value!r}"
            )


def _check_arrays(chip: EventArray, state: dict[str, Any], meta: dict[str, Any]) -> None:
    expected = {name: (a.dtype, a.shape) for name, a in chip.state_arrays().items()}
    n_events = np.shape(state.get("event_times"))[:1] or (-1,)
    expected["event_times"] = (np.dtype(np.float64), n_events)
    expected["keys"] = (np.dtype(np.uint64), np.shape(state.get("keys")))
    for name, (dtype, shape) in expected.items():
        a = state.get(name)
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
            got = "missing" if a is None else f"{getattr(a, 'dtype', type(a))} {np.shape(a)}"
            raise ConfigError(f"chip state array {name!r} must be {dtype} {shape}, got {got}")
    if state["event_times"].ndim != 1 or state["keys"].ndim != 1:
        raise ConfigError("chip state arrays 'event_times' and 'keys' must be 1-D")
    n = state["event_times"].size
    if not 0 < n <= meta.get("event_capacity", -1):
        raise ConfigError(
            f"chip state holds {n} programming events for a table of "
            f"{meta.get('event_capacity')!r}; expected 1 .. capacity"
        )
    if state["event"].size and int(state["event"].max()) >= n:
        raise ConfigError(f"chip state refers to event {int(state['event'].max())} of {n}")
    if not 0 <= meta.get("key_next", -1) <= state["keys"].size:
        raise ConfigError(
            f"chip state key_next = {meta.get('key_next')!r} is outside 0..{state['keys'].size}"
        )


def set_state(chip: EventArray, state: dict[str, Any]) -> None:
    """Restore a state from :func:`get_state`; on any mismatch nothing changes.

    Everything is checked first (ConfigError naming the difference), then copied in.
    The RNG state is validated by building the generator before anything is touched.
    """
    check_compatible(chip, state)
    meta = state["meta"]
    # the key stream validates its state first: a bad one raises before anything changes
    chip._key.set_state(meta["rng"], state["keys"].copy(), int(meta["key_next"]))
    for name, a in chip.state_arrays().items():
        a[:] = state[name]
    times = np.zeros(int(meta["event_capacity"]), dtype=np.float64)
    times[: state["event_times"].size] = state["event_times"]
    chip._event_times, chip._n_events = times, int(state["event_times"].size)
    chip._t_last_pulse = float(meta["t_last_pulse_s"])
    chip.clock.restore(float(meta["time_s"]))
    chip._refresh_relax_z()
    chip._version += 1
    chip._mvm_cache.clear()
