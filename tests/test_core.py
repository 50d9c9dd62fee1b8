"""The spiking neuron, encoders, layers, rules and the Network API."""


import numpy as np
import pytest
from conftest import toy

from microcircuit import Conv, DivergenceError, Network, Pool, backend
from microcircuit.augment import augment
from microcircuit.encoding import spike_train
from microcircuit.neurons import LIFParameters, constant_input_spike_count, simulate, surrogate_gain


# ------------------------------------------------------------------ neuron
@pytest.mark.parametrize("current", [0.0, 0.0625, 0.125, 0.25, 0.5, 0.75, 0.9375, 1.0, 1.75])
@pytest.mark.parametrize("T", [8, 32, 100])
def test_lif_constant_input_spike_count(current, T):
    """Currents that are exact binary fractions: float arithmetic is exact, so is the count."""
    out = simulate(np.full((T, 1), current))
    assert int(backend.to_numpy(out["spikes"]).sum()) == constant_input_spike_count(current, T)


@pytest.mark.parametrize("current", [0.05, 0.13, 0.33, 0.77, 0.999])
def test_lif_constant_input_spike_count_any_current(current):
    """Other currents: rounding in the running sum can move a spike by at most one."""
    out = simulate(np.full((100, 1), current))
    assert abs(int(backend.to_numpy(out["spikes"]).sum()) - constant_input_spike_count(current, 100)) <= 1


def test_constant_input_count_formula():
    # floor(T I / theta), capped at one spike per step
    assert constant_input_spike_count(0.3, 10) == 3
    assert constant_input_spike_count(0.31, 10) == 3
    assert constant_input_spike_count(2.0, 10) == 10
    assert constant_input_spike_count(-1.0, 10) == 0


def test_soft_reset_conserves_charge():
    """Integrated input = theta * spikes + what is left on the membrane (no leak)."""
    rng = np.random.default_rng(0)
    currents = rng.uniform(-0.2, 1.0, size=(50, 7)).astype(np.float64)
    backend.set_dtype("float64")
    try:
        out = simulate(currents, LIFParameters(theta=0.8))
        spikes = backend.to_numpy(out["spikes"]).sum(0)
        v_end = backend.to_numpy(out["v"])[-1]
        np.testing.assert_allclose(currents.sum(0), 0.8 * spikes + v_end, atol=1e-12)
    finally:
        backend.set_dtype("float32")


def test_leak_lowers_rate():
    current = np.full((40, 1), 0.3)
    no_leak = backend.to_numpy(simulate(current)["r"])[0]
    leaky = backend.to_numpy(simulate(current, LIFParameters(tau_m=5.0))["r"])[0]
    assert leaky < no_leak


@pytest.mark.parametrize("kind", ["triangle", "box", "fast_sigmoid"])
def test_surrogate_peaks_at_threshold(kind):
    p = LIFParameters(surrogate=kind, width=0.5)
    v = backend.asarray(np.array([1.0, 1.2, 0.6, -3.0]))
    g = backend.to_numpy(surrogate_gain(v, p))
    assert g[0] == pytest.approx(1.0)
    assert g[0] >= g[1] >= g[3] and g[0] >= g[2]
    if kind == "triangle":
        np.testing.assert_allclose(g, [1.0, 0.6, 0.2, 0.0], atol=1e-6)
    if kind == "fast_sigmoid":
        assert g[3] > 0


@pytest.mark.parametrize("bad", [dict(theta=0), dict(tau_m=-1), dict(surrogate="relu"), dict(width=0)])
def test_lif_rejects_bad_parameters(bad):
    with pytest.raises(ValueError):
        LIFParameters(**bad)


# ---------------------------------------------------------------- encoding
def test_direct_encoding_is_constant():
    x = np.array([[0.0, 0.25, 1.0]])
    s = backend.to_numpy(spike_train(x, 5, "direct"))
    assert s.shape == (5, 1, 3)
    np.testing.assert_array_equal(s, np.broadcast_to(x, (5, 1, 3)))


def test_bernoulli_encoding_rate():
    x = np.array([[0.0, 0.1, 0.5, 0.9, 1.0]] * 400)
    s = backend.to_numpy(spike_train(x, 50, "bernoulli", seed=1))
    assert set(np.unique(s)) <= {0.0, 1.0}
    rate = s.mean(axis=(0, 1))
    np.testing.assert_allclose(rate, x[0], atol=4 * np.sqrt(0.25 / 20000))
    assert rate[0] == 0 and rate[-1] == 1


# ------------------------------------------------------------------ layers
def test_conv_layer_matches_direct_convolution():
    """im2col convolution against an explicit loop over output positions."""
    net = Network([(2, 7, 7), Conv(3, kernel=3, stride=2, padding=1), 4], seed=0)
    layer = net.layers[0]
    x = np.random.default_rng(1).random((2, 2, 7, 7)).astype(np.float32)
    out = backend.to_numpy(layer.basal(backend.asarray(x)))
    W = backend.to_numpy(layer.W)
    xp_ = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros((2, 3, 4, 4), np.float32)
    for i in range(4):
        for j in range(4):
            ref[:, :, i, j] = np.einsum("bckl,ockl->bo", xp_[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3], W)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["avg", "max"])
def test_pool_backward_is_adjoint_of_pooling(kind):
    """<pool(x), e> = <x, pool^T(e)> for avg; for max, errors go to the window's max."""
    net = Network([(1, 4, 4), Conv(2, kernel=3, padding=1), Pool(2, kind), 3], seed=0, weight_scale=3)
    pool = net.layers[1]
    x = np.random.default_rng(0).random((3, 1, 4, 4)).astype(np.float32)
    net.forward(backend.asarray(x))
    e = np.random.default_rng(1).random((3, 2, 2, 2)).astype(np.float32)
    back = backend.to_numpy(pool.backward(backend.asarray(e)))
    if kind == "avg":
        r = backend.to_numpy(pool.r_pre)
        lhs = (backend.to_numpy(pool.pool(backend.asarray(r))) * e).sum()
        assert lhs == pytest.approx((r * back).sum(), rel=1e-5)
    else:
        np.testing.assert_allclose(back.reshape(3, 2, 2, 2, 2, 2).sum(axis=(3, 5)), e, rtol=1e-6)
        r = backend.to_numpy(pool.r_pre).reshape(3, 2, 2, 2, 2, 2)
        is_max = r == r.max(axis=(3, 5), keepdims=True)
        routed = back.reshape(3, 2, 2, 2, 2, 2) != 0
        assert np.all(is_max[routed])  # errors reach only the window's most active cells


# ----------------------------------------------------------------- learning
@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "scfa", "microcircuit"])
def test_each_rule_lowers_the_loss(rule):
    x, y = toy(400)
    net = Network([16, 32, 4], rule=rule, T=8, lr=3e-3, epochs=15, seed=0, surrogate="fast_sigmoid")
    before = net.evaluate(x, y)
    net.fit(x, y)
    after = net.evaluate(x, y)
    assert after["loss"] < 0.7 * before["loss"]
    assert after["accuracy"] > before["accuracy"] + 0.15


def test_evaluation_does_not_depend_on_how_samples_are_batched():
    x, y = toy(400)
    net = Network([16, 32, 4], rule="scfa", T=8, lr=3e-3, epochs=2, batch_size=16, seed=0, surrogate="fast_sigmoid")
    net.fit(x, y)
    whole = net.evaluate(x, y, batch_size=len(y))
    for batch_size in (None, 7, 64):  # None: the training mini-batch (16); 7 leaves a ragged last batch
        part = net.evaluate(x, y, batch_size=batch_size)
        assert part["accuracy"] == whole["accuracy"] and part["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    assert (net.predict(x, batch_size=7) == net.predict(x, batch_size=len(y))).all()
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        net.evaluate(x, y, batch_size=0)


def test_spiking_microcircuit_learns():
    x, y = toy(400)
    net = Network([16, 32, 4], rule="microcircuit", mode="spiking", T_e=16, T=8, lr=3e-3, epochs=8, seed=0,
                  surrogate="fast_sigmoid")
    before = net.evaluate(x, y)["loss"]
    net.fit(x, y)
    assert net.evaluate(x, y)["loss"] < 0.7 * before


def test_conv_network_learns():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = rng.random((200, 1, 8, 8)).astype(np.float32) * 0.3
    x[y == 1, :, :4] += 0.6  # class 1: bright top half
    x[y == 0, :, 4:] += 0.6  # class 0: bright bottom half
    net = Network([(1, 8, 8), Conv(4, kernel=3, padding=1), Pool(2), 2], rule="microcircuit", T=6, lr=3e-3,
                  epochs=5, seed=0, surrogate="fast_sigmoid")
    before = net.evaluate(x, y)["loss"]
    net.fit(x, y)
    after = net.evaluate(x, y)
    assert after["loss"] < 0.7 * before and after["accuracy"] > 0.9


def test_alignment_is_zero_for_bp_and_positive_for_fa():
    x, y = toy(64)
    assert Network([16, 32, 32, 4], rule="bp", seed=0).alignment(x, y) == pytest.approx([0, 0, 0], abs=1e-3)
    fa = Network([16, 32, 32, 4], rule="fa", seed=0).alignment(x, y)
    assert len(fa) == 3 and fa[-1] == pytest.approx(0, abs=1e-3) and fa[0] > 10


def test_same_seed_same_network_and_training():
    x, y = toy(128)
    a = Network([16, 20, 4], seed=3, epochs=2, encoding="bernoulli").fit(x, y)
    b = Network([16, 20, 4], seed=3, epochs=2, encoding="bernoulli").fit(x, y)
    c = Network([16, 20, 4], seed=4, epochs=2, encoding="bernoulli").fit(x, y)
    np.testing.assert_array_equal(backend.to_numpy(a.layers[0].W), backend.to_numpy(b.layers[0].W))
    assert not np.allclose(backend.to_numpy(a.layers[0].W), backend.to_numpy(c.layers[0].W))


def test_numpy_scalars_are_valid_hyperparameters():
    net = Network([16, 8, 4], T=np.int64(4), T_e=np.int64(8), lr=np.float32(1e-3), rule="microcircuit")
    assert net.T == 4


def test_load_refuses_another_dtype(tmp_path):
    path = Network([16, 8, 4], seed=0).save(tmp_path / "n.npz")
    backend.set_dtype("float64")
    try:
        with pytest.raises(ValueError, match="set_dtype"):
            Network.load(path)
    finally:
        backend.set_dtype("float32")
    with pytest.raises(ValueError, match="not a microcircuit checkpoint"):
        np.savez(tmp_path / "other.npz", a=np.zeros(2))
        Network.load(tmp_path / "other.npz")


def test_save_load_roundtrip(tmp_path):
    x, y = toy(128)
    net = Network([16, 20, 4], rule="fa", seed=1, epochs=1).fit(x, y)
    path = net.save(tmp_path / "net.npz")
    other = Network.load(path)
    assert other.config == net.config and other.epoch_ == 1
    np.testing.assert_array_equal(net.predict(x), other.predict(x))
    np.testing.assert_array_equal(backend.to_numpy(net.rule.kernels[1]), backend.to_numpy(other.rule.kernels[1]))
    assert not list(tmp_path.glob("*.tmp*"))


def test_partial_fit_continues_like_fit(tmp_path):
    """Save after 1 epoch, load, train 1 more: same weights as 2 epochs straight."""
    x, y = toy(128)
    straight = Network([16, 20, 4], seed=2, epochs=2).fit(x, y)
    half = Network([16, 20, 4], seed=2, epochs=2)
    half.partial_fit(x, y)
    half.save(tmp_path / "c.npz")
    resumed = Network.load(tmp_path / "c.npz")
    resumed.partial_fit(x, y)
    for a, b in zip(straight.plastic_layers, resumed.plastic_layers):
        np.testing.assert_array_equal(backend.to_numpy(a.W), backend.to_numpy(b.W))


# ---------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    net = Network([16, 8, 4], seed=0)
    x, y = toy(32)
    with pytest.raises(ValueError, match="expects"):
        net.fit(x[:, :10], y)
    with pytest.raises(ValueError, match="label out of range"):
        net.fit(x, y + 4)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.fit(bad, y)
    with pytest.raises(ValueError, match="1-d array"):
        net.fit(x, y[:5])


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(T=0), "T must be"), (dict(T=-3), "T must be"), (dict(rule="hebb"), "unknown rule"),
     (dict(lr=float("nan")), "lr must be"), (dict(loss="hinge"), "unknown loss"),
     (dict(encoding="morse"), "unknown encoding"), (dict(optimizer="lion"), "unknown optimizer"),
     (dict(mode="burst", rule="microcircuit"), "unknown mode"), (dict(batch_size=0), "batch_size"),
     (dict(lr_schedule="bogus"), "unknown lr_schedule"), (dict(warmup=-1), "warmup"),
     (dict(weight_decay=-1.0), "weight_decay"), (dict(momentum=5.0), "momentum"),
     (dict(rule="scfa", mode="spiking"), "options of rule='microcircuit'"),
     (dict(rule="bp", feedback="random"), "options of rule='microcircuit'"), (dict(seed=-1), "seed"),
     (dict(flip="yes"), "flip must be"), (dict(augment=1.5), "augment must be"),
     (dict(theta=0), "theta must be"), (dict(feedback="sideways", rule="microcircuit"), "unknown feedback"),
     (dict(epochs=0), "epochs must be"), (dict(layers=[16, "ten"]), r"layers\[1\]")],
)
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Network(**{"layers": [16, 8, 4], **kwargs})


def _shift(img, dy, dx):
    """``img`` (C, H, W) moved down ``dy`` and right ``dx`` pixels, zero fill: written by hand."""
    C, H, W = img.shape
    out = np.zeros_like(img)
    for y in range(H):
        for x in range(W):
            if 0 <= y - dy < H and 0 <= x - dx < W:
                out[:, y, x] = img[:, y - dy, x - dx]
    return out


def test_augment_shifts_each_batch_within_range():
    """Every image of a batch is its own shift by one (dy, dx) with |dy|, |dx| <= augment."""
    rng = np.random.default_rng(3)
    x = np.random.default_rng(0).random((5, 2, 6, 6)).astype(np.float32)
    seen = set()
    for _ in range(30):
        out = augment(x.copy(), rng, (2, 6, 6), shift=2)
        fits = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                if all(np.array_equal(out[i], _shift(x[i], dy, dx)) for i in range(5))]
        assert len(fits) == 1
        seen.add(fits[0])
    assert len(seen) > 5  # the shift is drawn anew for each batch


def test_flip_mirrors_about_half_the_images():
    """With ``flip``, each image is itself or its left-right mirror, about half of them mirrored."""
    rng = np.random.default_rng(0)
    x = np.random.default_rng(1).random((400, 64)).astype(np.float32)
    out = augment(x.copy(), rng, (64,), flip=True).reshape(400, 8, 8)  # flat: read as 8 x 8 images
    img = x.reshape(400, 8, 8)
    same = np.array([np.array_equal(o, i) for o, i in zip(out, img)])
    mirrored = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, img)])
    assert np.all(same ^ mirrored)
    assert 160 < mirrored.sum() < 240  # Binomial(400, 1/2): mean 200, sd 10
    assert augment(x, rng, (64,), flip=True) is not x
    assert augment(x, rng, (64,)) is x  # no augmentation: the batch passes untouched
    with pytest.raises(ValueError, match="square number of pixels"):
        augment(x[:, :60], rng, (60,), shift=1)


def test_diverging_learning_rate_stops():
    x, y = toy(256)
    net = Network([16, 32, 4], rule="bp", optimizer="sgd", lr=1e38, momentum=0.0, loss="mse", seed=0,
                  lr_schedule="constant", epochs=3)
    with pytest.raises(DivergenceError, match="Lower the learning rate"):
        net.fit(x, y)
    assert net.epoch_ == 0  # the failing epoch is not counted


# --------------------------------------------------------------------- GPU
def _cupy_ok():
    return backend.is_cupy_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cupy_ok(), reason="needs CuPy and a CUDA device")
def test_cupy_matches_numpy():
    x, y = toy(64)
    results = {}
    for name in ("numpy", "cupy"):
        backend.set_backend(name)
        try:
            net = Network([16, 32, 4], rule="microcircuit", T=8, seed=0)
            X, Y = backend.asarray(x), backend.asarray(y)
            ups, _ = net.updates(X, Y)
            results[name] = (backend.to_numpy(net.layers[0].r) * 8, [backend.to_numpy(u[0]) for u in ups])
        finally:
            backend.set_backend("numpy")
    counts_np, ups_np = results["numpy"]
    counts_cp, ups_cp = results["cupy"]
    assert np.mean(np.rint(counts_np) == np.rint(counts_cp)) > 0.999  # threshold crossings at 1 ulp may differ
    for a, b in zip(ups_np, ups_cp):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(a).max())
