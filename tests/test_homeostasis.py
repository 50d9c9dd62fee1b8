"""Intrinsic plasticity: a homeostatic firing threshold per hidden cell (per channel in conv).

    theta_i <- max(theta_i + eta_theta * (rbar_i - rho), theta_min),   theta_min = 0.1 * theta

Checked against computations written here; off (the default) it must never touch a threshold,
and on it must keep the microcircuit and SC-FA bit-identical and resumes exact.
"""

import importlib.util
import math

import numpy as np
import pytest
from conftest import toy

from microcircuit import Conv, Network, Pool, backend
from microcircuit.neurons import THRESHOLD_FLOOR, LIFParameters, adapt_threshold, lif_layer_step, lif_step, surrogate_gain

HAS_NUMBA = importlib.util.find_spec("numba") is not None
JIT = [False, pytest.param(True, marks=pytest.mark.skipif(not HAS_NUMBA, reason="numba not installed"))]
CONV = [(2, 8, 8), Conv(4, kernel=3, padding=1), Pool(2), 6, 3]


@pytest.fixture(autouse=True)
def restore_jit():
    jit = backend.jit_enabled()
    yield
    backend.set_jit(jit)


def host(a):
    return backend.to_numpy(a).astype(np.float64)


def by_hand(theta, rates, rho, eta, floor):
    """The update written cell by cell: rbar_i averages cell i's rate over the batch (and, for a
    conv layer, over the positions of its map)."""
    theta, rates = host(theta).reshape(-1), host(rates)
    out = []
    for i in range(theta.size):
        cell = rates[:, i].reshape(-1)
        rbar = sum(cell) / len(cell)
        out.append(max(theta[i] + eta * (rbar - rho), floor))
    return np.array(out)


def test_update_equation_on_a_tiny_dense_layer():
    rates = backend.asarray([[0.0, 0.25, 1.0], [0.0, 0.75, 1.0]])
    theta = backend.asarray([1.0, 1.0, 1.0])
    expected = by_hand(theta, rates, 0.1, 0.5, 0.1)
    adapt_threshold(theta, rates, target_rate=0.1, eta=0.5, theta_min=0.1)
    np.testing.assert_allclose(host(theta), expected, rtol=1e-6)
    np.testing.assert_allclose(expected, [1 - 0.05, 1 + 0.2, 1 + 0.45])  # silent falls, saturated rises


def test_network_adapts_hidden_thresholds_from_the_batch_rates():
    """One training step: each hidden threshold moves by eta (rbar - rho) on that batch's rates;
    the output layer keeps the shared theta."""
    x, y = toy(32)
    net = Network([16, 12, 8, 4], T=4, seed=2, threshold_adaptation=0.3, target_rate=0.2, weight_scale=2.0)
    hidden = net.plastic_layers[:-1]
    before = [host(layer.theta) for layer in hidden]
    assert all(np.all(b == 1.0) for b in before) and net.plastic_layers[-1].theta is None
    net.train_step(backend.asarray(x), backend.asarray(y), lr=1e-3)
    for layer, b in zip(hidden, before):
        np.testing.assert_allclose(host(layer.theta), by_hand(b, layer.r, 0.2, 0.3, THRESHOLD_FLOOR), rtol=1e-6)
        assert not np.array_equal(host(layer.theta), b)
    assert net.plastic_layers[-1].theta is None


def test_silent_cell_falls_and_saturated_cell_rises():
    x, y = toy(64)
    net = Network([16, 3, 4], T=4, seed=0, threshold_adaptation=0.2, target_rate=0.1)
    hidden = net.plastic_layers[0]
    hidden.W[0] = -1.0  # never reaches threshold: silent
    hidden.W[1] = 1.0  # input sum >= 1 at every step: fires every step
    net.train_step(backend.asarray(x), backend.asarray(y), lr=0.0)
    r = host(hidden.r)
    assert np.all(r[:, 0] == 0) and np.all(r[:, 1] == 1)
    theta = host(hidden.theta)
    assert theta[0] == pytest.approx(1 - 0.2 * 0.1) and theta[1] == pytest.approx(1 + 0.2 * 0.9)


def test_threshold_never_falls_below_its_floor():
    x, y = toy(64)
    net = Network([16, 5, 4], T=4, seed=0, theta=2.0, threshold_adaptation=5.0, target_rate=0.9, batch_size=8)
    net.plastic_layers[0].W[...] = -1.0  # silent whatever the threshold: it falls as far as it may
    net.fit(x, y, epochs=1)
    theta = host(net.plastic_layers[0].theta)
    assert THRESHOLD_FLOOR * 2.0 == pytest.approx(0.2)
    np.testing.assert_array_equal(theta, np.float32(0.2))
    t = backend.asarray([0.3])
    adapt_threshold(t, backend.asarray([[0.0]]), target_rate=0.5, eta=10.0, theta_min=0.25)
    assert float(t[0]) == 0.25


def test_conv_thresholds_are_per_channel():
    rng = np.random.default_rng(0)
    x, y = rng.random((6, 2, 8, 8)), rng.integers(0, 3, 6)
    net = Network(CONV, T=4, seed=1, threshold_adaptation=0.4, target_rate=0.15, weight_scale=2.5)
    conv, dense = net.plastic_layers[0], net.plastic_layers[1]
    assert conv.theta.shape == (4, 1, 1) and dense.theta.shape == (6,)
    net.train_step(backend.asarray(x), backend.asarray(y), lr=1e-3)
    got = host(conv.theta).reshape(-1)
    np.testing.assert_allclose(got, by_hand(np.ones(4), conv.r, 0.15, 0.4, THRESHOLD_FLOOR), rtol=1e-6)
    assert len(set(got.tolist())) > 1  # the channels moved apart


@pytest.mark.parametrize("jit", JIT)
@pytest.mark.parametrize("surrogate", ["triangle", "box", "fast_sigmoid"])
@pytest.mark.parametrize("shape, theta_shape", [((5, 7), (7,)), ((3, 4, 5, 6), (4, 1, 1))])
def test_per_cell_layer_step_is_bit_identical_to_the_reference(jit, surrogate, shape, theta_shape):
    """The fused step (NumPy in place, or its per-cell Numba kernel) with a threshold per cell
    (per channel) computes what ``lif_step`` and ``surrogate_gain`` compute with it."""
    backend.set_jit(jit)
    p = LIFParameters(tau_m=5.0, theta=1.0, surrogate=surrogate, width=0.5)
    rng = np.random.default_rng(4)
    theta = backend.asarray(rng.uniform(0.3, 1.5, size=theta_shape))
    base = backend.asarray(rng.normal(0.4, 0.6, size=shape))
    v_ref = backend.xp().zeros(shape, dtype=base.dtype)
    count_ref, gain_ref = v_ref.copy(), v_ref.copy()
    v, count, gain, spikes = v_ref.copy(), v_ref.copy(), v_ref.copy(), v_ref.copy()
    for t in range(8):
        current = base * (0.5 + t % 3)
        v_pre, s_ref, v_ref = lif_step(v_ref, current, p, theta)
        count_ref += s_ref
        gain_ref += surrogate_gain(v_pre, p, theta)
        lif_layer_step(v, current, count, gain, spikes, p, theta=theta)
        for a, b in ((v, v_ref), (spikes, s_ref), (count, count_ref), (gain, gain_ref)):
            assert np.array_equal(backend.to_numpy(a), backend.to_numpy(b)), t
    assert 0 < float(count.sum()) < 8 * count.size


@pytest.mark.parametrize("jit", JIT)
@pytest.mark.parametrize("layers", [[16, 12, 4], CONV], ids=["dense", "conv"])
def test_thresholds_equal_to_theta_change_no_bit(jit, layers):
    """The per-cell path, given every cell the shared theta and never adapting, trains to the
    same bits as the shared-threshold path (so on and off differ only by the adaptation)."""
    backend.set_jit(jit)
    rng = np.random.default_rng(3)
    shape = (16,) if layers[0] == 16 else layers[0]
    x, y = rng.random((40, *shape)), rng.integers(0, layers[-1], 40)
    kw = dict(T=4, seed=5, theta=0.7, batch_size=16, weight_scale=2.0, surrogate="fast_sigmoid")
    off = Network(layers, **kw)
    cells = Network(layers, **kw)
    for layer in cells.plastic_layers:
        layer.theta = backend.xp().full_like(layer.b, 0.7)
    off.fit(x, y, epochs=2)
    cells.fit(x, y, epochs=2)
    assert all(layer.theta is None for layer in off.plastic_layers)  # off: never materialised
    for a, b in zip(off.plastic_layers, cells.plastic_layers):
        assert np.array_equal(backend.to_numpy(a.W), backend.to_numpy(b.W))
        assert np.array_equal(backend.to_numpy(a.b), backend.to_numpy(b.b))
        assert np.all(backend.to_numpy(b.theta) == np.float32(0.7))


def test_off_by_default_and_no_thresholds_in_checkpoints(tmp_path, monkeypatch):
    import microcircuit.network

    def never(*a, **k):
        raise AssertionError("adapt_threshold called with threshold_adaptation=0")

    monkeypatch.setattr(microcircuit.network, "adapt_threshold", never)
    x, y = toy(64)
    net = Network([16, 8, 4], T=4, seed=0, target_rate=0.3).fit(x, y, epochs=1)
    assert net.config.threshold_adaptation == 0 and all(layer.theta is None for layer in net.plastic_layers)
    net.save(tmp_path / "n.npz")
    with np.load(tmp_path / "n.npz") as f:
        assert not [k for k in f.files if k.startswith("theta_")]


def test_evaluation_never_adapts():
    x, y = toy(64)
    net = Network([16, 8, 4], T=4, seed=0, threshold_adaptation=0.5).fit(x, y, epochs=1)
    before = host(net.plastic_layers[0].theta)
    net.evaluate(x, y), net.predict(x), net.alignment(x[:16], y[:16])
    np.testing.assert_array_equal(host(net.plastic_layers[0].theta), before)


def test_microcircuit_equals_scfa_with_homeostasis():
    """The threshold is the forward neuron's: whatever the rule, the same rates move it the
    same way, so the rate-mode microcircuit and SC-FA stay bit-identical, thresholds included."""
    from microcircuit.data import load_sample

    layers = [(1, 28, 28), Conv(4, 3, padding=1), Pool(2), 16, 10]
    x, y = load_sample("mnist", "train", flatten=False)
    x, y = x[:300], y[:300]
    kw = dict(T=4, seed=3, epochs=2, batch_size=32, augment=2, encoding="bernoulli", threshold_adaptation=0.05,
              target_rate=0.2)
    mc = Network(layers, rule="microcircuit", **kw).fit(x, y)
    sc = Network(layers, rule="scfa", **kw).fit(x, y)
    for a, b in zip(mc.plastic_layers, sc.plastic_layers):
        for name in ("W", "b", "theta"):
            if getattr(a, name) is None:
                assert getattr(b, name) is None
                continue
            assert np.array_equal(backend.to_numpy(getattr(a, name)), backend.to_numpy(getattr(b, name))), name
    assert not np.all(host(mc.plastic_layers[0].theta) == 1.0)  # the thresholds did move
    assert [h["train_loss"] for h in mc.history_] == [h["train_loss"] for h in sc.history_]


def test_thresholds_round_trip_and_old_checkpoints_load(tmp_path):
    x, y = toy(64)
    net = Network([16, 8, 4], T=4, seed=0, threshold_adaptation=0.5).fit(x, y, epochs=1)
    net.save(tmp_path / "n.npz")
    back = Network.load(tmp_path / "n.npz")
    np.testing.assert_array_equal(host(back.plastic_layers[0].theta), host(net.plastic_layers[0].theta))
    with np.load(tmp_path / "n.npz") as f:  # as written before thresholds were saved
        np.savez(tmp_path / "old.npz", **{k: f[k] for k in f.files if not k.startswith("theta_")})
    old = Network.load(tmp_path / "old.npz")
    assert np.all(host(old.plastic_layers[0].theta) == 1.0)  # starts from the shared theta
    off = Network.load(tmp_path / "n.npz", threshold_adaptation=0.0)  # kept, used, no longer adapted
    np.testing.assert_array_equal(host(off.plastic_layers[0].theta), host(net.plastic_layers[0].theta))
    off.partial_fit(x, y)
    np.testing.assert_array_equal(host(off.plastic_layers[0].theta), host(net.plastic_layers[0].theta))


@pytest.mark.parametrize("kwargs, match", [
    (dict(threshold_adaptation=-0.1), r"threshold_adaptation must be a finite number >= 0"),
    (dict(threshold_adaptation=math.inf), r"threshold_adaptation must be"),
    (dict(threshold_adaptation="fast"), r"threshold_adaptation must be"),
    (dict(target_rate=0.0), r"target_rate must be a firing rate in \(0, 1\)"),
    (dict(target_rate=1.0), r"target_rate must be"),
    (dict(target_rate=True), r"target_rate must be"),
])
def test_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        Network([16, 8, 4], **kwargs)
    assert "\n" not in str(err.value)
