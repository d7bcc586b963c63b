"""IR drop: the nodal solve against circuit laws and hand formulas, the fast model against it.

Run with ``-s`` to see the measured errors of the 256 x 256 comparison.
"""

import numpy as np
import pytest

from xbarlab.emulator.irdrop import effective_conductance, nodal_currents

G_MIN, G_MAX = 0.1e-6, 25e-6  # S, the conductance range of the accuracy tests


def rel(approx, exact):
    return np.linalg.norm(approx - exact) / np.linalg.norm(exact)


def netlist_currents(g, x, r, transpose):
    """Amplifier currents from a dense solve of the explicitly listed circuit.

    Written from the physical description, independently of the module: every
    resistor is named by its two end nodes; drivers and amplifiers are fixed nodes.
    """
    rows, cols = g.shape
    w = 1.0 / r
    edges = [(("row", i, j), ("col", i, j), g[i, j]) for i in range(rows) for j in range(cols)]
    edges += [(("row", i, j), ("row", i, j + 1), w) for i in range(rows) for j in range(cols - 1)]
    edges += [(("col", i, j), ("col", i + 1, j), w) for i in range(rows - 1) for j in range(cols)]
    if transpose:  # drivers on top of the columns, amplifiers at the right of the rows
        edges += [(("drv", j), ("col", 0, j), w) for j in range(cols)]
        edges += [(("row", i, cols - 1), ("amp", i), w) for i in range(rows)]
    else:  # drivers left of the rows, amplifiers at the bottom of the columns
        edges += [(("drv", i), ("row", i, 0), w) for i in range(rows)]
        edges += [(("col", rows - 1, j), ("amp", j), w) for j in range(cols)]
    x = np.atleast_2d(x)
    free = sorted({n for e in edges for n in e[:2] if n[0] in ("row", "col")})
    index = {n: k for k, n in enumerate(free)}
    y = np.zeros((len(free), len(free)))
    b = np.zeros((len(free), x.shape[0]))
    for n1, n2, c in edges:
        for p, q in ((n1, n2), (n2, n1)):
            if p in index:
                y[index[p], index[p]] += c
                if q in index:
                    y[index[p], index[q]] -= c
                elif q[0] == "drv":
                    b[index[p]] += c * x[:, q[1]]
    v = np.linalg.solve(y, b)
    amps = sorted((n2[1], n1) for n1, n2, _ in edges if n2[0] == "amp")
    return np.stack([w * v[index[n]] for _, n in amps], axis=1)


def one_driver_two_loads(x, g0, g1, r):
    """One driven wire, two devices, each to its own amplifier; g0 next to the driver."""
    z0, z1 = 1 / g0 + r, r + 1 / g1 + r
    zp = z0 * z1 / (z0 + z1)
    v0 = x * zp / (r + zp)
    return np.array([v0 / z0, v0 / z1])


def two_drivers_one_wire(x0, x1, g0, g1, r):
    """Two drivers into one read wire; device g1 sits next to the amplifier.

    Superposition of the two sources, each with the other driver at 0 V.
    """
    za, zb = r, 1 / g1 + r  # from the node of g1: to the amplifier, back to driver 1
    i_src0 = x0 / (r + 1 / g0 + r + za * zb / (za + zb))
    zc = r + 1 / g0 + r  # from the node of g1 back through g0 to driver 0
    i_src1 = x1 / (r + 1 / g1 + za * zc / (za + zc))
    return i_src0 * zb / (za + zb) + i_src1 * zc / (za + zc)


# --- the nodal solve -------------------------------------------------------------------


@pytest.mark.parametrize("transpose", [False, True])
def test_nodal_with_vanishing_wire_resistance_is_the_ideal_product(transpose):
    rng = np.random.default_rng(1)
    g = rng.uniform(G_MIN, G_MAX, (32, 24))
    x = rng.uniform(-0.2, 0.2, (5, 24 if transpose else 32))
    ideal = x @ (g.T if transpose else g)
    assert rel(nodal_currents(g, x, 1e-9, transpose), ideal) < 1e-6
    assert rel(nodal_currents(g, x, 1.0, transpose), ideal) > 1e-3  # and the drop is seen
    np.testing.assert_array_equal(nodal_currents(g, x, 0.0, transpose), ideal)


@pytest.mark.parametrize("transpose", [False, True])
def test_nodal_matches_an_independent_netlist_solve(transpose):
    rng = np.random.default_rng(2)
    g = rng.uniform(10e-6, 100e-6, (4, 3))
    x = rng.uniform(-0.2, 0.2, (3, 3 if transpose else 4))
    r = 2e3  # large, so that the IR drop is tens of per cent on this small array
    exact = netlist_currents(g, x, r, transpose)
    assert rel(x @ (g.T if transpose else g), exact) > 0.1
    np.testing.assert_allclose(nodal_currents(g, x, r, transpose), exact, rtol=1e-10)


def test_nodal_matches_series_parallel_formulas():
    r, x0, x1, g0, g1 = 3e3, 0.2, -0.13, 40e-6, 70e-6
    np.testing.assert_allclose(
        nodal_currents(np.array([[g0]]), [x0], r), [x0 / (2 * r + 1 / g0)], rtol=1e-12
    )
    np.testing.assert_allclose(
        nodal_currents(np.array([[g0, g1]]), [x0], r), one_driver_two_loads(x0, g0, g1, r)
    )
    np.testing.assert_allclose(
        nodal_currents(np.array([[g0], [g1]]), [x0], r, transpose=True),
        one_driver_two_loads(x0, g0, g1, r),
    )
    # Forward: row 0 is far from the amplifier; transposed: column 0 is.
    expected = [two_drivers_one_wire(x0, x1, g0, g1, r)]
    np.testing.assert_allclose(nodal_currents(np.array([[g0], [g1]]), [x0, x1], r), expected)
    np.testing.assert_allclose(
        nodal_currents(np.array([[g0, g1]]), [x0, x1], r, transpose=True), expected
    )


@pytest.mark.parametrize("transpose", [False, True])
def test_nodal_is_linear_in_the_inputs(transpose):
    rng = np.random.default_rng(3)
    g = rng.uniform(G_MIN, G_MAX, (40, 30))
    x1, x2 = rng.uniform(-0.2, 0.2, (2, 30 if transpose else 40))
    out = nodal_currents(g, np.stack([x1, x2, 0.7 * x1 - 1.9 * x2]), 20.0, transpose)
    np.testing.assert_allclose(out[2], 0.7 * out[0] - 1.9 * out[1], rtol=1e-9, atol=1e-18)
    np.testing.assert_allclose(nodal_currents(g, x1, 20.0, transpose), out[0], rtol=1e-12)


def test_far_devices_see_less_voltage_forward():
    g = np.full((32, 24), G_MAX)
    out = nodal_currents(g, 0.2 * np.eye(32), 2.5)  # one-hot: row i alone at 0.2 V
    assert np.all(np.diff(out.sum(axis=1)) > 0)  # rows nearer the amplifiers (bottom) give more
    assert np.all(np.diff(out[0]) < 0)  # along a row, columns far from the driver get less


def test_far_devices_see_less_voltage_transposed():
    g = np.full((32, 24), G_MAX)
    out = nodal_currents(g, 0.2 * np.eye(24), 2.5, transpose=True)  # column j alone
    assert np.all(np.diff(out.sum(axis=1)) > 0)  # columns nearer the amplifiers (right) give more
    assert np.all(np.diff(out[0]) < 0)  # down a column, rows far from the driver get less


@pytest.mark.parametrize("transpose", [False, True])
def test_wire_resistance_lowers_every_current_for_positive_inputs(transpose):
    rng = np.random.default_rng(4)
    g = rng.uniform(G_MIN, G_MAX, (32, 24))
    x = rng.uniform(0.01, 0.2, (6, 24 if transpose else 32))
    out = nodal_currents(g, x, 1.0, transpose)
    ideal = x @ (g.T if transpose else g)
    assert np.all(out > 0) and np.all(out < ideal)
    assert np.all(nodal_currents(g, x, 2.0, transpose) < out)  # more resistance, less current


# --- the effective conductance ---------------------------------------------------------


@pytest.fixture(scope="module")
def array_256():
    """256 x 256 array, 16 positive and 16 mixed-sign inputs, nodal currents per r_wire."""
    rng = np.random.default_rng(2024)
    g = rng.uniform(G_MIN, G_MAX, (256, 256))
    x = np.concatenate([rng.uniform(0, 0.2, (16, 256)), rng.uniform(-0.2, 0.2, (16, 256))])
    return g, x, {r: nodal_currents(g, x, r) for r in (1.0, 2.5)}


def check_approximation(g, x, exact, r, transpose, label):
    ideal_err = rel(x @ (g.T if transpose else g), exact)
    g_eff = effective_conductance(g, r, transpose)
    approx_err = rel(x @ (g_eff.T if transpose else g_eff), exact)
    first = effective_conductance(g, r, transpose, method="first_order")
    first_err = rel(x @ (first.T if transpose else first), exact)
    print(
        f"\nIR drop {label}, r_wire={r} Ohm: ideal x@g {ideal_err:.4f}, "
        f"effective_conductance {approx_err:.4f} (first_order {first_err:.4f})"
    )
    assert approx_err <= 0.10
    assert approx_err <= ideal_err / 4


@pytest.mark.parametrize("r", [1.0, 2.5])
@pytest.mark.parametrize("kind", ["positive", "mixed"])
def test_effective_conductance_tracks_the_nodal_solve_on_256x256(array_256, r, kind):
    g, x, exact = array_256
    part = slice(0, 16) if kind == "positive" else slice(16, 32)
    check_approximation(g, x[part], exact[r][part], r, False, f"256x256 {kind}")


@pytest.mark.parametrize("r", [16.0, 40.0])  # the IR drop of 256 x 256 at 1 and 2.5 Ohm
@pytest.mark.parametrize("kind", ["positive", "mixed"])
def test_effective_conductance_tracks_the_nodal_solve_transposed(r, kind):
    rng = np.random.default_rng(5)
    g = rng.uniform(G_MIN, G_MAX, (64, 48))
    x = rng.uniform(0 if kind == "positive" else -0.2, 0.2, (16, 48))
    check_approximation(g, x, nodal_currents(g, x, r, True), r, True, f"64x48^T {kind}")


@pytest.mark.parametrize("transpose", [False, True])
def test_first_order_is_the_taylor_term_and_ladder_is_better(transpose):
    rng = np.random.default_rng(6)
    g = rng.uniform(G_MIN, G_MAX, (40, 30))
    x = rng.uniform(-0.2, 0.2, (8, 30 if transpose else 40))
    rs = np.array([0.4, 0.2, 0.1])  # IR drop of a few per cent down to below one

    def errors(method):
        out = []
        for r in rs:
            g_eff = effective_conductance(g, r, transpose, method=method)
            out.append(
                rel(x @ (g_eff.T if transpose else g_eff), nodal_currents(g, x, r, transpose))
            )
        return np.array(out)

    first, ladder = errors("first_order"), errors("ladder")
    np.testing.assert_allclose(first[:-1] / first[1:], 4.0, rtol=0.1)  # error ~ r_wire^2
    assert np.all(ladder < first / 20)


def test_effective_conductance_is_the_transfer_matrix_in_g_layout():
    rng = np.random.default_rng(7)
    g = rng.uniform(G_MIN, G_MAX, (12, 7)).astype(np.float32)
    r = 1e3  # the transfer matrix is off g by about 50 % on this array
    for transpose, n_in in ((False, 12), (True, 7)):
        g_eff = effective_conductance(g, r, transpose)
        assert g_eff.shape == g.shape and g_eff.dtype == np.float64
        # Row k of the exact transfer matrix: the currents for input k alone at 1 V.
        transfer = nodal_currents(g, np.eye(n_in), r, transpose)
        assert rel(transfer, g.T if transpose else g) > 0.3
        assert rel(g_eff.T if transpose else g_eff, transfer) < 0.03
        np.testing.assert_allclose(g_eff, effective_conductance(g.astype(np.float64), r, transpose))
        np.testing.assert_array_equal(effective_conductance(g, 0.0, transpose), g)
    # Forward and transposed see different wires, so they differ on a non-square array.
    assert rel(effective_conductance(g, r, True), effective_conductance(g, r)) > 0.1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: nodal_currents(np.ones((3, 2)) * 1e-6, np.ones(2), 1.0),
            r"x must have shape \(3,\)",
        ),
        (lambda: nodal_currents(-np.ones((3, 2)), np.ones(3), 1.0), "g must be finite and >= 0"),
        (lambda: nodal_currents(np.ones(3), np.ones(3), 1.0), "g must be a non-empty 2-D"),
        (lambda: nodal_currents(np.ones((3, 2)), [np.nan] * 3, 1.0), "x must be finite"),
        (lambda: effective_conductance(np.ones((3, 2)), -1.0), "r_wire must be finite and >= 0"),
        (lambda: effective_conductance(np.ones((3, 2)), np.inf), "r_wire must be finite"),
        (lambda: effective_conductance(np.ones((3, 2)), 1.0, method="exact"), "method="),
    ],
)
def test_bad_arguments_raise_with_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()
