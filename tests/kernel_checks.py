"""Checks shared by the kernel tests of both backends: ``test_fused.py`` (Numba kernels on
NumPy) and ``test_gpu.py`` (CuPy's fused kernels). Each runs the same computation with the
kernels off and on (``backend.set_jit``) on the active backend, for the tests to compare."""

import numpy as np

from microcircuit import Network, backend
from microcircuit.neurons import lif_layer_step, lif_step, surrogate_gain
from microcircuit.optim import Adam

CONV = [(3, 16, 16), {"type": "Conv", "channels": 4}, {"type": "Pool", "size": 2}, {"type": "Conv", "channels": 6},
        {"type": "Pool", "size": 2}, 12, 10]  # a 16x16 and an 8x8 map: both ways of computing the basal current


def same(a, b):
    return np.array_equal(backend.to_numpy(a), backend.to_numpy(b), equal_nan=True)


def check_lif_layer_step_against_reference(p):
    """12 steps of :func:`lif_layer_step` against ``lif_step`` + ``surrogate_gain``, asserted
    bit-identical at every step; returns the spike counts."""
    base = backend.asarray(np.random.default_rng(1).normal(0.4, 0.6, size=(5, 33, 7)))
    v_ref = backend.xp().zeros(base.shape, dtype=base.dtype)
    count_ref, gain_ref = v_ref.copy(), v_ref.copy()
    v, count, gain, spikes = v_ref.copy(), v_ref.copy(), v_ref.copy(), v_ref.copy()
    for t in range(12):
        current = base * (0.5 + t % 3)
        v_pre, s_ref, v_ref = lif_step(v_ref, current, p)
        count_ref += s_ref
        gain_ref += surrogate_gain(v_pre, p)
        lif_layer_step(v, current, count, gain, spikes, p)
        assert same(v, v_ref) and same(spikes, s_ref) and same(count, count_ref) and same(gain, gain_ref), t
    return count


def adam_states_off_and_on():
    """Parameters and moments after 5 Adam steps (weight decay on), kernels off, then on."""
    rng = np.random.default_rng(3)
    p0 = [backend.asarray(rng.normal(size=s)) for s in [(50, 20), (50,), (3, 4, 5, 5)]]
    states = []
    for jit in (False, True):
        backend.set_jit(jit)
        opt, ps = Adam(weight_decay=1e-3), [p.copy() for p in p0]
        for k in range(5):
            opt.step(ps, [backend.asarray(np.random.default_rng(k).normal(size=p.shape) * 1e-3) for p in ps], 3e-3)
        states.append(ps + opt.m + opt.v)
    return states


def training_states_off_and_on(rule, settings):
    """Weights and Adam's moments after 2 epochs of a small network, kernels off, then on."""
    settings = {"layers": [64, 48, 10], **settings}
    n_in = int(np.prod(settings["layers"][0]))
    rng = np.random.default_rng(5)
    x, y = rng.random((96, n_in)), rng.integers(0, 10, size=96)
    states = []
    for jit in (False, True):
        backend.set_jit(jit)
        net = Network(rule=rule, T=4, batch_size=32, epochs=2, seed=0, **settings)
        net.fit(x, y)
        states.append([backend.to_numpy(a) for layer in net.plastic_layers for a in layer.params]
                      + [backend.to_numpy(a) for a in net.optimizer.m + net.optimizer.v])
    return states
