"""The fast paths compute what the plain code computes.

Every hot loop has a readable reference (``lif_step`` + ``surrogate_gain``; Adam written out
from its formula here) and a fused version: NumPy in place, and optionally a Numba kernel.
Where the arithmetic is the same operations in the same order, the results must be
bit-identical; where it is not (Adam in float64 here vs the library's float32), within the
rounding of float32.
"""

import importlib.util
import math

import numpy as np
import pytest
from kernel_checks import (
    CONV,
    adam_states_off_and_on,
    check_lif_layer_step_against_reference,
    same,
    training_states_off_and_on,
)

from microcircuit import Network, backend
from microcircuit.layers import PyramidalLayer
from microcircuit.neurons import LIFParameters, lif_layer_step
from microcircuit.optim import Adam

HAS_NUMBA = importlib.util.find_spec("numba") is not None
JIT = [False, pytest.param(True, marks=pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed"))]


@pytest.fixture(autouse=True)
def restore_backend_settings():
    jit, dtype = backend.jit_enabled(), backend.dtype()
    yield
    backend.set_jit(jit)
    backend.set_dtype(dtype)


@pytest.mark.parametrize("jit", JIT)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("surrogate", ["triangle", "box", "fast_sigmoid"])
@pytest.mark.parametrize("tau_m, width", [(math.inf, 1.0), (5.0, 0.3)])
def test_lif_layer_step_is_bit_identical_to_lif_step_and_surrogate_gain(jit, dtype, surrogate, tau_m, width):
    backend.set_jit(jit)
    backend.set_dtype(dtype)
    count = check_lif_layer_step_against_reference(LIFParameters(tau_m=tau_m, theta=0.7, surrogate=surrogate, width=width))
    assert 0 < float(count.sum()) < 12 * count.size  # some cells fired, not all at every step


@pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed")
def test_lif_kernel_propagates_nan_like_numpy():
    p = LIFParameters(surrogate="triangle")
    cur = backend.asarray(np.array([np.nan, np.inf, -np.inf, 0.5], dtype=np.float32))
    out = []
    for jit in (False, True):
        backend.set_jit(jit)
        v, count, gain, spikes = (backend.xp().zeros(4, dtype=np.float32) for _ in range(4))
        lif_layer_step(v, cur, count, gain, spikes, p)
        out.append((v, count, gain, spikes))
    assert all(same(a, b) for a, b in zip(*out))


def adam_reference(p, us, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """Adam from its definition in float64, on the gradient -u."""
    p, m, v = p.astype(np.float64), np.zeros(p.shape), np.zeros(p.shape)
    for t, u in enumerate(us, start=1):
        grad = -u.astype(np.float64)
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        p = p - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
        p = p - lr * weight_decay * p
    return p


@pytest.mark.parametrize("jit", JIT)
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_adam_matches_its_definition(jit, weight_decay):
    backend.set_jit(jit)
    rng = np.random.default_rng(2)
    p0 = rng.normal(size=(40, 30)).astype(np.float32)
    us = [(rng.normal(size=p0.shape) * 10.0 ** rng.integers(-4, 0)).astype(np.float32) for _ in range(6)]
    opt, p = Adam(weight_decay=weight_decay), backend.asarray(p0.copy())
    for u in us:
        opt.step([p], [backend.asarray(u)], 1e-2)
    # the library folds the bias corrections into one step size and eps (same value, other rounding)
    np.testing.assert_allclose(backend.to_numpy(p), adam_reference(p0, us, 1e-2, weight_decay=weight_decay), rtol=0, atol=1e-6)


@pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_kernel_is_bit_identical_to_numpy_adam(dtype):
    backend.set_dtype(dtype)
    states = adam_states_off_and_on()
    assert all(same(a, b) for a, b in zip(*states))


def test_basal_current_is_the_matrix_product():
    rng = np.random.default_rng(4)
    layer = PyramidalLayer((7, 9), 13, LIFParameters(), rng)
    layer.b[...] = backend.asarray(rng.normal(size=13))
    x = backend.asarray(rng.random((6, 7, 9)))
    out = backend.to_numpy(layer.basal(x))
    x2, W, b = (backend.to_numpy(a) for a in (x.reshape(6, -1), layer.W, layer.b))
    assert out.flags.c_contiguous and out.shape == (6, 13)
    # the same sums as x W^T + b, computed in another layout: equal to the float32 rounding
    np.testing.assert_allclose(out, x2.astype(np.float64) @ W.T.astype(np.float64) + b, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("rule, settings", [
    ("microcircuit", {}), ("bp", {}), ("scfa", {}), ("dfa", {}),
    ("microcircuit", {"mode": "spiking", "T_e": 8}),
    ("microcircuit", {"mode": "spiking", "T_e": 8, "feedback": "direct"}),
    ("microcircuit", {"layers": CONV}), ("microcircuit", {"layers": CONV, "mode": "spiking"}), ("bp", {"layers": CONV}),
])
def test_training_with_kernels_is_bit_identical_to_numpy(rule, settings):
    """Whole training runs (weights and Adam's moments) with every kernel on and with none."""
    states = training_states_off_and_on(rule, settings)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(*states))


@pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binomial_kernel_draws_numpys_counts(dtype):
    """Numba's port of NumPy's binomial sampler: the same counts from the same stream."""
    backend.set_dtype(dtype)
    rng = np.random.default_rng(12)
    p = backend.asarray(rng.random((40, 30)) ** rng.integers(1, 6, size=(40, 30)) * (rng.random((40, 30)) < 0.8))
    p[0, :2] = 1.0
    draws = []
    for jit in (False, True):
        backend.set_jit(jit)
        gen = backend.noise_generator(3)
        draws.append([backend.binomial(gen, n, p) for n in (1, 16, 100)] + [gen.random(4)])
    assert all(same(a, b) and a.dtype == b.dtype for a, b in zip(*draws))
    with pytest.raises(ValueError):  # invalid probabilities go to NumPy, which refuses them
        backend.binomial(backend.noise_generator(0), 4, backend.asarray(np.array([np.nan, 0.5])))


@pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed")
def test_error_cell_kernel_is_bit_identical_to_numpy():
    from microcircuit.circuit import ErrorCells

    rng = np.random.default_rng(13)
    g, a = rng.random((6, 50)).astype(np.float32), rng.normal(size=(6, 50)).astype(np.float32)
    g[0, :6], a[0, :6] = [0, -0.0, np.nan, np.inf, 1, 0], [-1, 1, 1, 0, np.nan, -0.0]  # signed zeros, NaN
    cells = []
    for jit in (False, True):
        backend.set_jit(jit)
        with np.errstate(invalid="ignore"):
            c = ErrorCells.from_drive(backend.asarray(g), backend.asarray(a))
        cells.append([backend.to_numpy(c.pos), backend.to_numpy(c.neg)])
    assert all(a.tobytes() == b.tobytes() for a, b in zip(*cells))


@pytest.mark.parametrize("hw", [4, 8, 16])  # both ways of computing the basal current
def test_conv_basal_current_is_the_convolution(hw):
    from microcircuit.layers import Conv, ConvPyramidalLayer

    rng = np.random.default_rng(9)
    layer = ConvPyramidalLayer((3, hw, hw), Conv(5, 3, padding=1), LIFParameters(), rng)
    layer.b[...] = backend.asarray(rng.normal(size=(5, 1, 1)))
    x = rng.random((2, 3, hw, hw))
    out = backend.to_numpy(layer.basal(backend.asarray(x)))
    W, b = backend.to_numpy(layer.W).astype(np.float64), backend.to_numpy(layer.b).astype(np.float64)
    xp_ = np.pad(backend.to_numpy(backend.asarray(x)).astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros((2, 5, hw, hw)) + b
    for i in range(3):
        for j in range(3):
            ref += np.einsum("oc,bchw->bohw", W[:, :, i, j], xp_[:, :, i : i + hw, j : j + hw])
    assert out.flags.c_contiguous and out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("kind, size", [("avg", 2), ("max", 2), ("avg", 3), ("max", 3)])
def test_pool_kernel_is_bit_identical_to_numpy(kind, size):
    from microcircuit.layers import Pool, PoolLayer

    layer = PoolLayer((4, 6 * size, 6 * size), Pool(size, kind))
    x = np.random.default_rng(10).normal(size=(3, 4, 6 * size, 6 * size))
    x[0, 0, 0, 1] = np.nan  # NaN propagates as np.maximum propagates it
    out = []
    for jit in (False, True):
        backend.set_jit(jit)
        out.append(layer.pool(backend.asarray(x)))
    assert same(*out) and out[0].shape == (3, 4, 6, 6)


def test_without_numba_the_numpy_code_runs(monkeypatch):
    """Where Numba cannot be imported (Pyodide, or not installed) the kernels are off and the
    library trains on NumPy alone."""
    import sys

    from microcircuit.optim import _adam_kernel

    monkeypatch.setitem(sys.modules, "numba", None)  # import numba now raises ImportError
    monkeypatch.setattr(backend, "_kernels", {})
    backend.set_jit(True)
    assert not backend.jit_enabled() and backend.kernel(_adam_kernel) is None
    rng = np.random.default_rng(11)
    net = Network([16, 8, 4], T=2, batch_size=8, epochs=1, mode="spiking", seed=0)
    loss = net.partial_fit(rng.random((32, 16)), rng.integers(0, 4, size=32))
    assert math.isfinite(loss) and "numba" not in backend._kernels or backend._kernels["numba"] is None


@pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("both", [False, True])
def test_spiking_error_cells_kernel_is_bit_identical_to_numpy(both):
    """One draw per pair where one cell of each is active; where both are (built by hand), or
    where a rate is NaN, the kernel steps aside and NumPy draws each cell (or refuses)."""
    from microcircuit.circuit import ErrorCells

    rng = np.random.default_rng(14)
    drive = (rng.normal(size=(16, 40)) * rng.random((16, 40)) ** 4).astype(np.float32)
    drive[0, :3] = 0.0
    pos, neg = np.maximum(drive, 0), np.maximum(-drive, 0)
    if both:
        neg[1, 1] = pos[1, 1] = 0.5
    out = []
    for jit in (False, True):
        backend.set_jit(jit)
        gen = backend.noise_generator(4)
        cells = [ErrorCells(backend.asarray(pos), backend.asarray(neg)).spiking(T_e, gen) for T_e in (1, 16, 32)]
        out.append([a for c in cells for a in (c.pos, c.neg)] + [gen.random(3)])
        with pytest.raises(ValueError):
            ErrorCells(backend.asarray(np.full(3, np.nan, np.float32)), backend.asarray(np.zeros(3, np.float32))).spiking(4, gen)
    assert all(backend.to_numpy(a).tobytes() == backend.to_numpy(b).tobytes() for a, b in zip(*out))


@pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("shape, spec", [((3, 16, 16), (5, 3, 1, 1)), ((4, 8, 8), (6, 3, 1, 1)), ((4, 9, 9), (5, 3, 2, 0)),
                                         ((3, 10, 10), (4, 5, 2, 2)), ((2, 7, 7), (3, 1, 1, 0))])
def test_conv_kernels_are_bit_identical_to_numpy(shape, spec):
    """Patch gathering (both layouts) and its adjoint, the transposed convolution, in one pass each."""
    from microcircuit.layers import Conv, ConvPyramidalLayer

    rng = np.random.default_rng(15)
    layer = ConvPyramidalLayer(shape, Conv(*spec), LIFParameters(), rng)
    x = backend.asarray(rng.random((3, *shape)))
    e = backend.asarray(rng.normal(size=(3, *layer.out_shape)))
    out = []
    for jit in (False, True):
        backend.set_jit(jit)
        out.append([layer._patches(x).copy(), layer._im2col(x).copy(), layer.backward(e, layer.W),
                    layer.basal(x).copy(), *layer.hebbian(e, x)])
    assert all(backend.to_numpy(a).tobytes() == backend.to_numpy(b).tobytes() for a, b in zip(*out))


@pytest.mark.parametrize("jit", JIT)
def test_spiking_error_cells_keep_the_dtype_for_a_numpy_integer_T_e(jit):
    from microcircuit.circuit import ErrorCells

    backend.set_jit(jit)
    pos = backend.asarray(np.array([[0.2, 0.0, 0.7]], np.float32))
    cells = ErrorCells(pos, backend.asarray(np.zeros((1, 3), np.float32))).spiking(np.int64(8), backend.noise_generator(1))
    assert cells.pos.dtype == cells.neg.dtype == np.float32
