"""Firmware of the emulated test board: protocol frames in, reply frames out.

The emulated board answers the xbarlab board protocol (xbarlab.board_protocol,
docs/board-protocol.md) on top of an emulated :class:`~xbarlab.emulator.PCMArray`
(unipolar: the pulse polarity is ignored) or :class:`~xbarlab.emulator.rram.RRAMArray`
(bipolar: polarity +1 SETs, -1 RESETs), as a real FPGA/MCU board would on top of its
DACs and ADCs:

- it enforces its own safety limits: a request beyond them gets an ERROR
  (SAFETY_LIMIT) reply and nothing acts;
- it answers a repeated request (same type, sequence number and payload CRC)
  from a cache of its last replies without acting again, so a driver's retry
  never applies pulses twice and never draws read noise twice (the emulated
  chip's state then evolves exactly as without the retry);
- PROGRAM runs write-verify on the board (a small vectorised loop here, the
  FPGA's state machine on a real board).

One firmware instance serves every connection; a lock serialises requests.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from xbarlab import board_protocol as bp
from xbarlab.emulator.pcm import PCMArray
from xbarlab.emulator.rram_params import FULL_RESET_FRACTION, SET_RANGE_TOP_FRACTION, RRAMParams
from xbarlab.errors import ConfigError, SafetyError, SpecError
from xbarlab.limits import SafetyLimits

FIRMWARE_VERSION = "xbarlab-emulated-1.0"
#: replies kept for answering retries (a driver retries only its latest request)
CACHE_SIZE = 8
#: raw READ codes: conductance resolution g_max / 2**READ_ADC_BITS (S per code)
READ_ADC_BITS = 15
#: longest TIME sleep the board accepts in one request, s (one year)
MAX_SLEEP_S = 3.2e7
#: technologies the board serves (``chip.params.technology``)
TECHNOLOGIES = ("pcm", "rram")
#: RRAM: lowest gradual pulse height as a fraction of the way from threshold to reference
_RANGE_BOTTOM = 0.1
#: pulse-height limit in V of an emulated RRAM chip: forming ramps of pristine 1T1R
#: HfOx cells end at 4 V (forming voltages of 2.5-3.5 V)
RRAM_MAX_VOLTAGE = 4.0


def rram_limits() -> SafetyLimits:
    """The emulated RRAM chip's default limits: the generic ones with a 4 V pulse limit."""
    return SafetyLimits(max_voltage=RRAM_MAX_VOLTAGE)


def chip_description(chip, limits: SafetyLimits) -> dict:
    """Window, recommended pulses and converters of an emulated PCM or RRAM chip, SI units.

    Keys: technology, unipolar, g_min, g_max (S), set_pulse, reset_pulse ((V, s)),
    reset_polarity (+1 or -1), set_amplitude_range (V), adc_lsb (A), periphery (dict);
    an RRAM chip adds reset_amplitude_range (V) and gradual_reset_pulse ((V, s)).
    ConfigError for a chip of another technology.
    """
    tech = chip.params.technology
    if tech == "pcm":
        return pcm_description(chip, limits)
    if tech == "rram":
        return rram_description(chip, limits)
    raise ConfigError(f"the emulated board serves {' and '.join(TECHNOLOGIES)} chips, not {tech!r}")


def pcm_description(chip: PCMArray, limits: SafetyLimits) -> dict:
    """:func:`chip_description` of a PCM chip (unipolar: RESET is a taller pulse).

    The recommended SET pulses sit 10% inside the model's thresholds, the RESET
    pulse halfway between the melting threshold and the voltage limit; the lowest
    programmable conductance is two RESET spreads above the RESET mean (g_min is only
    the device's physical floor).
    """
    p, pp = chip.params, chip.periphery
    return {
        "technology": "pcm",
        "unipolar": True,
        "reset_polarity": 1,
        "g_min": max(p.g_min, p.reset_g_mean + 2 * p.reset_g_std),
        "g_max": p.g_max,
        "set_pulse": (p.v_set_ref, p.width_ref),
        "reset_pulse": (p.v_reset + 0.5 * (limits.max_voltage - p.v_reset), p.width_ref),
        "set_amplitude_range": (
            p.v_set_min + 0.1 * (p.v_set_ref - p.v_set_min),
            p.v_set_ref + 0.9 * (p.v_reset - p.v_set_ref),
        ),
        "adc_lsb": pp.adc_lsb(p.g_max) if pp.adc_codes else 0.0,
        "periphery": pp.describe(p.g_max),
    }


def gradual_range(p: RRAMParams, polarity: int) -> tuple[float, float]:
    """(lowest, highest) RRAM pulse height in V over which pulses of ``polarity`` act
    gradually: a tenth of the way from threshold to reference, up to the height of
    nominal switching fraction SET_RANGE_TOP_FRACTION."""
    th, ref = (p.v_set_th, p.v_set_ref) if polarity > 0 else (p.v_reset_th, p.v_reset_ref)
    return (th + _RANGE_BOTTOM * (ref - th), p.amplitude_for(polarity, SET_RANGE_TOP_FRACTION))


def rram_description(chip, limits: SafetyLimits) -> dict:
    """:func:`chip_description` of a bipolar RRAM chip (SET +1, RESET -1).

    g_min is two device-to-device spreads above the nominal lower bound (every device
    but a few reaches it); g_max is the nominal upper bound. The SET pulse is the
    reference gradual SET; the RESET pulse a strong one that takes a device to near its
    lower bound (switching fraction FULL_RESET_FRACTION). SpecError if the SET range or
    that RESET pulse needs more than ``limits.max_voltage``.
    """
    p, pp = chip.params, chip.periphery
    lo, hi = gradual_range(p, 1)
    reset_amp = p.amplitude_for(-1, FULL_RESET_FRACTION)
    for name, v in (("SET range top", hi), ("full RESET pulse", reset_amp)):
        if v > limits.max_voltage:
            raise SpecError(
                f"the RRAM model's {name} needs {v:.3g} V, above the {limits.max_voltage:g} V "
                "voltage limit; lower the thresholds (v_set_th, v_reset_th) or v_slope"
            )
    return {
        "technology": "rram",
        "unipolar": False,
        "reset_polarity": -1,
        "g_min": min(p.g_min * (1 + 2 * p.g_min_spread), 0.5 * p.g_max),
        "g_max": p.g_max,
        "set_pulse": (p.v_set_ref, p.width_ref),
        "reset_pulse": (reset_amp, p.width_ref),
        "set_amplitude_range": (lo, hi),
        "reset_amplitude_range": gradual_range(p, -1),
        "gradual_reset_pulse": (p.v_reset_ref, p.width_ref),
        "adc_lsb": pp.adc_lsb(p.g_max) if pp.adc_codes else 0.0,
        "periphery": pp.describe(p.g_max),
    }


def apply_pulse(chip, idx, amplitude, width, count: int = 1, polarity: int = 1) -> None:
    """Pulse an emulated chip: polarity goes to a bipolar (RRAM) chip, a unipolar (PCM)
    chip switches on amplitude and width alone."""
    if chip.params.technology == "pcm":
        chip.pulse(idx, amplitude, width, count)
    else:
        chip.pulse(idx, amplitude, width, count, polarity=polarity)


class BoardFirmware:
    """Request frames in, reply frame bytes out, over one emulated chip.

    Parameters
    ----------
    chip : PCMArray or RRAMArray
        The emulated array behind the board (its clock is the board clock). A PCM
        board is unipolar; an RRAM board passes each PULSE's polarity to the chip.
    limits : SafetyLimits, optional
        The board's own limits, enforced on every request and reported by HELLO.
    board_id : str
        Identity reported by HELLO.
    lock : threading.Lock, optional
        Serialises requests; pass the lock of every other way into the same chip (the
        emulated lab's instruments). A new lock by default.

    Attributes
    ----------
    replays : int
        Requests answered from the reply cache (retries that did not act again).
    """

    def __init__(
        self,
        chip,
        limits: SafetyLimits | None = None,
        board_id: str = "xbarlab-emulated-board",
        *,
        lock: threading.Lock | None = None,
    ):
        self.chip = chip
        self.limits = limits or SafetyLimits()
        self.lock = lock if lock is not None else threading.Lock()
        self.replays = 0
        self._cache: OrderedDict[int, tuple[int, int, bytes]] = OrderedDict()
        self._desc = chip_description(chip, self.limits)
        self.hello = self._hello(board_id)
        self._handlers = {
            bp.MsgType.HELLO: lambda req: self.hello,
            bp.MsgType.READ: self._read,
            bp.MsgType.PULSE: self._pulse,
            bp.MsgType.MVM: self._mvm,
            bp.MsgType.PROGRAM: self._program,
            bp.MsgType.TIME: self._time,
        }

    def _hello(self, board_id: str) -> bp.HelloReply:
        chip, d = self.chip, self._desc
        caps = {"read", "pulse", "mvm", "mvm_transpose", "per_device_pulses"}
        caps |= {"virtual_time", "raw_adc", "program"}
        if d["unipolar"]:
            caps.add("unipolar")
        if chip.periphery.differential:
            caps.add("differential_columns")
        return bp.HelloReply(
            board_id=board_id,
            firmware=FIRMWARE_VERSION,
            rows=chip.rows,
            cols=chip.cols,
            mvm_shape=chip.mvm_shape,
            technology=d["technology"],
            capabilities=frozenset(caps),
            limits=self.limits,
            g_min=d["g_min"],
            g_max=d["g_max"],
            v_read=0.2,
            set_pulse=d["set_pulse"],
            reset_pulse=d["reset_pulse"],
            set_amplitude_range=d["set_amplitude_range"],
            read_lsb=d["g_max"] / 2**READ_ADC_BITS,
            adc_lsb=d["adc_lsb"],
            periphery={**d["periphery"], "seed": chip.seed},
        )

    def handle(self, frame: bp.Frame) -> bytes:
        """The reply frame for a request frame (from the cache if it is a repeat)."""
        crc = frame.crc  # verified by the decoder: not computed again over the payload
        with self.lock:
            cached = self._cache.get(frame.seq)
            if cached is not None and cached[:2] == (frame.type, crc):
                self.replays += 1
                return cached[2]
            reply = bp.reply_frame(frame.type, frame.seq, self._dispatch(frame))
            self._cache[frame.seq] = (frame.type, crc, reply)
            self._cache.move_to_end(frame.seq)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return reply

    def _dispatch(self, frame: bp.Frame):
        try:
            request = bp.decode_request(frame)
            return self._handlers[bp.MsgType(frame.type)](request)
        except bp.ProtocolError as exc:
            return bp.ErrorReply(exc.code, frame.type, str(exc))
        except SafetyError as exc:
            return bp.ErrorReply(bp.ErrorCode.SAFETY_LIMIT, frame.type, str(exc))
        except (ConfigError, ValueError) as exc:
            return bp.ErrorReply(bp.ErrorCode.BAD_ARGUMENT, frame.type, str(exc))
        except Exception as exc:  # a firmware bug must not take the board down
            return bp.ErrorReply(bp.ErrorCode.INTERNAL, frame.type, f"{type(exc).__name__}: {exc}")

    # -- commands ------------------------------------------------------------------
    def _flat(self, sel: bp.Selection) -> np.ndarray | None:
        return sel.flat(self.chip.rows, self.chip.cols)

    def _check_read_voltage(self, v_read: float) -> None:
        self.limits.check_read_voltage(v_read)
        if not v_read > 0:
            raise bp.ProtocolError(bp.ErrorCode.BAD_ARGUMENT, f"v_read = {v_read!r} V must be > 0")

    def _read(self, req: bp.ReadRequest) -> bp.ReadReply:
        self._check_read_voltage(req.v_read)
        g = self.chip.read(self._flat(req.sel))
        if not req.raw:
            return bp.ReadReply(g)
        lsb = self.hello.read_lsb
        return bp.ReadReply(np.rint(g / np.float32(lsb)).astype("<i4"), lsb)

    def _pulse(self, req: bp.PulseRequest) -> bp.PulseReply:
        flat = self._flat(req.sel)
        n = self.chip.size if flat is None else flat.size
        if req.polarity not in (1, -1):
            raise bp.ProtocolError(
                bp.ErrorCode.BAD_ARGUMENT, f"polarity {req.polarity} is not +1 or -1"
            )
        for name, arr in (("amplitude", req.amplitude), ("width", req.width)):
            if arr.ndim != 1 or arr.size not in (1, n) or arr.dtype != np.float64:
                raise bp.ProtocolError(
                    bp.ErrorCode.BAD_ARGUMENT,
                    f"{name} must be float64 with 1 or {n} values, got {arr.dtype} {arr.shape}",
                )
        if flat is not None and np.unique(flat).size != flat.size:
            raise bp.ProtocolError(bp.ErrorCode.BAD_ARGUMENT, "a device is selected twice")
        self.limits.check_pulse(req.amplitude, req.width, req.count)
        t0 = self.chip.clock.now()
        if n:
            apply_pulse(self.chip, flat, req.amplitude, req.width, req.count, req.polarity)
        return bp.PulseReply(n, self.chip.clock.now() - t0)

    def _mvm(self, req: bp.MvmRequest) -> bp.MvmReply:
        n_in = self.chip.mvm_shape[1 if req.transpose else 0]
        x = req.x
        if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != n_in:
            raise bp.ProtocolError(
                bp.ErrorCode.BAD_ARGUMENT,
                f"MVM input must be float32 (batch, {n_in}), got {x.dtype} {x.shape}",
            )
        self.limits.check_read_voltage(x, "MVM input voltage")
        out, saturated = self.chip.mvm(x, req.transpose)  # the chip makes its own kernel-ready copy
        lsb = self._desc["adc_lsb"]
        if not req.raw:
            return bp.MvmReply(out, saturated)
        if lsb == 0.0:
            raise bp.ProtocolError(bp.ErrorCode.BAD_ARGUMENT, "this board's MVM has no ADC codes")
        codes = np.divide(out, np.float32(lsb))
        np.rint(codes, out=codes)  # in place: one temporary for the whole conversion
        peak = max(codes.max(initial=0), -codes.min(initial=0))
        return bp.MvmReply(codes.astype("<i2" if peak < 2**15 else "<i4"), saturated, lsb)

    def _time(self, req: bp.TimeRequest) -> bp.TimeReply:
        if req.op == bp.TimeOp.SLEEP:
            if not 0.0 <= req.dt <= MAX_SLEEP_S:
                raise bp.ProtocolError(
                    bp.ErrorCode.BAD_ARGUMENT, f"sleep dt = {req.dt!r} s outside 0..{MAX_SLEEP_S:g}"
                )
            self.chip.clock.sleep(req.dt)
        return bp.TimeReply(self.chip.clock.now(), True)

    def _program(self, req: bp.ProgramRequest) -> bp.ProgramReply:
        self._check_read_voltage(req.v_read)
        flat = self._flat(req.sel)
        idx = np.arange(self.chip.size) if flat is None else flat
        targets = req.targets
        if targets.dtype != np.float32 or targets.shape != idx.shape:
            raise bp.ProtocolError(
                bp.ErrorCode.BAD_ARGUMENT,
                f"targets must be float32 of shape {idx.shape}, got {targets.dtype} "
                f"{targets.shape}",
            )
        if np.unique(idx).size != idx.size:
            raise bp.ProtocolError(bp.ErrorCode.BAD_ARGUMENT, "a device is selected twice")
        if not (req.tolerance > 0 and 1 <= req.max_iterations <= self.limits.max_pulse_count):
            raise bp.ProtocolError(
                bp.ErrorCode.BAD_ARGUMENT,
                f"tolerance {req.tolerance!r} S must be > 0 and max_iterations "
                f"{req.max_iterations} in 1..{self.limits.max_pulse_count}",
            )
        return write_verify(self.chip, idx, targets, req.tolerance, req.max_iterations, self._desc)


def write_verify(
    chip,
    idx: np.ndarray,
    targets: np.ndarray,
    tolerance: float,
    max_iterations: int,
    desc: dict,
) -> bp.ProgramReply:
    """The board's write-verify loop: read the unfinished devices, RESET those above
    target + tolerance, SET those below with an amplitude that grows with the error.

    A unipolar (PCM) chip gets the full RESET pulse and SET heights proportional to
    the error inside ``set_amplitude_range``. A bipolar (RRAM) chip gets gradual pulses
    of both polarities whose heights aim at a share of the error
    (:func:`bipolar_amplitudes`).

    One read and at most two pulse calls per round, vectorised over the devices.
    """
    n = idx.size
    converged = np.zeros(n, dtype=bool)
    pulses = np.zeros(n, dtype=np.uint32)
    g_final = np.zeros(n, dtype=np.float32)
    set_width, reset_width = desc["set_pulse"][1], desc["reset_pulse"][1]
    unipolar = desc["unipolar"]
    amplitudes = _pcm_amplitudes if unipolar else bipolar_amplitudes(chip.params, desc)
    rounds = 0
    while rounds < max_iterations:
        active = np.flatnonzero(~converged)
        if active.size == 0:
            break
        rounds += 1
        g = chip.read(idx[active])
        g_final[active] = g
        err = targets[active] - g
        converged[active[np.abs(err) <= tolerance]] = True
        up, down = err > tolerance, err < -tolerance
        high, low = active[down], active[up]
        if high.size:
            amplitude = amplitudes(-1, err[down], g[down], desc)
            pol = desc["reset_polarity"]
            apply_pulse(chip, idx[high], amplitude, np.array([reset_width]), polarity=pol)
        if low.size:
            amplitude = amplitudes(1, err[up], g[up], desc)
            apply_pulse(chip, idx[low], amplitude, np.array([set_width]))
        pulses[high] += 1
        pulses[low] += 1
    return bp.ProgramReply(converged, pulses, g_final, rounds)


def _pcm_amplitudes(polarity: int, err: np.ndarray, g: np.ndarray, desc: dict) -> np.ndarray:
    """PCM pulse heights in V: the full RESET pulse; SET proportional to the error."""
    if polarity < 0:
        return np.array([desc["reset_pulse"][0]])
    lo, hi = desc["set_amplitude_range"]
    return lo + (hi - lo) * np.clip(err / (desc["g_max"] - desc["g_min"]), 0.0, 1.0)


#: nominal switching fractions of the board's RRAM pulse-height table (per pulse)
_FRACTIONS = np.geomspace(1e-4, SET_RANGE_TOP_FRACTION, 48)
#: share of a device's error the board's RRAM write-verify aims at per pulse (below 1:
#: cycle-to-cycle noise of tens of percent would make full steps overshoot)
_AIM = 0.5


def bipolar_amplitudes(p: RRAMParams, desc: dict):
    """The RRAM board's pulse-height chooser ``(polarity, err, g, desc) -> heights in V``.

    A device at ``g`` (S) with error ``err`` (S) gets the height whose nominal switching
    fraction (the model's ``amplitude_for``, tabulated once and interpolated in log
    fraction) moves it by _AIM of the error out of its room to the bound it moves
    toward (g_max - g for SET, g - model g_min for RESET), clipped into the gradual
    range of that polarity (``set_amplitude_range``, ``reset_amplitude_range``).
    """
    log_f = np.log(_FRACTIONS)
    tables = {pol: np.array([p.amplitude_for(pol, f) for f in _FRACTIONS]) for pol in (1, -1)}
    ranges = {1: desc["set_amplitude_range"], -1: desc["reset_amplitude_range"]}

    def choose(polarity: int, err: np.ndarray, g: np.ndarray, desc: dict) -> np.ndarray:
        room = desc["g_max"] - g if polarity > 0 else g - p.g_min
        frac = _AIM * np.abs(err) / np.maximum(room, 1e-3 * desc["g_max"])
        frac = np.clip(frac, _FRACTIONS[0], _FRACTIONS[-1])
        amplitude = np.interp(np.log(frac), log_f, tables[polarity])
        return np.clip(amplitude, *ranges[polarity])

    return choose
