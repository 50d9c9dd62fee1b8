"""Seed statistics: how far the results of several seeds spread, and whether a gap is real.

A result from one seed is one draw: a different initialisation, data order and noise give
another number. Over ``n`` seeds we report the mean and the sample standard deviation

    mean = (1/n) sum_k a_k,        sd = sqrt( sum_k (a_k - mean)^2 / (n - 1) ),

and compare two rules *paired by seed* (same seed: same data order and initial weights), so
that what the seeds share cancels: ``d_k = a_k - b_k``. The gap is real at level ``1 - alpha``
when the paired t-interval

    mean(d) +- t_{1 - alpha/2, n-1} * sd(d) / sqrt(n)

does not contain 0. Pure Python (no SciPy): the Student-t quantile is found by bisection on
its distribution function, written with the regularised incomplete beta function.
"""

from __future__ import annotations

import math


def mean_sd(values) -> tuple[float, float]:
    """``(mean, sample standard deviation)``; the sd is ``nan`` for fewer than two values."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_sd needs at least one value")
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, math.nan
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    """Distribution function of Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The ``p``-quantile of Student's t (``0 < p < 1``), by bisection on :func:`t_cdf`."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p!r}")
    lo, hi = -1.0, 1.0
    while t_cdf(lo, df) > p:
        lo *= 2.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return 0.5 * (lo + hi)


def paired_interval(a, b, level: float = 0.95) -> dict:
    """Paired comparison of two per-seed result lists (same seeds, same order).

    Returns ``{"n", "diffs", "mean", "sd", "low", "high"}``: the per-seed differences
    ``a_k - b_k``, their mean and sd, and the t-interval of the mean difference at ``level``
    (``low``/``high`` are ``nan`` with fewer than two seeds).
    """
    a, b = list(a), list(b)
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_interval needs two lists of the same non-zero length, got {len(a)} and {len(b)}")
    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    m, sd = mean_sd(diffs)
    n = len(diffs)
    if n < 2:
        return {"n": n, "diffs": diffs, "mean": m, "sd": sd, "low": math.nan, "high": math.nan}
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return {"n": n, "diffs": diffs, "mean": m, "sd": sd, "low": m - half, "high": m + half}


def gap_verdict(interval: dict, what: str = "the gap", unit: str = " points") -> str:
    """One sentence on whether a paired interval excludes zero, written from the numbers."""
    n = interval["n"]
    if n < 2:
        return f"{what} rests on one seed: no spread to compare it with."
    lo, hi = interval["low"], interval["high"]
    span = f"{interval['mean']:+.2f}{unit} (95 % interval {lo:+.2f} to {hi:+.2f}, {n} seeds)"
    if interval["sd"] == 0 and interval["mean"] == 0:
        return f"{what} is exactly 0 on every one of {n} seeds."
    if lo > 0 or hi < 0:
        return f"{what} is {span}: larger than the seed noise."
    return f"{what} is {span}: within the seed noise."
