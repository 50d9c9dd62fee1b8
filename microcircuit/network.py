"""``Network``: a multi-layer spiking network of pyramidal cells and the rule that trains it.

    >>> net = Network([784, 800, 10], rule="microcircuit", T=16, seed=0)
    >>> net.fit(x_train, y_train, epochs=5)
    >>> net.evaluate(x_test, y_test)["accuracy"]

One training step: encode the input, run every layer for ``T`` steps (no graph is kept),
compute the global spiking error on the output rates, let the rule carry it down to local
updates, and let the optimiser apply them. All five rules share this code path. The
settings live in :class:`~microcircuit.config.NetworkConfig`; what ``Network`` delegates
lives beside it: :mod:`~microcircuit.augment`, :mod:`~microcircuit.metrics`,
:mod:`~microcircuit.checkpoint`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import backend, checkpoint
from .augment import augment
from .config import NetworkConfig, check_inputs, check_labels
from .encoding import encode
from .layers import build
from .losses import SpikingError, one_hot
from .metrics import SATURATION_SAMPLES, alignment, saturation
from .neurons import THRESHOLD_FLOOR, LIFParameters, adapt_threshold
from .optim import make_optimizer, schedule
from .feedback import FeedbackAlignment
from .rules import make_rule


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or weights (learning rate too high?)."""


class Network:
    """A spiking network of pyramidal layers trained by a local rule.

    ``Network(layers, **settings)`` or ``Network(config)``: ``layers`` lists the input size or
    shape first (``784`` or ``(3, 32, 32)``), then layer specs (an int is a dense layer of
    that many cells; ``Conv(...)``, ``Pool(...)``, ``Dense(...)``); the last layer is the
    output (one cell per class). Every keyword setting (``rule``, ``T``, ``lr``, ``epochs``,
    ``seed``, ...) is a field of :class:`~microcircuit.config.NetworkConfig`, which holds
    the defaults and checks them. ``progress`` shows a tqdm bar over mini-batches in ``fit``.
    """

    def __init__(self, layers=None, *, progress: bool = False, **settings):
        if isinstance(layers, NetworkConfig):
            config = layers.replace(**settings)
        else:
            config = NetworkConfig(**settings) if layers is None else NetworkConfig(layers=layers, **settings)
        self.config, self.progress = config, progress
        self.lif = LIFParameters(tau_m=config.tau_m, theta=config.theta, surrogate=config.surrogate, width=config.width)
        self.loss = SpikingError(config.loss, config.output_scale)
        self.in_shape = config.in_shape
        seeds = np.random.SeedSequence(config.seed).spawn(4)  # init, feedback, training data, error cells
        self.layers = build(config.layers[1:], self.in_shape, self.lif, np.random.default_rng(seeds[0]),
                            config.weight_scale)
        if len(self.layers[-1].out_shape) != 1:
            raise ValueError("the output layer must be dense: end `layers` with the number of classes")
        self.n_classes = self.layers[-1].out_shape[0]
        self.rule = make_rule(config.rule, mode=config.mode, T_e=config.T_e, feedback=config.feedback, seed=seeds[3])
        self.rule.init(self.layers, np.random.default_rng(seeds[1]))
        self.optimizer = make_optimizer(config.optimizer, config.momentum, config.weight_decay)
        self.train_rng = np.random.default_rng(seeds[2])
        self.epoch_, self.history_ = 0, []
        for layer in self.adapting_layers:  # intrinsic plasticity: a threshold per cell (per channel in conv)
            layer.theta = backend.xp().full_like(layer.b, config.theta)

    T = property(lambda self: self.config.T, doc="Time steps per sample.")
    batch_size = property(lambda self: self.config.batch_size, doc="Training mini-batch size.")
    epochs = property(lambda self: self.config.epochs, doc="Length of the learning-rate schedule (epochs).")
    adapting_layers = property(lambda self: self.plastic_layers[:-1] if self.config.threshold_adaptation else [])

    def check_inputs(self, x):
        """Inputs checked at the boundary, on the backend as ``(N, *in_shape)`` (:func:`~microcircuit.config.check_inputs`)."""
        return check_inputs(x, self.in_shape)

    def check_labels(self, y, n):
        """``n`` labels checked to be class indices of this network, on the backend (:func:`~microcircuit.config.check_labels`)."""
        return check_labels(y, n, self.n_classes)

    # ---------------------------------------------------------------- forward
    @property
    def plastic_layers(self):
        return [layer for layer in self.layers if layer.plastic]

    def forward(self, x, gen=None, keep: bool = False):
        """Run the network for ``T`` steps on a batch; returns the output rates ``r^L``.

        Afterwards every layer holds its rates ``r``, gains ``g`` and presynaptic rates
        ``r_pre``, and ``self.v_out`` the output potentials left at the end; with ``keep``,
        also every step in ``layer.history`` (what BPTT needs; memory then grows with ``T``).
        """
        enc = encode(x, self.T, self.config.encoding, gen if gen is not None else self.eval_generator())
        for layer in self.layers:
            layer.reset(x.shape[0], keep)
        for t in range(self.T):
            s, constant = enc.step(t), enc.constant
            for layer in self.layers:
                s = layer.step(s, constant=constant)
                constant = False
        r_pre = enc.rate
        for layer in self.layers:
            r_pre = layer.finish(self.T, r_pre)
        self.v_out = self.layers[-1].v
        return r_pre

    def eval_generator(self):
        """A fresh generator of the evaluation noise (Bernoulli input spikes): the same at every call,
        so that a forward pass outside training draws no state from the training streams."""
        return backend.noise_generator(self.config.seed + 7919)

    def output_error(self, x, y):
        """The error phase's input: one forward pass on ``(x, y)`` (checked, evaluation noise), and
        the output error ``e = -dE/dr^L`` it leaves. The layers keep that pass's rates and gains
        (and its steps, for a rule that needs them), so ``rule.updates(net.layers, e)`` or the
        microcircuit's ``error_phase`` can follow."""
        X = self.check_inputs(x)
        Y = self.check_labels(y, X.shape[0])
        r = self.forward(X, self.eval_generator(), keep=self.rule.keeps_history)
        return self.loss.error(r, one_hot(Y, self.n_classes))

    # ---------------------------------------------------------------- learning
    def updates(self, x, y, gen=None):
        """Forward pass, global error and the rule's per-layer updates (per unit lr).

        Returns ``(updates, loss)``; ``updates[i]`` is ``(dW, db)`` or ``None`` (pooling).
        """
        r = self.forward(x, gen, keep=self.rule.keeps_history)
        target = one_hot(y, self.n_classes)
        return self.rule.updates(self.layers, self.loss.error(r, target)), self.loss.value(r, target)

    def train_step(self, x, y, lr: float, gen=None) -> float:
        """One mini-batch: forward, error phase, update (and, with ``threshold_adaptation``, each
        hidden cell's threshold moves by :func:`~microcircuit.neurons.adapt_threshold`). Returns the loss."""
        ups, loss = self.updates(x, y, gen)
        # one host sync per step: the loss plus 0 * every potential (a NaN or inf in any
        # weight reaches the potentials, and 0 * inf is NaN; finite ones leave the loss as is)
        loss = float(loss + sum(layer.v.sum() * 0 for layer in self.plastic_layers))
        if not math.isfinite(loss):
            raise DivergenceError(self._diverged("the loss or the membrane potentials became non-finite"))
        params = [p for layer, up in zip(self.layers, ups) if up is not None for p in layer.params]
        steps = [step for up in ups if up is not None for step in up]
        self.optimizer.step(params, steps, lr)
        for layer in self.adapting_layers:  # by this batch's rates
            adapt_threshold(layer.theta, layer.r, self.config.target_rate, self.config.threshold_adaptation,
                            THRESHOLD_FLOOR * self.config.theta)
        return loss

    def _diverged(self, what: str) -> str:
        return (f"training diverged in epoch {self.epoch_ + 1}: {what}. Lower the learning rate "
                f"(lr={self.config.lr}) and restart from the last good checkpoint")

    def _error_cell_seed(self):
        """The error cells' noise in this epoch: its own stream (``seed``, child 3, epoch), so that
        it never moves the data order and a resumed run draws the same spikes."""
        return np.random.SeedSequence(self.config.seed, spawn_key=(3, self.epoch_))

    def partial_fit(self, x, y):
        """Train one epoch on ``(x, y)`` in shuffled mini-batches. Returns the mean loss.

        A diverged network stops with :class:`DivergenceError` before the epoch is counted: a
        non-finite loss, potential or weight, or, checked once after the epoch on the first
        :data:`~microcircuit.metrics.SATURATION_SAMPLES` inputs, a saturated layer
        (:func:`~microcircuit.metrics.saturation`): the check of every training run."""
        X = self.check_inputs(x)
        Y = self.check_labels(y, X.shape[0])
        n = X.shape[0]
        order = backend.asarray(self.train_rng.permutation(n))
        noise = backend.noise_generator(int(self.train_rng.integers(2**31)))
        if hasattr(self.rule, "reseed"):  # the microcircuit's error cells
            self.rule.reseed(self._error_cell_seed())
        n_batches = math.ceil(n / self.batch_size)
        batches = range(n_batches)
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"epoch {self.epoch_ + 1}", leave=False)
        total = 0.0
        for b in batches:
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            progress = (self.epoch_ + b / n_batches) / self.epochs
            lr = schedule(self.config.lr_schedule, self.config.lr, progress, self.config.warmup)
            total += self.train_step(augment(X[idx], self.train_rng, self.in_shape, self.config.augment, self.config.flip),
                                     Y[idx], lr, noise) * int(idx.shape[0])
        for layer in self.plastic_layers:  # the last step's update is not seen by the check above
            if not bool(backend.xp().isfinite(layer.W).all()):
                raise DivergenceError(self._diverged("the weights became non-finite"))
        why = saturation(self, X[:SATURATION_SAMPLES], checked=True)  # one forward pass: no training state moves
        if why:
            top = float(X.max())
            raise DivergenceError(self._diverged(why) if top <= 1 else (
                f"training diverged in epoch {self.epoch_ + 1}: {why}; its inputs go up to {top:g} (raw pixels?): "
                f"scale them to [0, 1] (x / 255) and train again"))
        self.epoch_ += 1
        mean = total / n
        self.history_.append({"epoch": self.epoch_, "train_loss": mean})
        return mean

    def fit(self, x, y, epochs: int | None = None):
        """Train ``epochs`` more epochs (default: to the end of the schedule, ``config.epochs``).
        Returns ``self``."""
        if epochs is not None and not (isinstance(epochs, numbers.Integral) and not isinstance(epochs, bool)
                                       and epochs > 0):
            raise ValueError(f"epochs must be a positive int (or None: to the end of the schedule), got {epochs!r}")
        for _ in range(self.config.epochs - self.epoch_ if epochs is None else epochs):
            self.partial_fit(x, y)
        return self

    # -------------------------------------------------------------- inference
    def scores(self, x, batch_size: int | None = None):
        """Output rates and end potentials per sample as host arrays ``(rates, v)``.

        Samples go through in batches of ``batch_size`` (default: the training mini-batch
        size; on a CPU, small batches keep a convolutional layer's arrays in cache, and large
        ones are several times slower per sample). With ``encoding="bernoulli"`` the input
        spikes are drawn batch by batch from a fixed generator, so they depend on the batching;
        direct encoding is deterministic.
        """
        X = self.check_inputs(x)
        batch_size = self.batch_size if batch_size is None else batch_size
        if not (isinstance(batch_size, numbers.Integral) and batch_size > 0):
            raise ValueError(f"batch_size must be a positive int (or None: the training batch size), got {batch_size!r}")
        gen = self.eval_generator()
        rates, vs = [], []
        for i in range(0, X.shape[0], batch_size):
            rates.append(backend.to_numpy(self.forward(X[i : i + batch_size], gen)))
            vs.append(backend.to_numpy(self.v_out))
        return np.concatenate(rates), np.concatenate(vs)

    def _decide(self, rates, v):
        """Most output spikes wins; ties are broken by the potential left at the end
        (``0.5 * tanh(v)`` lies in (-0.5, 0.5), so it never outweighs one spike)."""
        return np.argmax(np.rint(rates * self.T) + 0.5 * np.tanh(v), axis=1)

    def predict(self, x, batch_size: int | None = None):
        """Predicted class: most output spikes; ties broken by the potential left at the end."""
        return self._decide(*self.scores(x, batch_size))

    def evaluate(self, x, y, batch_size: int | None = None) -> dict:
        """``{"accuracy": ..., "loss": ...}`` on ``(x, y)`` (loss: the global spiking error)."""
        rates, v = self.scores(x, batch_size)
        y = backend.to_numpy(self.check_labels(y, rates.shape[0]))
        pred = self._decide(rates, v)
        r = backend.asarray(rates)
        loss = float(self.loss.value(r, one_hot(backend.asarray(y), self.n_classes)))
        return {"accuracy": float((pred == y).mean()), "loss": loss}

    def alignment(self, x, y) -> list[float]:
        """Angle (degrees) between this rule's weight update and BP's, per plastic layer.

        Both come from the same forward pass on ``(x, y)``; BP's feedback is ``B = W^T``
        (rate-based backpropagation through the surrogate gains).
        """
        e = self.output_error(x, y)
        return alignment(self.rule.updates(self.layers, e), FeedbackAlignment("symmetric").updates(self.layers, e))

    # ------------------------------------------------------------- save / load
    def save(self, path):
        """Write the network to ``path`` (``.npz``) atomically (:mod:`microcircuit.checkpoint`)."""
        return checkpoint.save(self, path)

    @classmethod
    def load(cls, path, **overrides):
        """Rebuild a network saved by :meth:`save` (on the active backend), with ``overrides``."""
        return checkpoint.load(path, cls, **overrides)

    def __repr__(self):
        body = " -> ".join(f"{type(layer).__name__}{layer.out_shape}" for layer in self.layers)
        return f"Network(input{self.in_shape} -> {body}, rule={self.config.rule!r}, T={self.T})"
