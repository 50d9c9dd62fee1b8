"""The two yardsticks' gradients, each against an independent computation in float64.

- ``bptt`` against torch autograd on the same spiking network, written here from scratch
  (LIF with the soft reset in the graph, surrogate spike derivatives, dense and conv layers,
  average and max pooling, both losses, every surrogate, T >= 3). torch is a test requirement
  (the ``test`` extra installs its CPU build), so this runs in CI.
- ``bp`` (rate-BP) against central finite differences of the *linearised rate network*: each
  layer's rates move with its current through its time-averaged gain,
  ``r~^l = r^l + g^l (.) (I^l(W^l, r~^{l-1}) - I^l)``, whose exact gradient rate-BP claims to be.
"""

from __future__ import annotations

import numpy as np
import pytest

from microcircuit import Conv, Network, Pool, backend

torch = pytest.importorskip("torch", reason="torch is the BPTT oracle: pip install -e '.[test]' installs it")
F = torch.nn.functional

SURROGATES = ("triangle", "box", "fast_sigmoid")
DENSE = [7, 9, 5, 3]
CONV = [(2, 8, 8), Conv(3, kernel=3, padding=1), Pool(2, "max"), Conv(5, kernel=3, stride=2, padding=1),
        Pool(2, "avg"), 7, 3]


@pytest.fixture
def float64():
    backend.set_dtype("float64")
    yield
    backend.set_dtype("float32")


def _net(layers, rule, *, seed=0, **settings):
    settings = {"T": 5, "weight_scale": 2.5, "theta": 1.0, **settings}
    return Network(layers, rule=rule, seed=seed, **settings)


def _data(net, n=6, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.random((n, *net.in_shape))
    y = rng.integers(0, net.n_classes, n)
    return x, y


def _relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


# ------------------------------------------------------------------- torch's network
def _phi(u, theta, surrogate, width):
    d = (u - theta).abs() / width
    if surrogate == "triangle":
        return torch.clamp(1 - d, min=0)
    if surrogate == "box":
        return (d < 1).to(u.dtype)
    return 1 / (1 + d) ** 2


class _Spike(torch.autograd.Function):
    """H(u - theta) forward; the surrogate phi'(u) backward."""

    @staticmethod
    def forward(ctx, u, theta, surrogate, width):
        ctx.save_for_backward(u, theta)
        ctx.surrogate, ctx.width = surrogate, width
        return (u >= theta).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        u, theta = ctx.saved_tensors
        return grad * _phi(u, theta, ctx.surrogate, ctx.width), None, None, None


def _max_pool_shared(x, k):
    """Max over k x k windows whose gradient goes to the cells holding the maximum, ties shared
    equally. That is the library's definition (binary spikes tie often), written here anew; torch's
    ``F.max_pool2d`` gives a tied window's gradient to one cell instead, so it is not the oracle here."""
    B, C, H, W = x.shape
    w = x.reshape(B, C, H // k, k, W // k, k)
    mask = (w == w.amax(dim=(3, 5), keepdim=True)).to(x.dtype)
    mask = mask / mask.sum(dim=(3, 5), keepdim=True)
    return (w * mask.detach()).sum(dim=(3, 5))


def torch_gradients(net, inputs, y):
    """Loss, output rates and the gradient of every plastic layer's (W, b), by autograd.

    ``inputs``: the input at each step, (T, batch, ...). Shares with the library only the
    initial weights, the thresholds and the settings.
    """
    cfg = net.config
    alpha = float(np.exp(-1.0 / cfg.tau_m))
    T, B = inputs.shape[:2]
    params, thetas = [], []
    for layer in net.layers:
        if layer.plastic:
            W = torch.tensor(backend.to_numpy(layer.W), dtype=torch.float64, requires_grad=True)
            b = torch.tensor(backend.to_numpy(layer.b), dtype=torch.float64, requires_grad=True)
            params.append((W, b))
            theta = cfg.theta if layer.theta is None else backend.to_numpy(layer.theta)
            thetas.append(torch.as_tensor(theta, dtype=torch.float64))
        else:
            params.append(None)
            thetas.append(None)
    v = [None] * len(net.layers)
    count = None
    for t in range(T):
        s = torch.tensor(inputs[t], dtype=torch.float64)
        for i, layer in enumerate(net.layers):
            spec = layer.spec
            if isinstance(spec, Pool):
                s = F.avg_pool2d(s, spec.size) if spec.kind == "avg" else _max_pool_shared(s, spec.size)
                continue
            W, b = params[i]
            if isinstance(spec, Conv):
                current = F.conv2d(s, W, stride=spec.stride, padding=spec.padding) + b
            else:
                current = s.reshape(B, -1) @ W.T + b
            u = current if v[i] is None else alpha * v[i] + current
            s = _Spike.apply(u, thetas[i], cfg.surrogate, cfg.width)
            v[i] = u - thetas[i] * s  # the soft reset stays in the graph
        count = s if count is None else count + s
    r = count / T
    target = F.one_hot(torch.tensor(y), net.n_classes).to(torch.float64)
    if cfg.loss == "ce":
        loss = F.cross_entropy(cfg.output_scale * r, torch.tensor(y))
    else:
        loss = 0.5 * ((r - target) ** 2).sum(1).mean()
    loss.backward()
    grads = [None if p is None else (p[0].grad.numpy(), p[1].grad.numpy()) for p in params]
    return float(loss.detach()), r.detach().numpy(), grads


def _library(net, x, y):
    ups, loss = net.updates(backend.asarray(x), backend.asarray(y))
    first = net.layers[0].history
    inputs = np.stack([backend.to_numpy(step[0]) for step in first])
    return ups, float(loss), backend.to_numpy(net.layers[-1].r), inputs


def _check_against_torch(net, x, y):
    ups, loss, r, inputs = _library(net, x, y)
    t_loss, t_r, grads = torch_gradients(net, inputs, y)
    assert np.array_equal(r, t_r), "the two forward passes differ"
    assert loss == pytest.approx(t_loss, rel=1e-12)
    hidden = [layer.r for layer in net.layers[:-1] if layer.plastic]
    assert all(float(h.max()) > 0 for h in hidden), "a silent layer tests nothing"
    checked = 0
    for i, (up, grad) in enumerate(zip(ups, grads)):
        if grad is None:
            assert up is None
            continue
        for ours, theirs, what in ((up[0], grad[0], "W"), (up[1], grad[1], "b")):
            ours = -backend.to_numpy(ours)  # updates are descent steps: -dE/dparam
            assert np.abs(theirs).max() > 0, f"layer {i}: {what} has no gradient to compare"
            assert _relative(ours, theirs.reshape(ours.shape)) < 1e-10, f"layer {i} {what}"
            checked += 1
    assert checked == 2 * len(net.plastic_layers)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("loss", ["ce", "mse"])
@pytest.mark.parametrize("tau_m", [np.inf, 4.0])
def test_bptt_equals_autograd_dense(float64, surrogate, loss, tau_m):
    net = _net(DENSE, "bptt", surrogate=surrogate, loss=loss, tau_m=tau_m, width=0.7)
    _check_against_torch(net, *_data(net))


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_bptt_equals_autograd_conv_with_pooling(float64, surrogate, loss):
    net = _net(CONV, "bptt", surrogate=surrogate, loss=loss, T=4, tau_m=6.0, weight_scale=3.0)
    _check_against_torch(net, *_data(net, n=4))


def test_bptt_equals_autograd_with_spike_input_and_per_cell_thresholds(float64):
    """Bernoulli input spikes (a new input at every step) and a threshold per hidden cell."""
    net = _net(DENSE, "bptt", encoding="bernoulli", surrogate="fast_sigmoid", T=6, threshold_adaptation=0.01,
               theta=0.8)
    rng = np.random.default_rng(3)
    for layer in net.adapting_layers:
        layer.theta = backend.asarray(rng.uniform(0.5, 1.2, size=layer.b.shape))
    _check_against_torch(net, *_data(net))


def test_bptt_memory_grows_with_T(float64):
    """What BPTT stores: one record per step in every layer (the feedback rules store none)."""
    for T in (3, 7):
        net = _net(DENSE, "bptt", T=T)
        x, y = _data(net)
        net.updates(backend.asarray(x), backend.asarray(y))
        assert [len(layer.history) for layer in net.layers] == [T] * len(net.layers)
        other = _net(DENSE, "scfa", T=T)
        other.updates(backend.asarray(x), backend.asarray(y))
        assert all(layer.history is None for layer in other.layers)


def test_bptt_refuses_a_forward_pass_without_its_steps(float64):
    net = _net(DENSE, "bptt")
    x, y = _data(net)
    r = net.forward(backend.asarray(x))
    with pytest.raises(RuntimeError, match="keep=True"):
        net.rule.updates(net.layers, net.loss.error(r, backend.asarray(np.eye(3)[y])))


# ----------------------------------------------------------- rate-BP: finite differences
def _conv(x, W, stride, padding):
    """Plain cross-correlation (B, C, H, W) * (O, C, k, k) by a sliding window."""
    k = W.shape[-1]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("bchwij,ocij->bohw", win, W)


def _linearised_loss(net, state, params, x, Y):
    """The loss of the linearised rate network at ``params`` (a list of (W, b) or None)."""
    r = x
    for layer, (r_obs, g, current_obs), p in zip(net.layers, state, params):
        if p is None:  # average pooling: linear in the rates
            B, C, H, W = r.shape
            k = layer.size
            r = r.reshape(B, C, H // k, k, W // k, k).mean(axis=(3, 5))
            continue
        W, b = p
        if W.ndim == 4:
            current = _conv(r, W, layer.s, layer.p) + b
        else:
            current = r.reshape(r.shape[0], -1) @ W.T + b
        r = r_obs + g * (current - current_obs)
    if net.loss.kind == "ce":
        z = net.loss.c * r
        z = z - z.max(1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-(Y * log_p).sum(1).mean())
    return float(0.5 * ((r - Y) ** 2).sum(1).mean())


@pytest.mark.parametrize("loss", ["ce", "mse"])
@pytest.mark.parametrize("layers", [DENSE, [(2, 6, 6), Conv(3, kernel=3, padding=1), Pool(2, "avg"), 5, 3]],
                         ids=["dense", "conv"])
def test_rate_bp_is_the_gradient_of_the_linearised_rate_network(float64, loss, layers):
    net = _net(layers, "bp", loss=loss, surrogate="fast_sigmoid", T=6)
    x, y = _data(net)
    ups, _ = net.updates(backend.asarray(x), backend.asarray(y))
    params = [None if not layer.plastic else (backend.to_numpy(layer.W).copy(), backend.to_numpy(layer.b).copy())
              for layer in net.layers]
    state, r = [], x
    for layer, p in zip(net.layers, params):  # the forward pass's own rates and gains, and its currents
        if p is None:
            state.append((None, None, None))
            r = backend.to_numpy(layer.r)
            continue
        W, b = p
        current = (_conv(r, W, layer.s, layer.p) if W.ndim == 4 else r.reshape(r.shape[0], -1) @ W.T) + b
        state.append((backend.to_numpy(layer.r), backend.to_numpy(layer.g), current))
        r = backend.to_numpy(layer.r)
    Y = np.eye(net.n_classes)[y]
    h = 1e-6
    for i, p in enumerate(params):
        if p is None:
            continue
        for j, array in enumerate(p):
            numeric = np.zeros_like(array)
            for idx in np.ndindex(array.shape):
                old = array[idx]
                array[idx] = old + h
                up = _linearised_loss(net, state, params, x, Y)
                array[idx] = old - h
                down = _linearised_loss(net, state, params, x, Y)
                array[idx] = old
                numeric[idx] = (up - down) / (2 * h)
            assert np.abs(numeric).max() > 0
            assert _relative(-backend.to_numpy(ups[i][j]), numeric) < 1e-7, f"layer {i} param {j}"
