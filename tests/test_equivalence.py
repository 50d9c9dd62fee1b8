"""The equivalence theorem as an executable check.

The microcircuit's Hebbian updates (explicit E+/E- cells, apical compartments) are held
against SC-FA computed here from scratch with plain NumPy in float64: a separate
implementation of delta^L = g^L * dE/dr^L, delta^l = g^l * (B^{l+1} delta^{l+1}),
Delta W = -delta^T r_pre / batch, sharing nothing with the library but the forward state.
"""

import numpy as np
import pytest

from microcircuit import Conv, Network, Pool, backend


def reference_scfa(net, x, y):
    """SC-FA updates written independently: dense recursion; conv by explicit loops."""
    net.forward(backend.asarray(x))
    layers = net.layers
    c = net.loss.c
    r = backend.to_numpy(layers[-1].r).astype(np.float64)
    Y = np.eye(net.n_classes)[y]
    if net.loss.kind == "ce":
        z = c * r
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dE_dr = c * (p - Y)
    else:
        dE_dr = r - Y
    out = [None] * len(layers)
    signal = dE_dr
    for i in reversed(range(len(layers))):
        layer = layers[i]
        if not layer.plastic:  # average pooling only in these tests
            k = layer.size
            signal = np.repeat(np.repeat(signal, k, axis=2), k, axis=3) / (k * k)
            continue
        g = backend.to_numpy(layer.g).astype(np.float64)
        delta = g * signal.reshape(g.shape)
        pre = backend.to_numpy(layer.r_pre).astype(np.float64)
        W = backend.to_numpy(layer.W).astype(np.float64)
        M = None if i == 0 else backend.to_numpy(net.rule.kernels[i]).astype(np.float64)
        B_kernel = None if M is None else np.abs(M) * np.sign(W)
        batch = x.shape[0]
        if W.ndim == 2:
            dW = -delta.T @ pre.reshape(batch, -1) / batch
            db = -delta.mean(0)
            if i > 0:
                signal = delta @ B_kernel  # = (B delta) with B = B_kernel^T
        else:
            dW, db, signal = _conv_reference(layer, delta, pre, B_kernel)
        out[i] = (dW, db)
    return out


def _conv_reference(layer, delta, pre, K):
    """Conv weight update and transposed-conv feedback by explicit loops over positions."""
    B, Co, OH, OW = delta.shape
    k, s, p = layer.k, layer.s, layer.p
    prep = np.pad(pre, ((0, 0), (0, 0), (p, p), (p, p)))
    dW = np.zeros(layer.W.shape)
    back = np.zeros_like(prep)
    for oh in range(OH):
        for ow in range(OW):
            patch = prep[:, :, oh * s : oh * s + k, ow * s : ow * s + k]  # (B, Ci, k, k)
            d = delta[:, :, oh, ow]  # (B, Co)
            dW -= np.einsum("bo,bikl->oikl", d, patch) / B
            if K is not None:
                back[:, :, oh * s : oh * s + k, ow * s : ow * s + k] += np.einsum("bo,oikl->bikl", d, K)
    db = -delta.sum(axis=(2, 3)).mean(0).reshape(Co, 1, 1)
    H, W = pre.shape[2:]
    return dW, db, back[:, :, p : p + H, p : p + W]


def _data(net, batch, seed):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, *net.in_shape))
    y = rng.integers(0, net.n_classes, size=batch)
    return x, y


DENSE = [[30, 20, 5], [30, 25, 20, 5], [30, 25, 20, 15, 5]]


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    backend.set_dtype(request.param)
    yield request.param
    backend.set_dtype("float32")


def _rel(a, b):
    return float(np.abs(backend.to_numpy(a).astype(np.float64) - b).max() / (np.abs(b).max() + 1e-30))


@pytest.mark.parametrize("sizes", DENSE, ids=["depth2", "depth3", "depth4"])
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_rate_mode_equals_scfa_dense(sizes, loss, dtype):
    net = Network(sizes, rule="microcircuit", T=8, loss=loss, seed=3, weight_scale=2.0)
    x, y = _data(net, 16, 1)
    ref = reference_scfa(net, x, y)
    ups, _ = net.updates(backend.asarray(x), backend.asarray(y))
    tol = 1e-5 if dtype == "float32" else 1e-10
    for (dW, db), (rW, rb) in zip(ups, ref):
        assert np.abs(rW).max() > 0  # a vanishing update would make the check empty
        assert _rel(dW, rW) < tol
        assert _rel(db, rb) < tol


def test_rate_mode_equals_scfa_conv(dtype):
    layers = [(2, 8, 8), Conv(4, kernel=3, padding=1), Pool(2), Conv(6, kernel=3, stride=2, padding=1), 5]
    net = Network(layers, rule="microcircuit", T=6, seed=0, weight_scale=2.5)
    x, y = _data(net, 4, 2)
    ref = reference_scfa(net, x, y)
    ups, _ = net.updates(backend.asarray(x), backend.asarray(y))
    tol = 1e-5 if dtype == "float32" else 1e-10
    for up, rf in zip(ups, ref):
        if rf is None:
            assert up is None
            continue
        assert np.abs(rf[0]).max() > 0
        assert _rel(up[0], rf[0]) < tol
        assert _rel(up[1], rf[1]) < tol


def test_library_scfa_rule_equals_microcircuit():
    """The two library routes (explicit cells vs delta recursion) agree too."""
    net = Network([30, 25, 20, 5], rule="microcircuit", T=8, seed=5, weight_scale=2.0)
    other = Network([30, 25, 20, 5], rule="scfa", T=8, seed=5, weight_scale=2.0)
    x, y = _data(net, 16, 3)
    a, _ = net.updates(backend.asarray(x), backend.asarray(y))
    b, _ = other.updates(backend.asarray(x), backend.asarray(y))
    for (dW, db), (eW, eb) in zip(a, b):
        np.testing.assert_allclose(backend.to_numpy(dW), backend.to_numpy(eW), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(backend.to_numpy(db), backend.to_numpy(eb), rtol=1e-5, atol=1e-7)


def test_scfa_with_copied_magnitudes_is_bp():
    """With |M| = |W| the sign-concordant feedback is W^T itself: SC-FA equals BP."""
    net = Network([30, 25, 20, 5], rule="scfa", T=8, seed=2, weight_scale=2.0)
    bp = Network([30, 25, 20, 5], rule="bp", T=8, seed=2, weight_scale=2.0)
    for i, layer in enumerate(net.layers):
        if net.rule.kernels[i] is not None:
            net.rule.kernels[i] = backend.xp().abs(layer.W) * backend.xp().sign(net.rule.kernels[i])
    x, y = _data(net, 16, 4)
    a, _ = net.updates(backend.asarray(x), backend.asarray(y))
    b, _ = bp.updates(backend.asarray(x), backend.asarray(y))
    for (dW, _), (eW, _) in zip(a, b):
        np.testing.assert_allclose(backend.to_numpy(dW), backend.to_numpy(eW), rtol=1e-5, atol=1e-7)
    # and with the original random magnitudes it is not BP (the check above can fail)
    plain = Network([30, 25, 20, 5], rule="scfa", T=8, seed=2, weight_scale=2.0)
    c, _ = plain.updates(backend.asarray(x), backend.asarray(y))
    assert not np.allclose(backend.to_numpy(c[0][0]), backend.to_numpy(b[0][0]), rtol=1e-3)


@pytest.mark.parametrize("feedback,rule", [("symmetric", "bp"), ("random", "fa"), ("direct", "dfa")])
def test_microcircuit_corollaries(feedback, rule):
    """The same circuit with other feedback wiring computes BP, FA and DFA."""
    mc = Network([30, 25, 20, 5], rule="microcircuit", feedback=feedback, T=8, seed=9, weight_scale=2.0)
    other = Network([30, 25, 20, 5], rule=rule, T=8, seed=9, weight_scale=2.0)
    x, y = _data(mc, 16, 5)
    a, _ = mc.updates(backend.asarray(x), backend.asarray(y))
    b, _ = other.updates(backend.asarray(x), backend.asarray(y))
    for (dW, db), (eW, eb) in zip(a, b):
        np.testing.assert_allclose(backend.to_numpy(dW), backend.to_numpy(eW), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(backend.to_numpy(db), backend.to_numpy(eb), rtol=1e-4, atol=1e-6)


def test_spiking_mode_is_unbiased():
    """Mean spiking-mode update over n trials -> SC-FA update; tolerance from the trial count.

    Each trial's update is an average of bounded Bernoulli estimates; we measure the
    per-entry standard deviation over the n trials and require every entry of the mean to lie
    within 6 standard errors (sd / sqrt(n)) of the rate-mode value, and the relative error of
    the whole mean to shrink like 1/sqrt(n).
    """
    backend.set_dtype("float64")
    try:
        net = Network([12, 10, 8, 4], rule="microcircuit", mode="spiking", T_e=16, T=8, seed=1, weight_scale=2.0)
        rate = Network([12, 10, 8, 4], rule="microcircuit", mode="rate", T=8, seed=1, weight_scale=2.0)
        x, y = _data(net, 8, 6)
        X, Y = backend.asarray(x), backend.asarray(y)
        exact, _ = rate.updates(X, Y)
        n = 1500
        samples = [[] for _ in exact]
        for _ in range(n):
            ups, _ = net.updates(X, Y)
            for k, (dW, _) in enumerate(ups):
                samples[k].append(backend.to_numpy(dW))
        for k, (eW, _) in enumerate(exact):
            S = np.stack(samples[k])
            mean, sem = S.mean(0), S.std(0) / np.sqrt(n)
            assert np.all(np.abs(mean - eW) <= 6 * sem + 1e-12), f"layer {k} mean outside 6 SEM"
            half = S[: n // 4].mean(0)
            err_full = np.linalg.norm(mean - eW) / np.linalg.norm(eW)
            err_quarter = np.linalg.norm(half - eW) / np.linalg.norm(eW)
            assert err_full < 0.05
            assert err_full < err_quarter  # more trials, closer
            assert np.any(S.std(0) > 0)  # it really is noisy
    finally:
        backend.set_dtype("float32")


@pytest.mark.parametrize("layers, flatten", [([784, 32, 16, 10], True),
                                             ([(1, 28, 28), Conv(4, 3, padding=1), Pool(2), 16, 10], False)])
def test_rate_mode_run_is_bit_identical_to_scfa(layers, flatten):
    """A whole training run, not one update: with the error cells' noise on its own stream,
    the rate-mode microcircuit and SC-FA (same seed, shuffling, augmentation and Bernoulli
    input) reach exactly the same weights, so the book can say "bit-identical", not "close"."""
    from microcircuit.data import load_sample

    x, y = load_sample("mnist", "train", flatten=flatten)
    x, y = x[:300], y[:300]
    kw = dict(T=4, seed=3, epochs=2, batch_size=32, augment=2, encoding="bernoulli")
    mc = Network(layers, rule="microcircuit", **kw).fit(x, y)
    sc = Network(layers, rule="scfa", **kw).fit(x, y)
    for a, b in zip(mc.plastic_layers, sc.plastic_layers):
        assert np.array_equal(backend.to_numpy(a.W), backend.to_numpy(b.W))
        assert np.array_equal(backend.to_numpy(a.b), backend.to_numpy(b.b))
    assert [h["train_loss"] for h in mc.history_] == [h["train_loss"] for h in sc.history_]
    # and the identity is not vacuous: another rule on the same data goes elsewhere
    fa = Network(layers, rule="fa", **kw).fit(x, y)
    assert not np.array_equal(backend.to_numpy(fa.plastic_layers[0].W), backend.to_numpy(sc.plastic_layers[0].W))


def test_spiking_error_noise_does_not_move_data_order():
    """The spiking microcircuit draws its error spikes from its own stream: the training
    generator (data order, augmentation) ends an epoch where SC-FA's ends."""
    from microcircuit.data import load_sample

    x, y = load_sample("mnist", "train")
    kw = dict(T=4, seed=5, batch_size=50, augment=1)
    spk = Network([784, 16, 10], rule="microcircuit", mode="spiking", T_e=4, **kw)
    sc = Network([784, 16, 10], rule="scfa", **kw)
    spk.partial_fit(x[:200], y[:200])
    sc.partial_fit(x[:200], y[:200])
    assert spk.train_rng.bit_generator.state == sc.train_rng.bit_generator.state


def test_binomial_counts_have_the_law_of_spike_trains():
    """``ErrorCells.spiking`` draws one Binomial(T_e, p) count per cell; ``spike_trains`` draws
    T_e Bernoulli steps. Same mean and variance per cell (checked over many draws), and one
    draw per pair leaves the silent partner silent."""
    from microcircuit.circuit import ErrorCells

    backend.set_dtype("float64")
    try:
        gen = backend.noise_generator(11)
        drive = np.array([[0.9, -0.3, 0.0, 0.05, -1.2]])
        cells = ErrorCells.from_drive(np.ones_like(drive), drive)
        T_e, n = 8, 20000
        counts = np.stack([ErrorCells.spiking(cells, T_e, gen).signed for _ in range(n)])
        trains = [cells.spike_trains(T_e, gen) for _ in range(n // 4)]
        s = 1.2
        train_est = np.stack([s * (p.sum(0) - m.sum(0)) / T_e for p, m in trains])
        for est, k in ((counts, n), (train_est, n // 4)):
            sd = np.sqrt(np.abs(drive) * (s - np.abs(drive)) / T_e)  # s * sqrt(p (1 - p) / T_e)
            assert np.all(np.abs(est.mean(0) - drive) <= 5 * sd / np.sqrt(k) + 1e-12)
            np.testing.assert_allclose(est.std(0), sd, rtol=0.06, atol=1e-12)
        one = cells.spiking(T_e, gen)
        assert np.all(one.neg[drive > 0] == 0) and np.all(one.pos[drive < 0] == 0)
    finally:
        backend.set_dtype("float32")


def test_the_public_error_phase_takes_a_mode_a_generator_and_a_sign_without_touching_the_rule():
    """What the widgets and exercises ask of the circuit, through its public error phase only."""
    net = Network([16, 12, 8, 4], rule="microcircuit", T=4, seed=0, weight_scale=2.0)
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 16)).astype(np.float32), rng.integers(0, 4, 32)
    r = net.forward(backend.asarray(x))
    e = net.loss.error(r, backend.asarray(np.eye(4, dtype=np.float32)[y]))
    rule, gen = net.rule, net.rule.gen
    state = gen.bit_generator.state
    spiking = rule.error_phase(net.layers, e, mode="spiking", gen=backend.noise_generator(5))
    again = rule.error_phase(net.layers, e, mode="spiking", gen=backend.noise_generator(5))
    rate = rule.error_phase(net.layers, e)
    assert rule.mode == "rate" and rule.gen is gen and gen.bit_generator.state == state  # nothing moved
    hidden = [i for i, c in enumerate(rate) if c is not None][:-1]
    assert all(np.array_equal(backend.to_numpy(spiking[i].signed), backend.to_numpy(again[i].signed)) for i in hidden)
    assert any(not np.array_equal(backend.to_numpy(spiking[i].signed), backend.to_numpy(rate[i].signed)) for i in hidden)
    normal, inverted = rule.updates(net.layers, e), rule.updates(net.layers, e, sign=-1)
    flips = [np.allclose(backend.to_numpy(b[0]), -backend.to_numpy(a[0])) for a, b in zip(normal, inverted)]
    same = [np.array_equal(backend.to_numpy(b[0]), backend.to_numpy(a[0])) for a, b in zip(normal, inverted)]
    assert flips == [False, True, False] and same == [True, False, True]  # one inversion per layer crossed
    with pytest.raises(ValueError, match="unknown microcircuit mode"):
        rule.error_phase(net.layers, e, mode="bursting")
