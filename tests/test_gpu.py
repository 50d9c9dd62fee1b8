"""The CuPy backend computes what the NumPy backend computes (run where a CUDA device is).

Two kinds of check, as for the Numba kernels (``test_fused.py``):

- the fused CuPy kernels (``backend.cuda_kernel``: the LIF step, Adam) against the CuPy array
  code they replace and against the reference functions: the same IEEE operations in the same
  order, compiled without multiply-add contraction, so bit-identical;
- whole networks on CuPy against NumPy: the matrix products round differently on the two
  (cuBLAS and OpenBLAS sum in other orders), so within float32 rounding, and a spike count can
  differ where a potential lies within an ulp of the threshold.

Skipped where CuPy or a CUDA device is missing (``scripts/gpu_check.sh`` runs them on a GPU).
"""

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
from microcircuit.neurons import LIFParameters, lif_layer_step

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not backend.is_cupy_available(), reason="needs CuPy and a CUDA device")]


@pytest.fixture(autouse=True)
def on_cupy():
    jit, dtype = backend._state["jit"], backend.dtype()
    backend.set_backend("cupy")
    yield
    backend.set_backend("numpy")
    backend._state["jit"] = jit
    backend.set_dtype(dtype)


@pytest.fixture
def launched(monkeypatch):
    """The names of the fused kernels handed out while a test runs (so a guard that silently
    fell back to the array code cannot pass for the kernel)."""
    names, real = set(), backend.cuda_kernel

    def spy(spec):
        kernel = real(spec)
        if kernel is not None:
            names.add(spec[3])
        return kernel

    monkeypatch.setattr(backend, "cuda_kernel", spy)
    return names


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("surrogate", ["triangle", "box", "fast_sigmoid"])
@pytest.mark.parametrize("tau_m, width", [(math.inf, 1.0), (5.0, 0.3)])
def test_cuda_lif_step_is_bit_identical_to_lif_step_and_surrogate_gain(jit, dtype, surrogate, tau_m, width, launched):
    backend.set_jit(jit)
    backend.set_dtype(dtype)
    assert backend.cuda_kernels_enabled() is jit
    count = check_lif_layer_step_against_reference(LIFParameters(tau_m=tau_m, theta=0.7, surrogate=surrogate, width=width))
    assert 0 < float(count.sum()) < 12 * count.size
    assert launched == ({f"microcircuit_lif_{surrogate}"} if jit else set())


@pytest.mark.parametrize("surrogate", ["triangle", "fast_sigmoid"])
@pytest.mark.parametrize("shape, theta_shape", [((6, 20), (20,)), ((4, 3, 5, 5), (3, 1, 1))])
def test_cuda_lif_step_with_per_cell_thresholds_is_the_array_code(shape, theta_shape, surrogate, launched):
    rng = np.random.default_rng(2)
    p = LIFParameters(tau_m=4.0, theta=1.0, surrogate=surrogate)
    theta = backend.asarray(rng.uniform(0.2, 1.5, size=theta_shape))
    currents = [backend.asarray(rng.normal(0.5, 0.7, size=shape)) for _ in range(6)]
    out = []
    for jit in (False, True):
        backend.set_jit(jit)
        v, count, gain, spikes = (backend.xp().zeros(shape, dtype=backend.dtype()) for _ in range(4))
        for c in currents:
            lif_layer_step(v, c, count, gain, spikes, p, theta=theta)
        out.append((v, count, gain, spikes))
    assert all(same(a, b) for a, b in zip(*out))
    assert 0 < float(out[0][1].sum()) < 6 * out[0][1].size
    assert launched == {f"microcircuit_lif_{surrogate}"}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_adam_kernel_is_bit_identical_to_cupy_adam(dtype, launched):
    backend.set_dtype(dtype)
    states = adam_states_off_and_on()
    assert all(same(a, b) for a, b in zip(*states))
    assert launched == {"microcircuit_adam"}


@pytest.mark.parametrize("rule, settings", [
    ("microcircuit", {}), ("bp", {}), ("dfa", {}), ("microcircuit", {"mode": "spiking", "T_e": 8}),
    ("microcircuit", {"layers": CONV}), ("bp", {"layers": CONV}),
    ("microcircuit", {"threshold_adaptation": 0.05}),
])
def test_cuda_training_with_kernels_is_bit_identical_to_cupy_array_code(rule, settings, launched):
    """Whole training runs on CuPy (weights and Adam's moments) with the fused kernels on and off."""
    states = training_states_off_and_on(rule, settings)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(*states))
    assert {"microcircuit_adam", "microcircuit_lif_triangle"} <= launched  # the default surrogate


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "scfa", "microcircuit"])
@pytest.mark.parametrize("layers", [[64, 48, 10], CONV], ids=["mlp", "conv"])
def test_cupy_updates_match_numpy(rule, layers):
    """One mini-batch's weight updates of every rule, dense and conv, on both backends."""
    shape = tuple(np.atleast_1d(layers[0]))
    rng = np.random.default_rng(6)
    x, y = rng.random((32, *shape)), rng.integers(0, 10, size=32)
    out = {}
    for name in ("numpy", "cupy"):
        backend.set_backend(name)
        net = Network(layers, rule=rule, T=8, seed=0)
        ups, _ = net.updates(backend.asarray(x), backend.asarray(y))
        out[name] = [backend.to_numpy(u[0]) for u in ups if u is not None]
    assert len(out["numpy"]) == len(out["cupy"]) > 0
    for a, b in zip(out["numpy"], out["cupy"]):
        assert a.shape == b.shape and np.abs(a).max() > 0
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=2e-3 * np.abs(a).max())


def test_a_run_trained_on_cupy_predicts_the_same_on_numpy(tmp_path):
    """A checkpoint written on the GPU loads on a CPU-only machine and predicts the same."""
    rng = np.random.default_rng(7)
    x, y = rng.random((256, 64)).astype(np.float32), rng.integers(0, 4, size=256)
    net = Network([64, 32, 4], rule="microcircuit", T=8, epochs=2, batch_size=32, seed=0)
    net.fit(x, y)
    gpu = net.scores(x)[0]
    net.save(tmp_path / "net.npz")
    backend.set_backend("numpy")
    cpu = Network.load(tmp_path / "net.npz").scores(x)[0]
    assert np.mean(np.argmax(cpu, 1) == np.argmax(gpu, 1)) > 0.99
    assert np.mean(np.abs(cpu - gpu) < 1e-3) > 0.99  # a rate differs only where a spike count does
