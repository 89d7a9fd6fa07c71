"""Statistics over seeds: is an arm's difference more than seed noise?

Everything here is plain numbers in, plain JSON-able dicts out; the formulas are SciPy's
(`scipy.stats.t` for intervals, `scipy.stats.ttest_rel` for paired tests), not hand-rolled.

Why a paired t-test: every arm of an ablation runs the same seeds, so seed s of arm A and seed s
of the reference share initial weights and data order. Differencing per seed removes that shared
noise, which is what makes a small ablation (3-5 seeds) able to tell arms apart at all.

Each paired difference also carries its effect size, Cohen's d_z (the mean of the per-seed
differences over their standard deviation: the paired, within-subject d, not the d of two
independent groups), and how many seeds a paired t-test would need to detect that effect at
80 % power (api/services/power.py). Several comparisons at once are corrected with Holm's
step-down procedure (`holm`), which controls the family-wise error rate.

Small samples are answered, not refused: with n < 2 there is no spread to estimate, so the
interval, std and p-value are null and a `note` says why.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import stats as sps

from api.services.power import ALPHA, TARGET_POWER, SeedsNeeded, seeds_needed_many

CONFIDENCE = 0.95
TEST_NAME = "paired t-test"
EFFECT_SIZE = "cohen_dz"


Array = np.ndarray[Any, np.dtype[np.float64]]


def _finite(values: Sequence[float]) -> Array:
    arr = np.asarray(list(values), dtype=np.float64)
    return arr[np.isfinite(arr)]


def _is_constant(arr: np.ndarray[Any, np.dtype[np.float64]]) -> bool:
    # Exactly equal values, or equal up to float noise: SciPy then warns about catastrophic
    # cancellation and returns garbage or nan, so these cases are answered directly.
    scale = max(1.0, float(np.max(np.abs(arr))))
    return float(np.ptp(arr)) <= 1e-12 * scale


def none_if_nan(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(x)


@dataclass(frozen=True)
class Interval:
    """n, mean, sample std and the 95% t-interval of the mean of one sample."""

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(values: Sequence[float]) -> Interval:
    """Mean with a 95% Student-t confidence interval. Non-finite values are dropped."""
    return describe_many([values])[0]


def describe_many(samples: Sequence[Sequence[float]]) -> list[Interval]:
    """describe of each sample; the intervals of samples of the same size are one SciPy call
    over them all (element by element the same numbers as one call each)."""
    answers: list[Interval | None] = []
    by_size: dict[int, list[tuple[int, float, float]]] = {}  # n -> (index, mean, std)
    for index, values in enumerate(samples):
        arr = _finite(values)
        n = int(arr.size)
        answers.append(None)
        if n == 0:
            answers[index] = Interval(0, None, None, None, None, "no finished runs")
            continue
        mean = float(arr.mean())
        if n == 1:
            note = "n=1: no spread to estimate an interval from"
            answers[index] = Interval(1, mean, None, None, None, note)
        elif _is_constant(arr):
            note = "all values equal: zero-width interval"
            answers[index] = Interval(n, mean, 0.0, mean, mean, note)
        else:
            by_size.setdefault(n, []).append((index, mean, float(arr.std(ddof=1))))
    for n, rows in by_size.items():
        means = np.array([mean for _, mean, _ in rows])
        sems = np.array([std / math.sqrt(n) for _, _, std in rows])
        lows, highs = sps.t.interval(CONFIDENCE, df=n - 1, loc=means, scale=sems)
        for (index, mean, std), low, high in zip(rows, lows, highs, strict=True):
            answers[index] = Interval(n, mean, std, float(low), float(high))
    return [a for a in answers if a is not None]


@dataclass(frozen=True)
class PairedDifference:
    """mean(arm - baseline) over the seeds both have, with its 95% CI, p-value, effect size
    and the seeds a paired t-test needs to detect it at 80% power."""

    n_pairs: int
    seeds: list[int]
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    statistic: float | None
    note: str | None = None
    cohen_dz: float | None = None
    needed: SeedsNeeded | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "test": TEST_NAME,
            "n_pairs": self.n_pairs,
            "seeds": self.seeds,
            "mean_diff": self.mean_diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "t_statistic": self.statistic,
            "cohen_dz": self.cohen_dz,
            "seeds_needed": self.needed.seeds if self.needed else None,
            "seeds_needed_note": self.needed.note if self.needed else None,
            "note": self.note,
        }


Pair = tuple[Mapping[int, float], Mapping[int, float]]  # (arm, baseline): value by seed


def paired_difference(arm: Mapping[int, float], baseline: Mapping[int, float]) -> PairedDifference:
    """Pair the two arms by seed (seeds missing from either side are left out)."""
    return paired_differences([(arm, baseline)])[0]


def paired_differences(pairs: Sequence[Pair]) -> list[PairedDifference]:
    """paired_difference of each pair. The t-tests of pairs sharing as many seeds are one
    SciPy call over them all, and the seeds-needed searches one batch (seeds_needed_many):
    element by element the same numbers as one call each, without SciPy's per-call overhead
    (a 50-arm summary is about a hundred tests)."""
    answers: list[PairedDifference | None] = []
    by_size: dict[int, list[tuple[int, list[int], Array, Array]]] = {}
    for index, (arm, baseline) in enumerate(pairs):
        seeds = sorted(
            s for s in set(arm) & set(baseline)
            if math.isfinite(arm[s]) and math.isfinite(baseline[s])
        )  # fmt: skip
        a = np.array([arm[s] for s in seeds], dtype=np.float64)
        r = np.array([baseline[s] for s in seeds], dtype=np.float64)
        answers.append(_untestable(seeds, a, r))
        if answers[index] is None:
            by_size.setdefault(len(seeds), []).append((index, seeds, a, r))
    effects: dict[int, float] = {}
    for n, rows in by_size.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = sps.ttest_rel(np.stack([a for *_, a, _ in rows]),
                                   np.stack([r for *_, r in rows]), axis=1)  # fmt: skip
            ci = result.confidence_interval(CONFIDENCE)
        if caught and len(rows) > 1:  # which test warned is unknown: each again on its own
            for index, *_ in rows:
                answers[index] = paired_differences([pairs[index]])[0]
            continue
        warned = "; ".join(sorted({str(w.message) for w in caught})) or None
        for k, (index, seeds, a, r) in enumerate(rows):
            diffs = a - r
            mean = float(diffs.mean())
            effects[index] = mean / float(diffs.std(ddof=1))
            answers[index] = PairedDifference(
                n, seeds, mean,
                none_if_nan(float(ci.low[k])), none_if_nan(float(ci.high[k])),
                none_if_nan(float(result.pvalue[k])), none_if_nan(float(result.statistic[k])),
                warned, cohen_dz=none_if_nan(effects[index]),
            )  # fmt: skip
    needed = seeds_needed_many(list(effects.values()))
    found = [a for a in answers if a is not None]
    assert len(found) == len(pairs), "every pair has its answer by now"
    for index, seeds_for_power in zip(effects, needed, strict=True):
        found[index] = replace(found[index], needed=seeds_for_power)
    return found


def _untestable(seeds: list[int], a: Array, r: Array) -> PairedDifference | None:
    """The answer for a pair no t-test applies to; None for one it does."""
    n = len(seeds)
    if n == 0:
        return PairedDifference(
            0, [], None, None, None, None, None, "no seeds finished in both arms"
        )
    diffs = a - r
    mean = float(diffs.mean())
    if n == 1:
        note = "one shared seed: no spread to test against"
        return PairedDifference(1, seeds, mean, None, None, None, None, note)
    if _is_constant(diffs):
        note = "the difference is the same for every seed: the t-test is undefined"
        return PairedDifference(n, seeds, mean, mean, mean, None, None, note)
    return None


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the input order. The family is the p-values
    that exist (None means no test was possible, and is passed through): sorted ascending,
    the i-th smallest (from 0) is multiplied by (m - i), then made monotone with a running
    maximum and capped at 1. Rejecting where the adjusted value is below alpha controls the
    family-wise error rate at alpha."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


METHOD = (
    "95% Student-t intervals (scipy.stats.t); paired differences by a two-sided paired t-test "
    "over shared seeds (scipy.stats.ttest_rel), Holm-adjusted across the comparisons; effect "
    "size Cohen's d_z = mean(d) / sd(d) of the per-seed differences d; seeds_needed: the "
    f"smallest n for which a two-sided paired t-test at alpha={ALPHA} reaches "
    f"{TARGET_POWER:.0%} power for that d_z (noncentral t, scipy.stats.nct)"
)
