"""How close two rules' updates are: the angle between them and their relative difference;
and whether a network has saturated.

The yardsticks of the book's alignment plots and equivalence checks.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend


def angle_degrees(a, b) -> float:
    """Angle between two arrays seen as vectors, in degrees (90 if either is zero):
    ``arccos(<a, b> / (|a| |b|))``."""
    a, b = a.astype("float64").ravel(), b.astype("float64").ravel()
    na, nb = float((a * a).sum()) ** 0.5, float((b * b).sum()) ** 0.5
    if na == 0 or nb == 0:
        return 90.0
    cos = float((a * b).sum()) / (na * nb)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def alignment(updates, reference) -> list[float]:
    """Angle (degrees) between the weight updates of two rules, per plastic layer.

    Both are lists as returned by ``Network.updates`` (``(dW, db)`` or ``None`` per layer).
    """
    return [angle_degrees(u[0], r[0]) for u, r in zip(updates, reference) if u is not None]


def relative_difference(updates_a, updates_b) -> float:
    """Largest ``|a - b| / max|b|`` over the weight and bias updates of two rules.

    Takes two lists as returned by ``Network.updates`` (``(dW, db)`` or ``None`` per layer):
    the yardstick of the book's equivalence checks.
    """
    worst = 0.0
    for ua, ub in zip(updates_a, updates_b):
        for pa, pb in zip(ua or (), ub or ()):
            a, b = backend.to_numpy(pa).astype(np.float64), backend.to_numpy(pb).astype(np.float64)
            worst = max(worst, float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)))
    return worst


SATURATION_SAMPLES = 256
"""The training samples (the first ones) on which ``Network.partial_fit`` checks :func:`saturation`
after every epoch."""


def saturation(net, x, checked: bool = False) -> str | None:
    """Why ``net`` is saturated on inputs ``x`` (``checked``: already through ``net.check_inputs``), or None.

    Saturated: with ``T >= 2``, a layer in which every cell, on every sample, fires at every
    time step or never (rate 1 or 0), and some fire. Its rates then carry no graded signal,
    so the network's output hardly depends on its input: what a far too high learning rate
    does long before the weights overflow (lr = 1e3 on MNIST: every sample predicted as one
    class). A silent network (no cell firing) is not saturated.
    """
    if net.T < 2 or len(x) == 0:
        return None
    xp = backend.xp()
    net.forward(x if checked else net.check_inputs(x), net.eval_generator())
    for i, layer in enumerate(net.layers):
        if layer.plastic and bool(xp.all((layer.r == 0) | (layer.r == 1))) and bool(xp.any(layer.r == 1)):
            return (f"layer {i} saturated: each of its cells fires at every time step or never, on all "
                    f"{len(x)} samples checked")
    return None
