"""An emulated SOT-MRAM array: binary MTJs with in-memory AND/OR sensing (seed 003).

Struct-of-arrays state, flattened row-major over (rows, cols): one uint8 per device
(1 = parallel P, high conductance; 0 = antiparallel AP, low conductance) plus the two
fabricated conductances of each device (float32), drawn once from the chip seed with
the Monte-Carlo variation of RA (sigma 5 %) and TMR (sigma 10 %) of seed 003.

Logic mode: two rows of every selected column are sensed at once, so the column
carries I = v_read (G_a + G_b); the sense amplifier compares it with a reference
current placed between two nominal sum conductances (AND: between (P, AP) and
(P, P); OR: between (AP, AP) and (P, AP)), with a per-column offset fixed at
fabrication and fresh noise per operation. Devices far from nominal therefore give
wrong AND/OR bits: the logic error rate follows from the sense margin.

Randomness: three generators spawned from the seed (fabrication, sense-amplifier
offsets, operations), so the same seed and call sequence give identical results.
This layer knows nothing about safety limits: the chipdrivers backend validates.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from xbarlab.emulator.array_base import ArrayBase, generator
from xbarlab.emulator.mram_params import LOGIC_OPS, MRAMParams
from xbarlab.emulator.mvm import ArrayMatrices
from xbarlab.emulator.rng import new_key
from xbarlab.errors import ConfigError

#: bump when the get_state layout changes
STATE_FORMAT = 1
#: smallest factor a fabricated RA or TMR keeps (a normal draw below it is clipped)
_MIN_FACTOR = 0.05


class MRAMArray(ArrayBase):
    """A rows x cols SOT-MRAM array with Monte-Carlo device variation and logic sensing.

    ``MRAMArray(rows, cols, params=None, seed=0, clock=None, periphery=None)``: the
    parameters of :class:`~xbarlab.emulator.array_base.ArrayBase`, ``params`` an
    :class:`~xbarlab.emulator.mram_params.MRAMParams` (device and sense amplifier; its
    defaults when omitted); ``periphery`` serves the (optional) analog MVM and must not
    be differential.
    """

    params_type = MRAMParams
    params: MRAMParams

    def _build(self) -> None:
        if self.rows < 1 or self.cols < 1:
            raise ConfigError(f"MRAM array shape must be >= 1 x 1, got {self.rows} x {self.cols}")
        if self.periphery.differential:
            raise ConfigError("the emulated MRAM array has no differential column pairs")
        fab_seq, sense_seq, ops_seq, periph_seq = np.random.SeedSequence(self.seed).spawn(4)
        self._rng = generator(ops_seq)
        self._fabricate(generator(fab_seq))
        sense_rng = generator(sense_seq)
        self.sense_offset = (
            self.params.sense_offset * sense_rng.standard_normal(self.cols)
        ).astype(np.float32)
        self._init_readout(generator(periph_seq), self.params.g_p)

    def _fabricate(self, rng: np.random.Generator) -> None:
        """Draw each device's P and AP conductances; all devices start AP (logic 0)."""
        p, n = self.params, self.size
        ra = p.ra_product * np.maximum(1 + p.ra_sigma * rng.standard_normal(n), _MIN_FACTOR)
        tmr = p.tmr * np.maximum(1 + p.tmr_sigma * rng.standard_normal(n), _MIN_FACTOR)
        g_p = p.junction_area / ra
        self.g_p = g_p.astype(np.float32)
        self.g_ap = (g_p / (1 + tmr)).astype(np.float32)
        self.state = np.zeros(n, dtype=np.uint8)

    @property
    def bits(self) -> np.ndarray:
        """Stored bits as a (rows, cols) bool array (True = P): ground truth for tests."""
        return self.state.reshape(self.shape).astype(bool)

    # -- read -------------------------------------------------------------------------
    def conductance(self) -> np.ndarray:
        """Noise-free conductance in S (float32, shape (rows, cols))."""
        return np.where(self.state == 1, self.g_p, self.g_ap).reshape(self.shape)

    def read(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Read-noisy conductance in S (float32) of devices ``idx`` (flat), or of all."""
        sel = slice(None) if idx is None else np.asarray(idx, dtype=np.intp)
        g = np.where(self.state[sel] == 1, self.g_p[sel], self.g_ap[sel])
        if self.params.read_noise > 0:
            z = self._rng.standard_normal(g.shape, dtype=np.float32)
            g = g * (1 + np.float32(self.params.read_noise) * z)
        self.clock.advance(self.params.t_array_read)
        return np.maximum(g, 0).astype(np.float32, copy=False)

    # -- write ------------------------------------------------------------------------
    def switch_probability(self, amplitude: np.ndarray, width: np.ndarray) -> np.ndarray:
        """Probability (float64) that one pulse of this height (V) and width (s) switches
        a device that is not yet in the target state.

        The drive current |V| / r_write is compared with the critical current, which
        rises as width_ref / width below width_ref; a thermal switching curve of relative
        width switch_sigma; a residual write_error_rate above threshold.
        """
        p = self.params
        current = np.abs(np.asarray(amplitude, dtype=np.float64)) / p.r_write
        i_c = p.i_switch * np.maximum(1.0, p.width_ref / np.asarray(width, dtype=np.float64))
        drive = current / i_c - 1.0
        if p.switch_sigma > 0:
            prob = ndtr(drive / p.switch_sigma)  # standard normal CDF
        else:
            prob = (drive >= 0).astype(np.float64)
        return prob * (1.0 - p.write_error_rate)

    def pulse(
        self,
        idx: np.ndarray | None,
        polarity: int,
        amplitude: np.ndarray,
        width: np.ndarray,
        count: int = 1,
    ) -> None:
        """Apply ``count`` SOT write pulses to devices ``idx`` (flat), or to all.

        polarity: +1 writes P (logic 1), -1 writes AP (logic 0). amplitude: pulse height
        in V, width: pulse width in s (each of length 1 or len(idx)).
        """
        sel = np.arange(self.size) if idx is None else np.asarray(idx, dtype=np.intp)
        amplitude = np.asarray(amplitude, dtype=np.float64).ravel()
        width = np.asarray(width, dtype=np.float64).ravel()
        if sel.size:
            target = np.uint8(1 if polarity > 0 else 0)
            p_one = self.switch_probability(amplitude, width)
            p_any = 1.0 - (1.0 - p_one) ** int(count)
            if np.all(p_any >= 1.0):
                switched = np.ones(sel.size, dtype=bool)
            else:
                switched = self._rng.random(sel.size) < p_any
            self.state[sel[switched]] = target
            self._version += 1
        duration = int(count) * (float(width.max()) + self.params.t_pulse_gap)
        self.clock.advance(duration)

    # -- in-memory logic --------------------------------------------------------------
    def logic(self, op: str, row_a: int, row_b: int, cols: np.ndarray | None = None) -> np.ndarray:
        """Sense rows ``row_a`` and ``row_b`` together in every column of ``cols`` (all
        when None) and return the sense amplifier's bits (bool) for ``op`` ("and"/"or").
        """
        if op not in LOGIC_OPS:
            raise ConfigError(f"logic op must be one of {', '.join(LOGIC_OPS)}, got {op!r}")
        c = np.arange(self.cols) if cols is None else np.asarray(cols, dtype=np.intp)
        a, b = row_a * self.cols + c, row_b * self.cols + c
        g_sum = np.where(self.state[a] == 1, self.g_p[a], self.g_ap[a]) + np.where(
            self.state[b] == 1, self.g_p[b], self.g_ap[b]
        )
        p = self.params
        v = p.v_read
        i_ref = v * p.reference_conductance(op)
        threshold = i_ref * (1.0 + self.sense_offset[c].astype(np.float64))
        current = v * g_sum.astype(np.float64)
        if p.sense_noise > 0:
            current = current + p.sense_noise * i_ref * self._rng.standard_normal(c.size)
        self.clock.advance(p.t_array_read)
        return current > threshold

    # -- analog MVM (binary weights): ArrayBase.mvm over these matrices ---------------
    def _array_matrices(self, transpose: bool) -> ArrayMatrices:
        """The binary conductances and their read-noise variance (no IR drop), the same
        in both directions; recomputed after a write (binary states do not drift)."""
        hit = self._mvm_cache.get(False)
        if hit is not None and hit[0] == self._version:
            return hit[1]
        g = np.ascontiguousarray(self.conductance())
        var = None
        if self.periphery.device_noise and self.params.read_noise > 0:
            var = np.ascontiguousarray((self.params.read_noise * g) ** 2, dtype=np.float32)
        mats = ArrayMatrices(g, var)
        self._mvm_cache[False] = (self._version, mats)
        return mats

    def _mvm_key(self) -> np.uint64:
        return new_key(self._rng)

    # -- state ------------------------------------------------------------------------
    def get_state(self, copy: bool = True) -> dict:
        """The full chip state: ``{"meta": JSON-able dict, "state": uint8 bits}``.

        Fabrication draws are rederived from (seed, shape, params), which must match.
        """
        meta = {**self._state_meta(STATE_FORMAT), "rng": self._rng.bit_generator.state}
        return {"meta": meta, "state": self.state.copy() if copy else self.state}

    def set_state(self, state: dict) -> None:
        """Restore a :meth:`get_state` copy; ConfigError (chip untouched) on a mismatch."""
        meta = self._checked_meta(state, STATE_FORMAT, "MRAM chip state")
        bits = state.get("state")
        if not isinstance(bits, np.ndarray) or bits.dtype != np.uint8 or bits.shape != (self.size,):
            raise ConfigError(f"MRAM chip state array 'state' must be uint8 ({self.size},)")
        if bits.size and int(bits.max()) > 1:
            raise ConfigError("MRAM chip state array 'state' must hold only 0 and 1")
        rng = np.random.Generator(np.random.PCG64())
        try:
            rng.bit_generator.state = meta.get("rng")
            t = float(meta["time_s"])
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"MRAM chip state has a bad rng or time entry ({exc})") from None
        self.state[:] = bits
        self._rng = rng
        self.clock.restore(t)
        self._version += 1
