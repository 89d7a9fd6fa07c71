"""How many seeds would a paired t-test need to detect an effect of size d_z?

The power of a two-sided paired t-test with n pairs at level alpha, for a true standardized
mean difference d_z, is exact under normal differences:

    df = n - 1,  lambda = d_z * sqrt(n),  t* = t_{1 - alpha/2, df}
    power = P(T' > t*) + P(T' < -t*),  T' ~ noncentral t(df, lambda)

(`scipy.stats.nct`). Power grows with n, so the smallest n reaching the target is found by
doubling and then bisecting. This is what G*Power computes for "Means: difference from
constant (one sample case)", the same test on the per-seed differences.

Read the answer as a planning figure: it plugs in the *observed* d_z, which is itself noisy
with few seeds (and biased upward when the difference was picked for being large).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

ALPHA = 0.05
TARGET_POWER = 0.80
MOST_SEEDS = 100_000


@dataclass(frozen=True)
class SeedsNeeded:
    seeds: int | None
    note: str | None = None


def paired_t_power(d_z: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test with n pairs for effect size d_z."""
    if n < 2:
        return 0.0
    df = n - 1
    noncentrality = d_z * math.sqrt(n)
    critical = float(sps.t.ppf(1 - alpha / 2, df))
    upper = float(sps.nct.sf(critical, df, noncentrality))
    lower = float(sps.nct.cdf(-critical, df, noncentrality))
    return upper + lower


def seeds_needed(
    d_z: float | None, power: float = TARGET_POWER, alpha: float = ALPHA
) -> SeedsNeeded:
    """The smallest number of seeds (pairs) at which the test reaches `power` for `d_z`."""
    if d_z is None or not math.isfinite(d_z):
        return SeedsNeeded(None, "no effect size: it needs at least 2 seeds that vary")
    effect = abs(d_z)
    if effect == 0:
        return SeedsNeeded(None, "no difference observed: no number of seeds detects it")
    if paired_t_power(effect, MOST_SEEDS, alpha) < power:
        return SeedsNeeded(None, f"more than {MOST_SEEDS:,} seeds")
    low, high = 1, 2  # power(low) < target <= power(high) once the doubling stops
    while paired_t_power(effect, high, alpha) < power:
        low, high = high, min(2 * high, MOST_SEEDS)
    while high - low > 1:
        middle = (low + high) // 2
        if paired_t_power(effect, middle, alpha) >= power:
            high = middle
        else:
            low = middle
    return SeedsNeeded(high)
