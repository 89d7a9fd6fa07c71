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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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
    return _powers([(d_z, n)], alpha)[(d_z, n)]


Point = tuple[float, int]  # (effect size, pairs)


def _powers(points: Sequence[Point], alpha: float) -> dict[Point, float]:
    """paired_t_power at each point, in one call of each SciPy function over them all:
    element by element the same numbers as one call per point (the same ufuncs), without
    SciPy's per-call overhead (about a millisecond), which made a 50-arm summary take
    seconds."""
    wanted = sorted({(d, n) for d, n in points if n >= 2})
    found = {(d, n): 0.0 for d, n in points if n < 2}
    if not wanted:
        return found
    n = np.asarray([p[1] for p in wanted], dtype=np.float64)
    df = n - 1
    noncentrality = np.asarray([p[0] for p in wanted], dtype=np.float64) * np.sqrt(n)
    critical = sps.t.ppf(1 - alpha / 2, df)
    upper = sps.nct.sf(critical, df, noncentrality)
    lower = sps.nct.cdf(-critical, df, noncentrality)
    for point, u, v in zip(wanted, upper, lower, strict=True):
        found[point] = float(u) + float(v)
    return found


# The doubling's steps, and how narrow a bisection range is evaluated whole, in one call.
_DOUBLING = [MOST_SEEDS, *(min(2**k, MOST_SEEDS) for k in range(1, 18))]
_GRID = 64


def seeds_needed(
    d_z: float | None, power: float = TARGET_POWER, alpha: float = ALPHA
) -> SeedsNeeded:
    """The smallest number of seeds (pairs) at which the test reaches `power` for `d_z`."""
    return seeds_needed_many([d_z], power, alpha)[0]


def seeds_needed_many(
    d_zs: Sequence[float | None], power: float = TARGET_POWER, alpha: float = ALPHA
) -> list[SeedsNeeded]:
    """seeds_needed of each effect size. Each is a doubling then a bisection; the powers they
    look at are computed ahead in batches (every doubling step of every effect at once, then
    every narrow bisection range at once), and each search then reads them, making the same
    decisions as computing each power when needed."""
    answers: list[SeedsNeeded | None] = [None] * len(d_zs)
    effects: dict[int, float] = {}
    for i, d_z in enumerate(d_zs):
        if d_z is None or not math.isfinite(d_z):
            answers[i] = SeedsNeeded(None, "no effect size: it needs at least 2 seeds that vary")
        elif d_z == 0:
            answers[i] = SeedsNeeded(None, "no difference observed: no number of seeds detects it")
        else:
            effects[i] = abs(d_z)
    known = _powers([(e, n) for e in set(effects.values()) for n in _DOUBLING], alpha)
    ranges: dict[int, tuple[int, int]] = {}
    for i, effect in effects.items():
        if known[(effect, MOST_SEEDS)] < power:
            answers[i] = SeedsNeeded(None, f"more than {MOST_SEEDS:,} seeds")
            continue
        low, high = 1, 2  # power(low) < target <= power(high) once the doubling stops
        while known[(effect, high)] < power:
            low, high = high, min(2 * high, MOST_SEEDS)
        ranges[i] = (low, high)
    narrow = [(effects[i], n) for i, (low, high) in ranges.items() if high - low <= _GRID
              for n in range(low + 1, high)]  # fmt: skip
    known.update(_powers(narrow, alpha))
    for i, (low, high) in ranges.items():
        effect = effects[i]
        while high - low > 1:
            if high - low <= _GRID and (effect, low + 1) not in known:
                known.update(_powers([(effect, n) for n in range(low + 1, high)], alpha))
            middle = (low + high) // 2
            if (effect, middle) not in known:
                known.update(_powers([(effect, middle)], alpha))
            if known[(effect, middle)] >= power:
                high = middle
            else:
                low = middle
        answers[i] = SeedsNeeded(high)
    return [a for a in answers if a is not None]
