"""The microcircuit: pyramidal cells, E+ and E- error cells, and local feedback.

Three cell types per position ``i`` of a layer: the pyramidal cell ``P_i`` (basal, soma,
apical; :mod:`microcircuit.layers`) and two error cells, ``E+_i`` ("fire more") and
``E-_i`` ("fire less"). Two types of connectivity:

A. feedforward ``P^{l-1} -> basal(P^l)`` through the plastic weights ``W^l``;
B. feedback ``E+/E- of layer l+1 -> apical(P^l)`` through fixed weights ``B^{l+1}``
   whose sign follows the forward synapse they mirror: ``B = |M| (.) sign(W^T)``.

The error phase, from the output down:

- output layer: ``E+ = [g^L e]_+``, ``E- = [g^L e]_-`` with ``e = -dE/dr^L`` (:mod:`~microcircuit.losses`);
- hidden layer: the apical compartment sums ``a = B^{l+1} E+ - B^{l+1} E-`` (excitatory and
  inhibitory routes), and the error cells fire ``E+ = [g^l a]_+``, ``E- = [g^l a]_-``;
- Hebbian rule in the local compartment: ``Delta W^l = eta (E+ - E-)^T r^{l-1}``.

Since ``E+ - E- = -delta`` at every layer, this is SC-FA's update exactly in rate mode;
in spiking mode the error cells fire Bernoulli spikes for ``T_e`` steps and the update is
an unbiased estimate of it (:doc:`chapter 8 </chapters/08_equivalence>` proves both).
"""

from __future__ import annotations

import numbers

import numpy as np

from . import backend
from .feedback import FEEDBACKS, FixedFeedback

MODES = ("rate", "spiking")


class ErrorCells:
    """The E+ and E- populations of one layer, as rates ``pos >= 0`` and ``neg >= 0``."""

    def __init__(self, pos, neg):
        self.pos = pos
        self.neg = neg

    @classmethod
    def from_drive(cls, g, a):
        """Error cells driven by ``g (.) a``: ``E+ = [g a]_+``, ``E- = [g a]_-``."""
        xp = backend.xp()
        fused = backend.kernel(_drive_kernel)
        if (fused is not None and g.shape == a.shape and g.dtype == a.dtype and g.flags.c_contiguous
                and a.flags.c_contiguous):
            pos, neg = xp.empty_like(g), xp.empty_like(g)
            fused(g.reshape(-1), a.reshape(-1), pos.reshape(-1), neg.reshape(-1), g.dtype.type(0))
            return cls(pos, neg)
        drive = g * a
        return cls(xp.maximum(drive, 0.0), xp.maximum(-drive, 0.0))

    @property
    def signed(self):
        """``E+ - E-``: the signed error the pair encodes."""
        return self.pos - self.neg

    def spiking(self, T_e: int, gen):
        """Simulate the pair as Bernoulli spiking cells for ``T_e`` steps; the rate estimates.

        Rates are scaled into [0, 1] by ``s = max(E+, E-)`` over the layer's batch; each
        cell fires with probability ``rate / s`` per step; the estimate is
        ``s * count / T_e``, whose expectation is the rate (the scale ``s`` is undone).

        Only the spike *count* enters the estimate, and a count of ``T_e`` Bernoulli(``p``)
        steps is Binomial(``T_e``, ``p``): one draw per cell gives it with exactly that law
        (:meth:`spike_trains` draws the steps themselves, for pictures). Of a pair driven by
        one potential (:meth:`from_drive`) at most one cell is active, so one draw serves both.
        """
        scale, T_e = self._scale(), int(T_e)  # a Python int: a NumPy integer would promote to float64
        fused = self._spiking_fused(T_e, gen, scale)
        if fused is not None:
            return fused
        p_pos, p_neg = self.pos / scale, self.neg / scale
        xp = backend.xp()
        if xp.any((p_pos > 0) & (p_neg > 0)):  # both cells active: draw each
            n_pos, n_neg = backend.binomial(gen, T_e, p_pos), backend.binomial(gen, T_e, p_neg)
        else:
            count = backend.binomial(gen, T_e, p_pos + p_neg)
            n_pos, n_neg = xp.where(p_pos > 0, count, 0.0), xp.where(p_neg > 0, count, 0.0)
        return ErrorCells(scale * n_pos / T_e, scale * n_neg / T_e)

    def _spiking_fused(self, T_e: int, gen, scale):
        """:meth:`spiking` as one Numba pass (optional kernel), or ``None`` where it does not
        apply: kernels off, another generator or layout, both cells of a pair active, or
        probabilities out of [0, 1] (then NumPy's sampler raises, as it does)."""
        fused = backend.kernel(_spiking_kernel) if hasattr(gen, "bit_generator") else None
        pos, neg = self.pos, self.neg
        if (fused is None or pos.shape != neg.shape or not pos.flags.c_contiguous or not neg.flags.c_contiguous
                or not pos.dtype == neg.dtype == backend.dtype()):
            return None
        xp, dt = backend.xp(), pos.dtype.type
        out_pos, out_neg = xp.empty_like(pos), xp.empty_like(neg)
        if fused(gen, int(T_e), pos.reshape(-1), neg.reshape(-1), dt(scale), dt(T_e), dt(0), out_pos.reshape(-1),
                 out_neg.reshape(-1)):
            return ErrorCells(out_pos, out_neg)
        return None

    def spike_trains(self, T_e: int, gen):
        """The spikes themselves: boolean arrays ``(T_e, *shape)`` for E+ and E-.

        Each step, each cell fires with probability ``rate / s`` (see :meth:`spiking`); the
        counts ``trains.sum(0)`` have the law :meth:`spiking` draws directly.
        """
        scale = self._scale()
        p_pos, p_neg = self.pos / scale, self.neg / scale
        xp = backend.xp()
        pos = xp.stack([backend.uniform(gen, p_pos.shape) < p_pos for _ in range(T_e)])
        neg = xp.stack([backend.uniform(gen, p_neg.shape) < p_neg for _ in range(T_e)])
        return pos, neg

    def _scale(self):
        """``s = max(E+, E-)`` over the layer's batch (1 when every cell is silent)."""
        xp = backend.xp()
        scale = xp.maximum(self.pos.max(), self.neg.max())
        return xp.where(scale > 0, scale, 1.0)


def _spiking_kernel(gen, T_e, pos, neg, scale, te, zero, out_pos, out_neg):
    """Numba kernel of :meth:`ErrorCells.spiking` (one draw per pair) on flat arrays, each value
    computed as the NumPy code there computes it, from the same stream (:func:`backend.binomial`).
    Returns False, having drawn nothing, where that code would draw otherwise (or raise)."""
    for i in range(pos.size):
        p_pos, p_neg = pos[i] / scale, neg[i] / scale
        p = p_pos + p_neg
        if (p_pos > zero and p_neg > zero) or not (p >= zero and p <= te / te):
            return False
    for i in range(pos.size):
        p_pos, p_neg = pos[i] / scale, neg[i] / scale
        out_pos[i] = gen.binomial(T_e, np.float64(p_pos + p_neg))  # the count, exact in any float
        count = out_pos[i]
        out_pos[i] = scale * (count if p_pos > zero else zero) / te
        out_neg[i] = scale * (count if p_neg > zero else zero) / te
    return True


def _drive_kernel(g, a, pos, neg, zero):
    """Numba kernel of :meth:`ErrorCells.from_drive` on flat arrays: one pass instead of four,
    ``np.maximum(x, 0)`` as NumPy computes it (``x`` when ``x > 0`` or NaN, else ``+0``)."""
    for i in range(g.size):
        d = g[i] * a[i]
        pos[i] = d if (d > zero or d != d) else zero
        d = -d
        neg[i] = d if (d > zero or d != d) else zero


def apical_feedback(cells: ErrorCells, layer, K):
    """Apical potential of the layer below: ``a = B E+ - B E-`` with ``B = K^T``.

    The feedback synapses are linear, so ``B E+ - B E- = B (E+ - E-)``: one pass through
    the feedback wiring carries both populations (half the work of two for conv layers).
    """
    return layer.backward(cells.signed, K)


def hebbian_update(cells: ErrorCells, layer):
    """Hebbian rule in the local compartment: ``(E+ - E-)^T r^{l-1} / batch`` and bias ``mean(E+ - E-)``.

    The two Hebbian products ``E+ r`` and ``-E- r`` share the presynaptic factor, so they
    are summed before the product (it is bilinear). Per unit learning rate.
    """
    return layer.hebbian(cells.signed, layer.r_pre)


class Microcircuit(FixedFeedback):
    """Learning by the explicit three-cell microcircuit.

    mode : ``"rate"`` (error cells report exact rates) or ``"spiking"`` (Bernoulli error
        spikes over ``T_e`` steps).
    feedback : the wiring of the feedback synapses: ``"sign_concordant"`` (the model:
        SC-FA), ``"symmetric"`` (``B = W^T``: BP), ``"random"`` (FA), ``"direct"`` (from the
        output error cells to every layer's apical dendrites: DFA).
    """

    name = "microcircuit"

    def __init__(self, *, mode: str, T_e: int, feedback: str, seed):
        # no defaults of its own: Network builds it from its NetworkConfig, which holds them
        if mode not in MODES:
            raise ValueError(f"unknown microcircuit mode {mode!r}: choose one of {MODES}")
        if feedback not in FEEDBACKS:
            raise ValueError(f"unknown feedback {feedback!r}: choose one of {FEEDBACKS}")
        if not (isinstance(T_e, numbers.Integral) and T_e > 0):
            raise ValueError(f"T_e (error-cell time steps) must be a positive int, got {T_e!r}")
        self.mode, self.T_e, self.feedback = mode, T_e, feedback
        self.reseed(seed)

    def reseed(self, seed):
        """Restart the error cells' spike noise from ``seed`` (spiking mode).

        The noise has a stream of its own (``Network`` reseeds it at every epoch from the
        run's seed and the epoch), so it never shifts data order or augmentation: a rate-mode
        run, which draws nothing, follows the same trajectory as SC-FA's bit for bit.
        """
        self.gen = backend.noise_generator(seed)

    def error_phase(self, layers, e, mode: str | None = None, gen=None, sign: int = 1):
        """Error cells of every layer (``None`` for pooling), from the output error ``e``.

        ``mode`` and ``gen`` stand in for the circuit's own (``"rate"`` or ``"spiking"``; the
        spikes' generator) in this call only, so that a figure can show the other mode or its own
        draw without touching the training run's state. ``sign=-1`` inverts every feedback synapse
        (E+ reaching the apical dendrite through the inhibitory route, E- through the excitatory).
        """
        mode = self.mode if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"unknown microcircuit mode {mode!r}: choose one of {MODES}")
        if sign not in (1, -1):
            raise ValueError(f"sign must be 1 or -1 (every feedback synapse inverted), got {sign!r}")
        gen = self.gen if gen is None else gen

        def fire(cells):
            return cells.spiking(self.T_e, gen) if mode == "spiking" else cells

        L = len(layers) - 1
        cells = [None] * len(layers)
        cells[L] = fire(ErrorCells.from_drive(layers[L].g, e))
        if self.feedback == "direct":
            for i, layer in enumerate(layers[:-1]):
                if layer.plastic:
                    D = self.kernels[i] if sign == 1 else -self.kernels[i]
                    a = (cells[L].pos @ D - cells[L].neg @ D).reshape(layer.g.shape)
                    cells[i] = fire(ErrorCells.from_drive(layer.g, a))
            return cells
        a = None
        for i in reversed(range(L + 1)):
            layer = layers[i]
            if not layer.plastic:
                a = layer.backward(a)
                continue
            if i < L:
                cells[i] = fire(ErrorCells.from_drive(layer.g, a))
            if i > 0:
                K = self.kernel(i, layer)
                a = apical_feedback(cells[i], layer, K if sign == 1 else -K)
        return cells

    def updates(self, layers, e, sign: int = 1):
        """The Hebbian update of every plastic layer from its error cells (:meth:`error_phase`)."""
        cells = self.error_phase(layers, e, sign=sign)
        return [None if c is None else hebbian_update(c, layers[i]) for i, c in enumerate(cells)]
