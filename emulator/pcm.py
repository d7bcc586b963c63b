"""An emulated PCM crossbar array: struct-of-arrays device state plus physics.

One numpy array per quantity, flattened row-major over (rows, cols); no Python
object per device. State is 33 bytes per device (see :meth:`PCMArray.state_bytes`),
plus a 4-byte cache of each device's relaxation normal derived from it (pcm_kernels).
Everything random is drawn from two generators spawned from the chip's seed: one
for fabrication (device-to-device variation, defects), one for operations
(cycle-to-cycle spread, read noise), plus a key hashed with the time of each
programming event for post-programming relaxation, so the same seed and the same call
sequence give identical results.

This layer knows nothing about safety limits or selections: the chipdrivers
backend validates before calling in. Times come from the chip's VirtualClock.
"""

from __future__ import annotations

import numpy as np

from xbarlab.emulator import pcm_kernels as K
from xbarlab.emulator.array_base import EventArray, kernel_array, threads_for
from xbarlab.emulator.pcm_params import PCMParams
from xbarlab.emulator.rng import new_key

_UINT32_MAX = np.iinfo(np.uint32).max


def _consts(p: PCMParams) -> np.ndarray:
    """Model constants in the order the kernels index them (pcm_kernels.C_*)."""
    c = np.empty(K.N_CONSTS, dtype=np.float32)
    c[K.C_G_MAX], c[K.C_G_MIN] = p.g_max, p.g_min
    c[K.C_SET_STEP], c[K.C_SET_EXP], c[K.C_SET_C2C] = p.set_step, p.set_state_exponent, p.set_c2c
    c[K.C_V_RESET] = p.v_reset
    c[K.C_NU_SLOPE], c[K.C_NU_OFFSET] = p.nu_slope, p.nu_offset
    c[K.C_NU_MIN], c[K.C_NU_MAX] = p.nu_min, p.nu_max
    c[K.C_NUS_SLOPE], c[K.C_NUS_OFFSET] = p.nu_std_slope, p.nu_std_offset
    c[K.C_NUS_MIN], c[K.C_NUS_MAX] = p.nu_std_min, p.nu_std_max
    c[K.C_QS_COEFF], c[K.C_QS_EXP], c[K.C_QS_MAX] = p.q_s_coeff, p.q_s_exponent, p.q_s_max
    c[K.C_RESET_MEAN], c[K.C_RESET_STD] = p.reset_g_mean, p.reset_g_std
    c[K.C_RELAX_MEAN], c[K.C_RELAX_STD] = p.relax_mean, p.relax_std
    return c


class PCMArray(EventArray):
    """A rows x cols PCM array with drift, 1/f read noise, variability and defects.

    ``PCMArray(rows, cols, params=None, seed=0, clock=None, periphery=None)``: the
    parameters of :class:`~xbarlab.emulator.array_base.ArrayBase`, ``params`` a
    :class:`~xbarlab.emulator.pcm_params.PCMParams` (its defaults when omitted).
    """

    params_type = PCMParams
    params: PCMParams
    state_names = (
        "g_prog", "event", "nu", "q_s", "g_sat", "sens",
        "flags", "cycles_left", "pulse_count",
    )  # fmt: skip

    def _build(self) -> None:
        self._c = _consts(self.params)
        fab_seq, ops_seq, periph_seq, relax_seq = np.random.SeedSequence(self.seed).spawn(4)
        # relaxation is a pure function of (this key, device, event time): no state to save
        self._relax_key = np.uint64(relax_seq.generate_state(1, np.uint64)[0])
        self._relax_z = np.zeros(self.size, dtype=np.float32)  # derived, see pcm_kernels
        self._start(fab_seq, ops_seq, periph_seq, self.params.g_max)

    @property
    def _settle_s(self) -> float:
        """Shortest time since the last pulse (s) the MVM cache rule counts: t_read."""
        return self.params.t_read

    def _fabricate(self, rng: np.random.Generator) -> None:
        """Draw device-to-device variation and defects; start all devices RESET at t = 0.

        Fabrication defects are devices that wear out on their very first RESET, so
        stuck-at-SET devices sit at g_sat with the drift and noise of that state.
        """
        p, n = self.params, self.size
        self.g_sat = (
            p.g_max * np.maximum(1 + p.g_max_spread * rng.standard_normal(n), 0.1)
        ).astype(np.float32)
        self.sens = np.exp(p.sensitivity_spread * rng.standard_normal(n)).astype(np.float32)
        endurance = p.endurance_median * np.exp(p.endurance_spread * rng.standard_normal(n))
        self.cycles_left = np.clip(endurance, 1, _UINT32_MAX).astype(np.uint32)
        u = rng.random(n)
        defect_set = u < p.stuck_set_fraction
        defect_reset = ~defect_set & (u < p.stuck_set_fraction + p.stuck_reset_fraction)
        self.flags = np.where(
            rng.random(n) < p.endurance_stuck_set_fraction, K.WEARS_TO_SET, np.uint8(0)
        ).astype(np.uint8)
        power_up_flags = np.where(
            defect_set, K.WEARS_TO_SET, np.where(defect_reset, np.uint8(0), self.flags)
        )
        power_up_cycles = np.where(defect_set | defect_reset, 1, self.cycles_left)
        self.g_prog = np.empty(n, dtype=np.float32)
        self.event = np.zeros(n, dtype=np.uint32)
        self.nu = np.empty(n, dtype=np.float32)
        self.q_s = np.empty(n, dtype=np.float32)
        self.pulse_count = np.zeros(n, dtype=np.uint32)
        ev = self._new_event(0.0)
        amp, drive = np.array([p.v_reset]), np.zeros(1, np.float32)
        no_drift = np.zeros(1, np.float32)
        self._pulse_kernel(
            self._all,
            n,
            amp,
            drive,
            1,
            ev,
            no_drift,
            no_drift,
            self._event_key(0.0),
            new_key(rng),
            power_up_flags,
            power_up_cycles.astype(np.uint32),
        )
        self.pulse_count[:] = 0
        self.flags |= power_up_flags & K.STUCK
        self.cycles_left[defect_set | defect_reset] = 0

    # -- programming events -----------------------------------------------------------
    def _tables(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        return K.time_tables(
            self._event_times[: self._n_events], now, self.params.t0, self.params.t_read
        )

    def _relax_h(self, now: float) -> np.ndarray:
        """Per-event relaxation progress at ``now`` (pcm_kernels.relax_progress)."""
        p = self.params
        tau = p.relax_tau if (p.relax_mean or p.relax_std) else 0.0
        return K.relax_progress(self._event_times[: self._n_events], now, tau, p.relax_t_end)

    def _event_key(self, t: float) -> np.uint64:
        """Relaxation key of a programming event at time ``t`` (s)."""
        return K.event_keys(self._relax_key, np.array([t]))[0]

    def _refresh_relax_z(self) -> None:
        """Rebuild every device's relaxation normal from the events (after a restore)."""
        keys = K.event_keys(self._relax_key, self._event_times[: self._n_events])
        with threads_for(self.size):
            K.relax_z_kernel(self.event, keys, self._relax_z)

    # -- state ------------------------------------------------------------------------
    @property
    def stuck(self) -> np.ndarray:
        """Boolean (rows, cols) map of devices stuck at SET or RESET (ground truth)."""
        return ((self.flags & K.STUCK) != 0).reshape(self.shape)

    # -- operations -------------------------------------------------------------------
    def read(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Read-noisy conductance in S (float32) of devices ``idx`` (flat), or of all.

        A read takes ``t_array_read`` of virtual time and samples the devices in the
        middle of that window: a verify read right after a pulse sees the 1/f noise
        accumulated over about 50 us (2.1 Q_s G), the 0.2-0.5 uS read noise at verify
        that the programming tolerances assume, not the noise-free value of 0 s.
        """
        idx, n = self._selected(idx)
        now = self.clock.now() + 0.5 * self.params.t_array_read
        log_t, width = self._tables(now)
        relax = self._relax_h(now)
        out = np.empty(n, dtype=np.float32)
        state = (self.g_prog, self.event, self.nu, self.q_s)
        tables = (log_t, width, relax, self._relax_z, self._c)
        with threads_for(n):
            K.read_kernel(idx, n, self._key(), *state, *tables, out)
        self.clock.advance(self.params.t_array_read)
        return out

    def conductance(self) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free drifted and relaxed conductance and read-noise std (both S, shape
        (rows, cols))."""
        now = self.clock.now()
        log_t, width = self._tables(now)
        tables = (log_t, width, self._relax_h(now), self._relax_z, self._c)
        g = np.empty(self.size, dtype=np.float32)
        s = np.empty(self.size, dtype=np.float32)
        with threads_for(self.size):
            K.mean_sigma_kernel(self.g_prog, self.event, self.nu, self.q_s, *tables, g, s)
        return g.reshape(self.shape), s.reshape(self.shape)

    def set_drive(self, amplitude: np.ndarray, width: np.ndarray) -> np.ndarray:
        """SET drive factor (dimensionless, >= 0) of pulses of this height (V) and width (s).

        Linear in the height above v_set_min (1 at v_set_ref) and sub-linear in width.
        """
        p = self.params
        excess = np.maximum(np.abs(amplitude) - p.v_set_min, 0.0) / (p.v_set_ref - p.v_set_min)
        return excess * (width / p.width_ref) ** p.width_exponent

    def pulse(
        self, idx: np.ndarray | None, amplitude: np.ndarray, width: np.ndarray, count: int = 1
    ) -> None:
        """Apply ``count`` pulses to devices ``idx`` (flat), or to all.

        amplitude: pulse height in V (length 1 or len(idx)); the sign is ignored (PCM
        switching is thermal). width: pulse width in s (length 1 or len(idx)).
        """
        idx, n = self._selected(idx)
        if n == 0:
            return
        amplitude = kernel_array(amplitude, np.float64).ravel()
        width = kernel_array(width, np.float64).ravel()
        drive = np.ascontiguousarray(self.set_drive(amplitude, width), dtype=np.float32)
        t_start = self.clock.now()
        gap = self.params.t_pulse_gap
        duration = count * (float(width.max()) + gap)
        # the devices are programmed at the end of the last pulse; the clock moves on by
        # the trailing gap
        t_event = t_start + duration - gap
        ev = self._begin_pulse(t_start, duration, t_event)
        log_t, _ = self._tables(t_start)
        relax = self._relax_h(t_start)
        with threads_for(n * count):
            args = (
                amplitude,
                drive,
                count,
                ev,
                log_t,
                relax,
                self._event_key(t_event),
                self._key(),
            )
            self._pulse_kernel(idx, n, *args, self.flags, self.cycles_left)
        self.clock.advance(duration)

    def _pulse_kernel(
        self, idx, n, amplitude, drive, count, ev, log_t, relax, zkey, key, flags, cycles
    ):
        """pcm_kernels.pulse_kernel on this array's state (flags and cycles passed in, so
        fabrication can run it on provisional copies)."""
        state = (self.g_prog, self.event, self.nu, self.q_s, self.g_sat, self.sens)
        rel = (relax, self._relax_z, zkey)
        pulse = (idx, n, amplitude, drive, count, ev, log_t, *rel, self._c, key)
        K.pulse_kernel(*pulse, *state, flags, cycles, self.pulse_count)
