"""How close two rules' updates are: the angle between them and their relative difference.

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
