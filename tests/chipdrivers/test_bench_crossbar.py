"""BenchCrossbar's routing, pulse grouping and safe state, on in-memory fake drivers.

The fakes model the wiring the way the emulated bench does (closed crosspoints decide
which devices the SMU and the generator reach) and log every command, so the tests
can assert what would have gone over the wire. The socket path is covered by the
contract suite (bench: spec against the emulated lab).
"""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.chipdrivers.bench import BenchCrossbar, blocks
from xbarlab.chipdrivers.station import station_from_dict
from xbarlab.errors import BackendError, SafetyError

ROWS, COLS = 3, 2


class _Fake:
    def __init__(self, bench):
        self.bench = bench

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.bench.log.append((type(self).__name__, "closed"))

    def _log(self, *what):
        self.bench.log.append((type(self).__name__, *what))


class FakeSwitch(_Fake):
    def exclusive_close(self, channels):
        self._log("exclusive_close", tuple(channels))
        self.bench.closed = set(channels)

    def closed_channels(self):
        return sorted(self.bench.closed)

    def open_all(self):
        self._log("open_all")
        self.bench.closed = set()

    def shutdown(self):
        self.open_all()


class FakeSMU(_Fake):
    output_enabled = False
    source_voltage = 0.0

    def __setattr__(self, name, value):
        if name != "bench":
            self._log(name, value)
        super().__setattr__(name, value)

    def configure_voltage_source(self, *, current_limit, nplc):
        self._log("configure", current_limit, nplc)

    def measure_current(self):
        if self.bench.fail_after is not None:
            self.bench.fail_after -= 1
            if self.bench.fail_after < 0:
                raise BackendError("timeout")
        assert self.output_enabled
        return float(self.source_voltage * np.sum(self.bench.g[self.bench.routed("A")]))

    def shutdown(self):
        self.source_voltage = 0.0
        self.output_enabled = False


class FakeGen(_Fake):
    output_enabled = False

    def __setattr__(self, name, value):
        if name != "bench":
            self._log(name, value)
        super().__setattr__(name, value)

    def configure_pulse(self, *, amplitude, width, edge_time, count):
        self._log("configure", amplitude, width, edge_time, count)
        self.count = count
        self.output_enabled = True

    def trigger(self):
        self.bench.pulses[self.bench.routed("B")] += self.count

    def shutdown(self):
        self.output_enabled = False


class FakeBench:
    def __init__(self, st):
        self.g = np.arange(1, ROWS * COLS + 1, dtype=float).reshape(ROWS, COLS) * 1e-6
        self.pulses = np.zeros((ROWS, COLS), dtype=int)
        self.closed: set[str] = set()
        self.log: list[tuple] = []
        self.fail_after = None
        self.w = st.wiring

    def routed(self, bus):
        rows = np.array([ch in self.closed for ch in self._rows(bus)])
        cols = np.array([ch in self.closed for ch in self.w.ground_cols])
        return rows[:, None] & cols[None, :]

    def _rows(self, bus):
        return self.w.smu_rows if bus == "A" else self.w.pulse_rows

    def instruments(self):
        return {"smu": FakeSMU(self), "pulse": FakeGen(self), "switch": FakeSwitch(self)}


@pytest.fixture
def bench(station_doc):
    st = station_from_dict(station_doc, "fake.yaml")
    fake = FakeBench(st)
    xbar = BenchCrossbar(st, fake.instruments(), spec="bench:fake.yaml")
    xbar.fake = fake
    yield xbar
    xbar.close()


def _is_safe(fake):
    smu, gen = [e for e in fake.log if e[1] == "output_enabled"][-2:]
    return fake.closed == set() and smu[2] is False and gen[2] is False


def test_configures_compliance_and_starts_safe(bench):
    assert ("FakeSMU", "configure", 1e-4, 0.01) in bench.fake.log
    assert _is_safe(bench.fake)
    assert bench.info.capabilities == {"read", "pulse", "unipolar"}
    assert bench.info.details["instruments"]["smu"]["driver"] == "keithley2600"


def test_read_routes_one_device_at_a_time(bench):
    g = bench.read()
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, bench.fake.g, rtol=1e-6)
    routes = [e[2] for e in bench.fake.log if e[1] == "exclusive_close"]
    assert routes[-ROWS * COLS :][:3] == [("1A01", "1C04"), ("1A01", "1C05"), ("1A02", "1C04")]
    assert ("FakeSMU", "source_voltage", 0.2) in bench.fake.log
    assert _is_safe(bench.fake)
    np.testing.assert_allclose(bench.read((np.array([2, 0]), 1)), bench.fake.g[[2, 0], 1])


def test_pulse_reaches_exactly_the_selection_in_blocks(bench):
    mask = np.array([[1, 0], [0, 1], [1, 0]], dtype=bool)
    bench.fake.log.clear()
    bench.pulse(mask, polarity=1, amplitude=1.1, width=2e-7, count=3)
    np.testing.assert_array_equal(bench.fake.pulses, 3 * mask)
    routes = [e[2] for e in bench.fake.log if e[1] == "exclusive_close"]
    assert sorted(routes) == [("1B01", "1B03", "1C04"), ("1B02", "1C05")]
    assert ("FakeGen", "configure", 1.1, 2e-7, 8.4e-9, 3) in bench.fake.log
    assert _is_safe(bench.fake)


@pytest.mark.parametrize("seed", range(5))
def test_blocks_cover_the_selection_exactly(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((7, 5)) < 0.4
    got = np.zeros_like(mask, dtype=int)
    for r, c in blocks(np.flatnonzero(mask), mask.shape):
        got[np.ix_(r, c)] += 1
    np.testing.assert_array_equal(got, mask)
    assert len(list(blocks(None, (7, 5)))) == 1


def test_failure_mid_read_leaves_the_bench_safe(bench):
    bench.fake.fail_after = 2
    with pytest.raises(BackendError, match="timeout"):
        bench.read()
    assert _is_safe(bench.fake)


def test_pulse_beyond_limits_sends_nothing(bench):
    bench.fake.log.clear()
    with pytest.raises(SafetyError, match="max_voltage"):
        bench.pulse(None, polarity=1, amplitude=3.0, width=1e-7)
    assert bench.fake.log == []
    assert not bench.fake.pulses.any()


def test_mvm_is_refused_with_a_reason(bench):
    with pytest.raises(BackendError, match="no analog MVM"):
        bench.mvm(np.zeros(ROWS))


def test_close_shuts_everything_down_once(bench):
    bench.close()
    closed = [e[0] for e in bench.fake.log if e[1] == "closed"]
    assert closed == ["FakeSMU", "FakeGen", "FakeSwitch"]
    n = len(bench.fake.log)
    bench.close()
    assert len(bench.fake.log) == n


def test_failed_configuration_closes_what_was_opened(station_doc):
    st = station_from_dict(station_doc)
    fake = FakeBench(st)
    inst = fake.instruments()

    def broken(**kw):
        raise BackendError("SMU refused")

    object.__setattr__(inst["smu"], "configure_voltage_source", broken)
    with pytest.raises(BackendError, match="SMU refused"):
        BenchCrossbar(st, inst)
    assert [e[0] for e in fake.log if e[1] == "closed"] == ["FakeSMU", "FakeGen", "FakeSwitch"]
