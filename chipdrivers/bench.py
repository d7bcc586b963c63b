"""The bench backend: SMU, pulse generator and switch matrix behind ``Crossbar``.

Spec: ``bench:PATH/station.yaml`` (see :mod:`xbarlab.chipdrivers.station` for the file).

A read routes one device at a time (an SMU measures one current): exclusive-close the
SMU bus on the device's row and the ground bus on its column, source ``v_read``,
measure I, G = I / V. A pulse routes rectangular blocks of the selection (rows x cols
whose lines are all closed address exactly those devices), configures the pulse
generator once and triggers it per block. The loops live here, behind the vectorised
``Crossbar`` API. There is no analog MVM on a bench (capability ``mvm`` absent).

Every operation leaves the bench safe (SMU output off, generator output off, all
crosspoints open) on every exit path, and ``close`` does the same before the
connections close. Safety limits are checked by :class:`CheckedCrossbar` before any
command is sent; the station's compliance current is programmed into the SMU.

Clock: :class:`~xbarlab.clock.RealClock`. An emulated bench has a virtual clock, but
a real bench has none to ask for, so the backend never pretends; in-process callers
(tests) may pass the emulated chip's clock explicitly.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np

from xbarlab.chipdrivers.base import CheckedCrossbar
from xbarlab.chipdrivers.crossbar import ChipInfo, PulseShape
from xbarlab.chipdrivers.factory import Spec
from xbarlab.chipdrivers.station import Station, load_station
from xbarlab.clock import Clock, RealClock
from xbarlab.errors import BackendError, SpecError

#: open order; close runs in reverse, so the SMU and the generator go safe before
#: the switch opens its crosspoints
_ROLES = ("switch", "pulse", "smu")


class BenchCrossbar(CheckedCrossbar):
    """A ``Crossbar`` on an instrument bench described by a :class:`Station`.

    Parameters
    ----------
    station : Station
        The validated station.yaml.
    instruments : dict, optional
        Already-connected drivers by role (``smu``, ``pulse``, ``switch``); by default
        the station's drivers are opened. They are shut down and closed by ``close``.
    clock : Clock, optional
        Time source; :class:`RealClock` by default.
    spec : str
        The spec string the bench was opened with (``info.backend``).
    """

    def __init__(
        self,
        station: Station,
        instruments: dict | None = None,
        *,
        clock: Clock | None = None,
        spec: str = "",
    ):
        self.station = station
        self.clock = clock or RealClock()
        self.info = _chip_info(station, spec)
        self._wiring = station.wiring
        with ExitStack() as stack:
            self._inst = _connect(station, instruments, stack)
            self._configure()
            self._stack = stack.pop_all()

    def _configure(self) -> None:
        """SMU as voltage source with the station's compliance; everything safe."""
        smu_opts = self.station.instruments["smu"].options
        self._inst["smu"].configure_voltage_source(
            current_limit=self.station.limits.compliance_current, nplc=smu_opts["nplc"]
        )
        self._safe_state()

    def _safe_state(self) -> None:
        """Sources off, every crosspoint open (the state between operations)."""
        try:
            self._inst["smu"].output_enabled = False
            self._inst["pulse"].output_enabled = False
        finally:
            self._inst["switch"].open_all()

    def _route(self, channels: list[str]) -> None:
        """Close exactly ``channels`` and confirm: the switch is another connection, so
        the read-back also makes sure the relays closed before the next instrument acts."""
        switch = self._inst["switch"]
        switch.exclusive_close(channels)
        closed = set(switch.closed_channels())
        if closed != set(channels):
            raise BackendError(
                f"switch matrix closed {sorted(closed)} instead of {sorted(channels)}; "
                "check the station's wiring and the matrix cards"
            )

    def _read(self, flat, v_read):
        rows, cols = self._rows_cols(flat)
        smu, w = self._inst["smu"], self._wiring
        current = np.empty(rows.size, dtype=np.float64)
        try:
            smu.source_voltage = v_read
            smu.output_enabled = True
            for k in range(rows.size):
                self._route([w.smu_rows[rows[k]], w.ground_cols[cols[k]]])
                current[k] = smu.measure_current()
        finally:
            self._safe_state()
        return (current / v_read).astype(np.float32)

    def _pulse(self, flat, polarity, amplitude, width, count):
        # unipolar (PCM): SET or RESET follows from amplitude and width, not polarity;
        # bipolar (RRAM): polarity -1 puts the columns on the pulse bus and grounds the rows
        gen, w = self._inst["pulse"], self._wiring
        edge = self.station.instruments["pulse"].options["edge_time"]
        reverse = polarity < 0 and "unipolar" not in self.info.capabilities
        try:
            gen.configure_pulse(
                amplitude=float(amplitude[0]), width=float(width[0]), edge_time=edge, count=count
            )
            for rows, cols in blocks(flat, self.info.shape):
                if reverse:
                    self._route([*w.ground_rows[rows], *w.pulse_cols[cols]])
                else:
                    self._route([*w.pulse_rows[rows], *w.ground_cols[cols]])
                gen.trigger()
        finally:
            self._safe_state()

    def mvm(self, x, *, transpose: bool = False, return_saturation: bool = False):
        raise BackendError(
            f"backend {self.info.backend!r} has no analog MVM (capability 'mvm' is absent): "
            "a bench routes one SMU to one device at a time; use an emulator or board backend"
        )

    def close(self) -> None:
        """Sources to 0 V and off, crosspoints open, connections closed (idempotent)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            with stack:
                self._safe_state()

    def _rows_cols(self, flat) -> tuple[np.ndarray, np.ndarray]:
        if flat is None:
            flat = np.arange(self.info.rows * self.info.cols)
        return np.divmod(np.asarray(flat), self.info.cols)


def blocks(flat: np.ndarray | None, shape: tuple[int, int]):
    """Split a selection of flat device indices into (rows, cols) blocks whose product
    sets are exactly the selection: rows sharing the same selected columns form a block.

    ``flat=None`` (all devices) is one block.
    """
    rows, cols = shape
    if flat is None:
        yield np.arange(rows), np.arange(cols)
        return
    mask = np.zeros(shape, dtype=bool)
    mask.flat[flat] = True
    used = np.flatnonzero(mask.any(axis=1))
    patterns, inverse = np.unique(mask[used], axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for k, pattern in enumerate(patterns):
        yield used[inverse == k], np.flatnonzero(pattern)


def _connect(station: Station, instruments: dict | None, stack: ExitStack) -> dict:
    """Drivers by role, each registered on ``stack`` so that a failure closes the rest.

    The drivers get the station's limits as their own ceilings, a second line of
    defence behind CheckedCrossbar: the SMU only reads (max_read_voltage, compliance),
    the generator only pulses (max_voltage).
    """
    lim = station.limits
    ceilings = {
        "smu": {"max_voltage": lim.max_read_voltage, "max_current": lim.compliance_current},
        "pulse": {"max_voltage": lim.max_voltage},
        "switch": {},
    }
    out = {}
    for role in _ROLES:
        if instruments is not None:
            out[role] = stack.enter_context(instruments[role])
        else:
            out[role] = stack.enter_context(station.instruments[role].open(**ceilings[role]))
    return out


def _chip_info(station: Station, spec: str) -> ChipInfo:
    chip = station.chip
    unipolar = chip.technology == "pcm"
    return ChipInfo(
        rows=chip.rows,
        cols=chip.cols,
        technology=chip.technology,
        g_min=chip.g_min,
        g_max=chip.g_max,
        limits=station.limits,
        capabilities=frozenset({"read", "pulse"} | ({"unipolar"} if unipolar else set())),
        v_read=chip.v_read,
        set_pulse=PulseShape(chip.set_pulse.amplitude, chip.set_pulse.width),
        reset_pulse=PulseShape(
            chip.reset_pulse.amplitude, chip.reset_pulse.width, 1 if unipolar else -1
        ),
        set_amplitude_range=chip.set_amplitude_range,
        backend=spec,
        details={
            "station": station.path,
            "instruments": {
                role: {"driver": i.driver, "resource": i.resource}
                for role, i in station.instruments.items()
            },
            "buses": dict(station.wiring.buses),
        },
    )


def open_bench(spec: Spec) -> BenchCrossbar:
    """Opener registered for the ``bench:`` scheme (``bench:PATH/station.yaml``)."""
    if spec.params:
        raise SpecError(
            f"bench specs take no parameters, got {', '.join(spec.params)} in {spec.text!r}; "
            "put settings in the station file"
        )
    if not spec.target:
        raise SpecError(f"bench spec {spec.text!r} names no station file; write bench:PATH.yaml")
    return BenchCrossbar(load_station(spec.target), spec=spec.text)
