"""An emulated 1T1R RRAM crossbar array: struct-of-arrays device state plus physics.

Bidirectional gradual switching (polarity +1 SET raises G, -1 RESET lowers it) with
soft bounds, cycle-to-cycle and device-to-device variation, Gaussian read noise,
slow log-time relaxation after programming and stuck devices; see
:mod:`xbarlab.emulator.rram_params` for the laws and their sources and
:mod:`xbarlab.emulator.rram_kernels` for the compiled kernels.

The array shares its skeleton with :class:`~xbarlab.emulator.pcm.PCMArray`
(:class:`~xbarlab.emulator.array_base.EventArray`): the same programming-event table
(one time per pulse call), the same random streams (fabrication, operations and
readout spawned from the seed), the same analog MVM
(:func:`~xbarlab.emulator.mvm.analog_mvm` with the read noise as device noise) and
the same state format (:mod:`xbarlab.emulator.pcm_state`), so saving, restoring and
the MVM periphery behave identically.

Devices arrive pristine (``RRAMParams.pristine``): unformed, at about 10 MOhm, deaf
to SET and RESET pulses. A polarity +1 pulse at or above a device's own forming
voltage forms it at a conductance set by the chip's compliance current
(:meth:`RRAMArray.set_compliance`; too much current over-forms it into a permanent
short). The formed device sits above its window until its first switching pulse (a
RESET) brings it in.

Per-device state is 38 bytes: g_prog, relax, g_lo, g_hi, sens, v_form, i_short
(float32), event, pulse_count (uint32), flags (uint8: stuck, shorted, unbound) and
formed (bool).
"""

from __future__ import annotations

import numpy as np

from xbarlab.emulator import pcm_state
from xbarlab.emulator import rram_kernels as K
from xbarlab.emulator.array_base import EventArray, kernel_array, threads_for
from xbarlab.emulator.rram_params import RRAMParams
from xbarlab.errors import ConfigError

#: the MVM cache counts the time since the last pulse as at least this many s
#: (relaxation then changes G by far less than the read noise while a cache lives)
_MVM_CACHE_SETTLE = 1e-6


def _consts(p: RRAMParams) -> np.ndarray:
    """Model constants in the order the kernels index them (rram_kernels.C_*)."""
    c = np.empty(K.N_CONSTS, dtype=np.float32)
    c[K.C_SET_STEP], c[K.C_RESET_STEP] = p.set_step, p.reset_step
    c[K.C_SET_GAMMA], c[K.C_RESET_GAMMA], c[K.C_C2C] = p.set_gamma, p.reset_gamma, p.c2c
    c[K.C_RELAX_RATE], c[K.C_RELAX_EQ], c[K.C_RELAX_STD] = p.relax_rate, p.relax_eq, p.relax_std
    c[K.C_FORM_PER_DECADE], c[K.C_FORM_WIDTH_REF] = p.v_form_per_decade, p.form_width_ref
    c[K.C_FORM_V_C], c[K.C_FORM_SPREAD] = p.form_v_c, p.form_spread
    c[K.C_G_SHORT], c[K.C_SHORT_SPREAD] = p.g_short, p.g_short_spread
    return c


class RRAMArray(EventArray):
    """A rows x cols 1T1R RRAM array.

    ``RRAMArray(rows, cols, params=None, seed=0, clock=None, periphery=None)``: the
    parameters of :class:`~xbarlab.emulator.array_base.ArrayBase`, ``params`` an
    :class:`~xbarlab.emulator.rram_params.RRAMParams` (the "default" preset when omitted).
    """

    technology = "rram"
    params_type = RRAMParams
    params: RRAMParams
    state_names = (
        "g_prog", "event", "relax", "g_lo", "g_hi", "sens", "flags", "formed",
        "pulse_count", "v_form", "i_short",
    )  # fmt: skip

    def _build(self) -> None:
        self._c = _consts(self.params)
        self.compliance = float(self.params.forming_compliance)
        fab_seq, ops_seq, periph_seq = np.random.SeedSequence(self.seed).spawn(3)
        self._start(fab_seq, ops_seq, periph_seq, self.params.g_max)

    #: shortest time since the last pulse (s) the MVM cache rule counts
    _settle_s = _MVM_CACHE_SETTLE

    def _fabricate(self, rng: np.random.Generator) -> None:
        """Draw device-to-device variation and defects; at t = 0 (programming event 0)
        every device is pristine, or (pristine = 0) formed and RESET to near its lower
        bound. The forming draws come last, so a formed chip's other draws do not
        depend on them."""
        p, n = self.params, self.size
        g_hi = p.g_max * np.maximum(1 + p.g_max_spread * rng.standard_normal(n), 0.5)
        g_lo = p.g_min * np.maximum(1 + p.g_min_spread * rng.standard_normal(n), 0.1)
        g_lo = np.minimum(g_lo, 0.5 * g_hi)  # a window even for extreme draws
        self.g_hi, self.g_lo = g_hi.astype(np.float32), g_lo.astype(np.float32)
        self.sens = np.exp(p.step_spread * rng.standard_normal(n)).astype(np.float32)
        u = rng.random(n)
        on = u < p.stuck_on_fraction
        off = ~on & (u < p.stuck_on_fraction + p.stuck_off_fraction)
        self.flags = np.where(on, K.STUCK_ON, np.where(off, K.STUCK_OFF, 0)).astype(np.uint8)
        x = np.clip(p.init_state + p.init_spread * rng.standard_normal(n), 0.0, 1.0)
        x = np.where(on, 1.0, np.where(off, 0.0, x))
        self.g_prog = (self.g_lo + x * (self.g_hi - self.g_lo)).astype(np.float32)
        span = self.g_hi - self.g_lo
        g_eq = self.g_lo + p.relax_eq * span
        relax = p.relax_rate * (g_eq - self.g_prog) + p.relax_std * span * rng.standard_normal(n)
        self.relax = np.where(self.flags != 0, 0.0, relax).astype(np.float32)
        self.event = np.full(n, self._new_event(0.0), dtype=np.uint32)
        self.formed = np.ones(n, dtype=bool)
        self.pulse_count = np.zeros(n, dtype=np.uint32)
        self.v_form = (p.v_form + p.v_form_std * rng.standard_normal(n)).astype(np.float32)
        self.i_short = (p.i_short * np.exp(p.i_short_spread * rng.standard_normal(n))).astype(
            np.float32
        )
        g_pristine = p.g_pristine * np.exp(p.g_pristine_spread * rng.standard_normal(n))
        if p.pristine:
            self.formed[:] = False
            self.g_prog[:] = g_pristine
            self.relax[:] = 0.0
            self.flags |= K.UNBOUND
        self._n_pristine = int(n - np.count_nonzero(self.formed))

    # -- state ------------------------------------------------------------------------
    def get_state(self, copy: bool = True) -> dict:
        """The full chip state (devices, events, RNG, clock, compliance current), a copy
        unless copy=False; the layout of :func:`xbarlab.emulator.pcm_state.get_state`
        plus meta ``compliance_A``."""
        state = pcm_state.get_state(self, copy)
        state["meta"]["compliance_A"] = self.compliance
        return state

    def set_state(self, state: dict) -> None:
        """Restore a :meth:`get_state` copy; ConfigError (chip untouched) on a mismatch."""
        meta = state.get("meta") if isinstance(state, dict) else None
        compliance = meta.get("compliance_A") if isinstance(meta, dict) else None
        if isinstance(compliance, bool) or not isinstance(compliance, int | float):
            raise ConfigError(
                f"RRAM chip state meta 'compliance_A' must be a number in A, got {compliance!r}"
            )
        _check_compliance(compliance)
        pcm_state.set_state(self, state)
        self.compliance = float(compliance)
        self._n_pristine = int(self.size - np.count_nonzero(self.formed))

    def _refresh_relax_z(self) -> None:
        """Nothing to rebuild after a restore: pcm_state.set_state calls this for PCM
        arrays, whose relaxation keeps a derived per-device cache; the RRAM relaxation
        slope (``relax``) is saved state."""

    def set_compliance(self, current: float) -> None:
        """Set the compliance current in A that limits forming from now on (> 0).

        The emulated 1T1R cell's transistor limits the forming current to it: a device
        forms at conductance current / form_v_c, or shorts if current exceeds its own
        over-forming threshold. Chip limits are checked by the backend, not here.
        """
        self.compliance = _check_compliance(current)

    @property
    def shorted(self) -> np.ndarray:
        """Boolean (rows, cols) map of devices over-formed into a short (ground truth)."""
        return ((self.flags & K.SHORTED) != 0).reshape(self.shape)

    @property
    def pristine(self) -> np.ndarray:
        """Boolean (rows, cols) map of devices not yet formed (ground truth)."""
        return ~self.formed.reshape(self.shape)

    @property
    def stuck(self) -> np.ndarray:
        """Boolean (rows, cols) map of devices stuck on or off (ground truth)."""
        return ((self.flags & K.STUCK) != 0).reshape(self.shape)

    # -- operations -------------------------------------------------------------------
    def _table(self, now: float) -> np.ndarray:
        return K.time_table(self._event_times[: self._n_events], now, self.params.relax_t0)

    def read(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Read-noisy conductance in S (float32) of devices ``idx`` (flat), or of all."""
        idx, n = self._selected(idx)
        log_t = self._table(self.clock.now())
        out = np.empty(n, dtype=np.float32)
        state = (self.g_prog, self.event, self.relax, self.g_lo, self.g_hi, self.flags, log_t)
        with threads_for(n):
            K.read_kernel(idx, n, self._key(), np.float32(self.params.read_noise), *state, out)
        self.clock.advance(self.params.t_array_read)
        return out

    def conductance(self) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free relaxed conductance and read-noise std (both S, shape (rows, cols))."""
        log_t = self._table(self.clock.now())
        g = np.empty(self.size, dtype=np.float32)
        s = np.empty(self.size, dtype=np.float32)
        state = (self.g_prog, self.event, self.relax, self.g_lo, self.g_hi, self.flags, log_t)
        with threads_for(self.size):
            K.mean_sigma_kernel(np.float32(self.params.read_noise), *state, g, s)
        return g.reshape(self.shape), s.reshape(self.shape)

    def pulse(
        self,
        idx: np.ndarray | None,
        amplitude: np.ndarray,
        width: np.ndarray,
        count: int = 1,
        polarity: int = 1,
    ) -> None:
        """Apply ``count`` pulses of ``polarity`` to devices ``idx`` (flat), or to all.

        polarity: +1 SET (raises G), -1 RESET (lowers G). amplitude: pulse height in V
        (its magnitude counts; length 1 or len(idx)). width: pulse width in s (length 1
        or len(idx)). Pristine devices ignore pulses except polarity +1 pulses at or
        above their forming voltage, which form them under the chip's compliance.
        """
        idx, n = self._selected(idx)
        if n == 0:
            return
        if polarity not in (1, -1):
            raise ConfigError(f"polarity must be +1 or -1, got {polarity!r}")
        amplitude = kernel_array(amplitude, np.float64).ravel()
        width = kernel_array(width, np.float64).ravel()
        drive = self.params.drive(polarity, amplitude, width)
        drive = np.ascontiguousarray(drive, dtype=np.float32).ravel()
        t_start = self.clock.now()
        duration = count * (float(width.max()) + self.params.t_pulse_gap)
        ev = self._begin_pulse(t_start, duration, t_start + duration)
        log_t = self._table(t_start)
        state = (self.g_prog, self.event, self.relax, self.g_lo, self.g_hi, self.sens)
        with threads_for(n * count):
            K.pulse_kernel(
                idx, n, int(polarity), drive, int(count), ev, log_t, self._c, self._key(),
                *state, self.flags, self.formed, self.pulse_count,
            )  # fmt: skip
            if polarity > 0 and self._n_pristine:
                self._n_pristine -= K.form_kernel(
                    idx, n, np.abs(amplitude), width, int(count), self.compliance, ev,
                    self._c, self._key(), self.g_prog, self.event, self.relax, self.g_lo,
                    self.g_hi, self.flags, self.formed, self.v_form, self.i_short,
                )  # fmt: skip
        self.clock.advance(duration)


def _check_compliance(current) -> float:
    """``current`` as a float; ConfigError unless it is a finite number > 0 (A)."""
    try:
        value = float(current)
    except (TypeError, ValueError):
        raise ConfigError(f"compliance current must be a number in A, got {current!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise ConfigError(f"compliance current must be a finite number > 0 A, got {current!r}")
    return value
