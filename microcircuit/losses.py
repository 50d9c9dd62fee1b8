"""Global spiking error functions, defined on the output layer's spike rates ``r = r^L``.

Each loss gives its value ``E`` (batch mean) and the **output error**
``e = -dE/dr`` per sample: the signal the output error cells E+/E- encode
("fire more" where ``e > 0``, "fire less" where ``e < 0``).

- ``mse``: ``E = 1/2 ||r - y||^2`` with one-hot target rates ``y``; ``e = y - r``.
- ``ce`` (cross-entropy on spike counts): ``p = softmax(c r)``, ``E = -sum_k y_k log p_k``;
  ``e = c (y - p)``. The output scale ``c`` turns rates in [0, 1] into logits.
"""

from __future__ import annotations

from . import backend

LOSSES = ("ce", "mse")


def one_hot(labels, n_classes: int):
    """One-hot target rates, shape (batch, n_classes), in the active dtype."""
    xp = backend.xp()
    return (labels[:, None] == xp.arange(n_classes)[None, :]).astype(backend.dtype())


def softmax(z):
    xp = backend.xp()
    z = z - z.max(axis=1, keepdims=True)
    ez = xp.exp(z)
    return ez / ez.sum(axis=1, keepdims=True)


class SpikingError:
    """A global error on output rates: ``value(r, y)`` and ``error(r, y) = -dE/dr``."""

    def __init__(self, kind: str = "ce", output_scale: float = 8.0):
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}: choose one of {LOSSES}")
        if not output_scale > 0:
            raise ValueError(f"output_scale must be > 0, got {output_scale}")
        self.kind = kind
        self.c = float(output_scale)

    def value(self, r, y):
        """Batch-mean loss ``E`` as a backend scalar (``y``: one-hot targets)."""
        xp = backend.xp()
        if self.kind == "mse":
            return 0.5 * ((r - y) ** 2).sum(axis=1).mean()
        z = self.c * r
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))
        return -(y * log_p).sum(axis=1).mean()

    def error(self, r, y):
        """Output error ``e = -dE/dr`` per sample, shape (batch, classes)."""
        if self.kind == "mse":
            return y - r
        return self.c * (y - softmax(self.c * r))
