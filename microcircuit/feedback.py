"""Feedback: how the output error reaches each layer, by fixed wiring.

All rules share the forward pass and the update: a layer's weights move along
``Delta W^l = -eta (delta^l)^T r^{l-1}`` (batch-averaged; biases with ``r = 1``).
The rules of this module differ only in the feedback that computes the local errors ``delta^l``::

    delta^L   = g^L (.) dE/dr^L
    delta^l   = g^l (.) (B^{l+1} delta^{l+1})          (bp, fa, scfa)
    delta^l   = g^l (.) (D^l delta^L)                  (dfa)

with the feedback matrix ``B^{l+1}`` (shape ``N_l x N_{l+1}``):

- ``bp``:   ``B = W^T`` (weight transport: rate-based backpropagation, "rate-BP");
- ``fa``:   ``B = M^T`` with ``M`` random and fixed (feedback alignment);
- ``scfa``: ``B = (|M| (.) sign(W))^T`` (sign-concordant feedback alignment): random fixed
  magnitudes, signs that follow the forward weights;
- ``dfa``:  a random fixed ``D^l`` (``N_l x N_L``) straight from the output to layer ``l``; the
  code stores its transpose, of shape ``(N_L, N_l)``, so that ``delta^L @ D`` applies it.

In code a feedback kernel ``K`` has the shape of ``W``, and ``B = K^T``; conv layers apply
``K`` by transposed convolution. The microcircuit (:mod:`microcircuit.circuit`) computes
SC-FA's updates with explicit error cells on the same wiring; BPTT (:mod:`microcircuit.bptt`)
unrolls time instead. The names of the rules are in :mod:`microcircuit.rules` (the registry).

``updates(layers, e)`` takes the output error ``e = -dE/dr^L`` and returns, per layer, the
update per unit learning rate ``(-delta^T r_pre, -mean(delta))`` (``None`` for pooling).
"""

from __future__ import annotations

import math

import numpy as np

from . import backend


FEEDBACKS = ("sign_concordant", "symmetric", "random", "direct")
"""The feedback wirings (:class:`FixedFeedback`); the first three are layer to layer."""

LAYERWISE = FEEDBACKS[:3]
"""The wirings of :class:`FeedbackAlignment` (layer to layer)."""


def sign_concordant(W, M):
    """The SC-FA feedback kernel ``|M| (.) sign(W)``: random magnitudes, the signs of ``W``.

    Returned in ``W``'s shape; the feedback matrix is its transpose, ``B = |M|^T (.) sign(W^T)``.
    """
    xp = backend.xp()
    return xp.abs(M) * xp.sign(W)


def random_kernels(layers, rng, direct: bool = False):
    """Fixed random feedback weights, drawn once on the host.

    ``direct=False``: one ``M^l`` of ``W^l``'s shape for every plastic layer above the first
    (``M`` feeds layer ``l``'s errors down to layer ``l-1``);
    ``direct=True``: one ``(D^l)^T`` of shape ``(N_L, N_l)`` from the output to every hidden
    plastic layer. Entries are normal with the standard deviation of ``W^l``'s
    initialisation (``1 / sqrt(fan_in)``) or ``1 / sqrt(N_L)`` for ``D``.
    """
    kernels = [None] * len(layers)
    n_out = layers[-1].out_shape[0]
    for i, layer in enumerate(layers):
        if not layer.plastic:
            continue
        if direct and i < len(layers) - 1:
            n_cells = int(np.prod(layer.out_shape))
            kernels[i] = backend.asarray(rng.normal(0.0, 1.0 / math.sqrt(n_out), size=(n_out, n_cells)))
        elif not direct and i > 0:
            fan_in = int(np.prod(layer.W.shape[1:]))
            kernels[i] = backend.asarray(rng.normal(0.0, 1.0 / math.sqrt(fan_in), size=layer.W.shape))
    return kernels


class Rule:
    """Base class: a rule turns the output error into per-layer weight updates.

    ``keeps_history``: whether the rule needs every time step of the forward pass (BPTT);
    the rules of this module need only the rates and gains it leaves.
    """

    name = "rule"
    keeps_history = False

    def init(self, layers, rng):
        """Draw whatever fixed feedback weights the rule needs."""
        self.kernels = [None] * len(layers)

    def updates(self, layers, e):  # pragma: no cover - abstract
        raise NotImplementedError

    def state(self) -> dict:
        """Fixed feedback weights as host arrays, for ``Network.save``."""
        return {f"feedback_{i}": backend.to_numpy(k) for i, k in enumerate(self.kernels) if k is not None}

    def load_state(self, arrays: dict):
        for i in range(len(self.kernels)):
            key = f"feedback_{i}"
            if key in arrays:
                self.kernels[i] = backend.asarray(arrays[key])


def descent_updates(layers, deltas):
    """``(-delta^T r_pre, -mean delta)`` per plastic layer: SGD's step per unit learning rate."""
    return [None if d is None else layers[i].hebbian(-d, layers[i].r_pre) for i, d in enumerate(deltas)]


class FixedFeedback(Rule):
    """A rule whose feedback wiring is one of:

    ``"symmetric"`` (``K = W``), ``"random"`` (``K = M``), ``"sign_concordant"``
    (``K = |M| (.) sign(W)``) or ``"direct"`` (``D^l`` from the output to every layer).
    """

    def init(self, layers, rng):
        self.kernels = [None] * len(layers)
        if self.feedback != "symmetric":
            self.kernels = random_kernels(layers, rng, direct=self.feedback == "direct")

    def kernel(self, i, layer):
        """The feedback kernel ``K^i`` (``W``'s shape) that carries layer ``i``'s errors down."""
        if self.feedback == "symmetric":
            return layer.W
        if self.feedback == "random":
            return self.kernels[i]
        return sign_concordant(layer.W, self.kernels[i])


class FeedbackAlignment(FixedFeedback):
    """Layer-to-layer feedback: ``delta^l = g^l (.) (delta^{l+1} K^{l+1})`` (``B = K^T``).

    ``feedback`` picks ``K``: ``"symmetric"`` (``W``: bp), ``"random"`` (``M``: fa) or
    ``"sign_concordant"`` (``|M| (.) sign(W)``: scfa).
    """

    def __init__(self, feedback: str = "sign_concordant"):
        if feedback not in LAYERWISE:
            raise ValueError(f"unknown feedback {feedback!r}: choose one of {LAYERWISE}")
        self.feedback = feedback
        self.name = feedback  # the registry names the rule it builds (bp, fa, scfa)

    def local_errors(self, layers, e):
        """``delta^l`` for every plastic layer (``None`` for pooling), from ``e = -dE/dr^L``."""
        deltas = [None] * len(layers)
        signal = -e  # dE/dr of the layer being visited
        for i in reversed(range(len(layers))):
            layer = layers[i]
            if not layer.plastic:
                signal = layer.backward(signal)
                continue
            deltas[i] = layer.g * signal
            if i > 0:
                signal = layer.backward(deltas[i], self.kernel(i, layer))
        return deltas

    def updates(self, layers, e):
        return descent_updates(layers, self.local_errors(layers, e))


class DirectFeedbackAlignment(FixedFeedback):
    """Direct feedback: ``delta^l = g^l (.) (D^l delta^L)`` for every hidden layer (``delta^L @ kernel``,
    the kernel being ``(D^l)^T``)."""

    name = "dfa"
    feedback = "direct"

    def local_errors(self, layers, e):
        L = len(layers) - 1
        deltas = [None] * len(layers)
        deltas[L] = layers[L].g * -e
        for i, layer in enumerate(layers[:-1]):
            if layer.plastic:
                deltas[i] = layer.g * (deltas[L] @ self.kernels[i]).reshape(layer.g.shape)
        return deltas

    def updates(self, layers, e):
        return descent_updates(layers, self.local_errors(layers, e))
