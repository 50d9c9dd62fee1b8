"""Seed statistics against independent computations: the t density integrated numerically,
published quantiles, and the definition of a paired interval."""

import math

import numpy as np
import pytest

from microcircuit import stats


def _t_cdf_by_integration(t, df, n=200_001):
    """Student's t density integrated with the trapezoid rule from -60 to t."""
    x = np.linspace(-60.0, t, n)
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = c * (1 + x * x / df) ** (-(df + 1) / 2)
    return float(np.trapezoid(f, x))


@pytest.mark.parametrize("df", [2, 3, 5, 30])
@pytest.mark.parametrize("t", [-3.0, -0.7, 0.0, 1.3, 4.3])
def test_t_cdf_matches_the_integrated_density(t, df):
    assert stats.t_cdf(t, df) == pytest.approx(_t_cdf_by_integration(t, df), abs=2e-4)


@pytest.mark.parametrize("p, df, table", [(0.975, 2, 4.302653), (0.975, 4, 2.776445), (0.975, 10, 2.228139),
                                          (0.95, 1, 6.313752), (0.995, 29, 2.756386)])
def test_t_quantile_matches_published_tables(p, df, table):
    assert stats.t_quantile(p, df) == pytest.approx(table, abs=1e-5)
    assert stats.t_quantile(1 - p, df) == pytest.approx(-table, abs=1e-5)


def test_paired_interval_by_its_definition():
    a, b = [98.1, 98.4, 98.0], [98.6, 98.7, 98.5]
    out = stats.paired_interval(a, b)
    d = np.subtract(a, b)
    half = 4.302653 * d.std(ddof=1) / math.sqrt(3)
    assert out["diffs"] == pytest.approx(list(d))
    assert (out["low"], out["high"]) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-5)
    assert "larger than the seed noise" in stats.gap_verdict(out)
    noisy = stats.paired_interval([98.1, 98.9, 98.0], [98.6, 98.2, 98.5])
    assert noisy["low"] < 0 < noisy["high"] and "within the seed noise" in stats.gap_verdict(noisy)
    same = stats.paired_interval([97.0, 98.0], [97.0, 98.0])
    assert "exactly 0 on every one of 2 seeds" in stats.gap_verdict(same)
    assert "one seed" in stats.gap_verdict(stats.paired_interval([1.0], [2.0]))


def test_mean_sd_and_bad_input():
    assert stats.mean_sd([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert math.isnan(stats.mean_sd([5.0])[1])
    with pytest.raises(ValueError, match="at least one value"):
        stats.mean_sd([])
    with pytest.raises(ValueError, match="same non-zero length"):
        stats.paired_interval([1.0], [1.0, 2.0])
