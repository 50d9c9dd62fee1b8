"""Backpropagation through time (BPTT) with surrogate gradients: the spiking-network yardstick.

The rules of :mod:`microcircuit.feedback` see a forward pass only through what it leaves at the
end (rates ``r``, time-averaged gains ``g``); BPTT differentiates the spiking network itself,
step by step, as surrogate-gradient training does in snnTorch and SpikingJelly. Here the soft
reset stays in the graph (SpikingJelly's default; snnTorch detaches it by default). The network is the library's own: every
layer ``l`` at step ``t`` (:mod:`microcircuit.neurons`)::

    I[t]     = W s^{l-1}[t] + b                       (s^0[t]: the encoded input)
    u[t]     = alpha v[t-1] + I[t]                    (the potential before reset)
    s[t]     = H(u[t] - theta)                        (surrogate: ds/du = phi'(u))
    v[t]     = u[t] - theta s[t]                      (the soft reset, differentiated too)

and the loss reads the output rates ``r^L = (1/T) sum_t s^L[t]``. The chain rule backwards,
from ``dE/ds^L[t] = (1/T) dE/dr^L`` and ``dE/dv[T] = 0``::

    dE/du[t] = dE/ds[t] phi'(u[t]) + dE/dv[t] (1 - theta phi'(u[t]))
    dE/dv[t-1] = alpha dE/du[t]
    dE/dW    = sum_t dE/du[t]^T s^{l-1}[t],   dE/db = sum_t dE/du[t]
    dE/ds^{l-1}[t] = dE/du[t] W                (conv: a transposed convolution; pooling: its adjoint)

Pooling carries each step's errors back as the layer did forward: uniformly (average) or to the
window's cells that held its maximum at that step (max; ties share). Thresholds (per cell with
intrinsic plasticity) are constants. The weight and bias gradients are those of the batch-mean
loss, the same scale as every other rule's updates.

What BPTT must store, and the other rules need not: each layer's input, potential and current at
every one of the ``T`` steps (:meth:`~microcircuit.layers.PyramidalLayer.step` keeps them when
the forward pass is asked to), so its memory grows linearly with ``T``; the feedback rules' stays
flat. ``python -m microcircuit bench --rules bptt`` measures it.
"""

from __future__ import annotations

from . import backend
from .feedback import Rule
from .neurons import lif_step, surrogate_gain


class BPTT(Rule):
    """Surrogate-gradient backpropagation through the ``T`` steps of the spiking network.

    ``updates(layers, e)`` needs a forward pass that kept its steps
    (``Network.forward(x, keep=True)``, which ``Network`` asks for since ``keeps_history`` is set).
    """

    name = "bptt"
    keeps_history = True

    def init(self, layers, rng):
        self.kernels = [None] * len(layers)  # no feedback weights: the chain rule uses W itself

    def updates(self, layers, e):
        """Per plastic layer ``(-dE/dW, -dE/db)`` (per unit learning rate), ``None`` for pooling,
        from the output error ``e = -dE/dr^L``."""
        xp = backend.xp()
        T = len(_history(layers[-1]))
        grad = xp.broadcast_to(-e / T, (T, *e.shape))  # dE/ds^L[t]
        out = [None] * len(layers)
        for i in reversed(range(len(layers))):
            layer = layers[i]
            if not layer.plastic:
                grad = _pool_backward(layer, grad)
                continue
            du, x, constant = _through_time(layer, grad)
            batch = e.shape[0]
            if constant:  # the same input at every step: sum_t du[t]^T x = (sum_t du[t])^T x
                dW, db = layer.hebbian(du.sum(axis=0), x)
            else:  # every step at once, as one batch of T * batch samples (hebbian divides by it)
                dW, db = layer.hebbian(du.reshape(T * batch, *du.shape[2:]), x.reshape(T * batch, *x.shape[2:]))
                dW, db = dW * T, db * T
            out[i] = (-dW, -db)
            if i > 0:
                down = layer.backward(du.reshape(T * batch, *du.shape[2:]), layer.W)
                grad = down.reshape(T, batch, *down.shape[1:])
        return out


def _history(layer) -> list:
    history = getattr(layer, "history", None)
    if history is None:
        raise RuntimeError("BPTT needs the forward pass's time steps: run Network.forward(x, keep=True) "
                           "(Network.updates does) before rule.updates")
    return history


def _through_time(layer, grad):
    """``(dE/du, inputs, constant)`` of a pyramidal layer from ``grad = dE/ds[t]`` (T, batch, ...).

    ``inputs`` are ``s^{l-1}[t]`` stacked (T, batch, ...) or, where the input was the same array
    at every step (direct encoding), that one array, with ``constant`` True.
    """
    xp = backend.xp()
    steps = _history(layer)
    inputs = [x for x, _, _ in steps]
    constant = all(x is inputs[0] for x in inputs)
    v_before = xp.stack([v for _, v, _ in steps])
    currents = xp.stack([current for _, _, current in steps])
    theta = layer.lif.theta if layer.theta is None else layer.theta
    u, _, _ = lif_step(v_before, currents, layer.lif, theta)  # the potentials before reset, as the forward pass had them
    phi = surrogate_gain(u, layer.lif, theta)
    alpha = layer.lif.alpha
    du = xp.empty_like(u)
    dv = xp.zeros_like(u[0])
    for t in reversed(range(len(steps))):
        du[t] = grad[t] * phi[t] + dv * (1 - theta * phi[t])
        dv = du[t] if alpha == 1.0 else alpha * du[t]
    return du, (inputs[0] if constant else xp.stack(inputs)), constant


def _pool_backward(layer, grad):
    """Each step's errors (T, batch, C, h, w) carried back through the pooling of that step's
    input (T, batch, C, H, W)."""
    xp = backend.xp()
    T, batch = grad.shape[:2]
    flat = grad.reshape(T * batch, *grad.shape[2:])
    pre = None if layer.kind == "avg" else xp.stack([x for (x,) in _history(layer)]).reshape(T * batch, *layer.in_shape)
    down = layer.backward(flat, pre=pre)
    return down.reshape(T, batch, *down.shape[1:])
