"""Encoding inputs as spikes: what layer 0 sends to the first pyramidal layer.

- ``direct``: the pixel value is a constant input current at every step,
  ``x[t] = x`` (the first layer's somata do the spike encoding themselves).
- ``bernoulli`` (Poisson rate coding): at every step each input fires with probability
  equal to its value, ``x[t] ~ Bernoulli(x)``, so its mean rate over ``T`` steps is ``x``.

An encoder is used as a stream: ``step(t)`` returns the input at time step ``t`` and
``rate`` the presynaptic rate ``r^0`` that the first layer's plasticity uses (the
value itself for direct coding, the measured spike rate for Bernoulli coding).
"""

from __future__ import annotations

from . import backend

ENCODINGS = ("direct", "bernoulli")


class DirectEncoder:
    """Constant-current coding: ``x[t] = x`` for every ``t``; ``r^0 = x``."""

    constant = True

    def __init__(self, x, T: int):
        self.x = x
        self.T = T
        self.rate = x

    def step(self, t: int):
        return self.x


class BernoulliEncoder:
    """Rate coding: ``x[t] ~ Bernoulli(x)`` independently per step; ``r^0 = mean_t x[t]``.

    Spikes are drawn one step at a time, so memory does not grow with ``T``; ``rate`` is
    the measured rate once all ``T`` steps have been drawn.
    """

    constant = False

    def __init__(self, x, T: int, gen):
        self.x = x
        self.T = T
        self.gen = gen
        self._count = backend.xp().zeros_like(x)

    def step(self, t: int):
        spikes = (backend.uniform(self.gen, self.x.shape) < self.x).astype(self.x.dtype)
        self._count += spikes
        return spikes

    @property
    def rate(self):
        return self._count / self.T


def encode(x, T: int, encoding: str = "direct", gen=None):
    """Encoder for inputs ``x`` (values in [0, 1], any shape) over ``T`` steps."""
    if encoding == "direct":
        return DirectEncoder(x, T)
    if encoding == "bernoulli":
        if gen is None:
            raise ValueError("bernoulli encoding needs a noise generator (backend.noise_generator)")
        return BernoulliEncoder(x, T, gen)
    raise ValueError(f"unknown encoding {encoding!r}: choose one of {ENCODINGS}")


def spike_train(x, T: int, encoding: str = "direct", seed: int = 0):
    """The whole input spike train, shape ``(T, *x.shape)``, for plots and teaching."""
    xp = backend.xp()
    x = backend.asarray(x)
    enc = encode(x, T, encoding, backend.noise_generator(seed))
    return xp.stack([xp.broadcast_to(enc.step(t), x.shape) for t in range(T)])
