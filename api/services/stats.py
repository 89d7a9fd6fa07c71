"""Statistics for ablation summaries: is an arm's difference more than seed noise?

Everything here is plain numbers in, plain JSON-able dicts out; the formulas are SciPy's
(`scipy.stats.t` for intervals, `scipy.stats.ttest_rel` for paired tests), not hand-rolled.

Why a paired t-test: every arm of an ablation runs the same seeds, so seed s of arm A and seed s
of the reference share initial weights and data order. Differencing per seed removes that shared
noise, which is what makes a small ablation (3-5 seeds) able to tell arms apart at all.

Small samples are answered, not refused: with n < 2 there is no spread to estimate, so the
interval, std and p-value are null and a `note` says why.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
METHOD = (
    "95% Student-t intervals (scipy.stats.t); differences to the reference arm by a two-sided "
    "paired t-test over shared seeds (scipy.stats.ttest_rel)"
)
TEST_NAME = "paired t-test"


def _finite(values: Sequence[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
    arr = np.asarray(list(values), dtype=np.float64)
    return arr[np.isfinite(arr)]


def _is_constant(arr: np.ndarray[Any, np.dtype[np.float64]]) -> bool:
    # Exactly equal values, or equal up to float noise: SciPy then warns about catastrophic
    # cancellation and returns garbage or nan, so these cases are answered directly.
    scale = max(1.0, float(np.max(np.abs(arr))))
    return float(np.ptp(arr)) <= 1e-12 * scale


def _none_if_nan(x: float | None) -> float | None:
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
    arr = _finite(values)
    n = int(arr.size)
    if n == 0:
        return Interval(0, None, None, None, None, "no finished runs")
    mean = float(arr.mean())
    if n == 1:
        return Interval(1, mean, None, None, None, "n=1: no spread to estimate an interval from")
    if _is_constant(arr):
        return Interval(n, mean, 0.0, mean, mean, "all values equal: zero-width interval")
    std = float(arr.std(ddof=1))
    sem = std / math.sqrt(n)
    low, high = sps.t.interval(CONFIDENCE, df=n - 1, loc=mean, scale=sem)
    return Interval(n, mean, std, float(low), float(high))


@dataclass(frozen=True)
class PairedDifference:
    """mean(arm - reference) over the seeds both have, with its 95% CI and p-value."""

    n_pairs: int
    seeds: list[int]
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    statistic: float | None
    note: str | None = None

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
            "note": self.note,
        }


def paired_difference(arm: Mapping[int, float], reference: Mapping[int, float]) -> PairedDifference:
    """Pair the two arms by seed (seeds missing from either side are left out)."""
    seeds = sorted(
        s
        for s in set(arm) & set(reference)
        if math.isfinite(arm[s]) and math.isfinite(reference[s])
    )
    a = np.array([arm[s] for s in seeds], dtype=np.float64)
    r = np.array([reference[s] for s in seeds], dtype=np.float64)
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sps.ttest_rel(a, r)
        ci = result.confidence_interval(CONFIDENCE)
    warned = "; ".join(sorted({str(w.message) for w in caught})) or None
    return PairedDifference(
        n,
        seeds,
        mean,
        _none_if_nan(float(ci.low)),
        _none_if_nan(float(ci.high)),
        _none_if_nan(float(result.pvalue)),
        _none_if_nan(float(result.statistic)),
        warned,
    )


@dataclass(frozen=True)
class ArmResults:
    """The finished runs of one arm, by seed."""

    index: int
    label: str
    accuracy: Mapping[int, float]
    final_loss: Mapping[int, float]


def summarize(arms: Sequence[ArmResults], reference: int = 0) -> dict[str, Any]:
    """The ablation summary: per arm accuracy and final loss statistics, and the paired
    difference in test accuracy to the reference arm (an index into `arms`)."""
    if not 0 <= reference < len(arms):
        raise ValueError(f"reference arm {reference} does not exist (arms 0..{len(arms) - 1})")
    ref = arms[reference]
    rows: list[dict[str, Any]] = []
    for arm in arms:
        accuracy = describe(list(arm.accuracy.values()))
        diff = paired_difference(arm.accuracy, ref.accuracy).as_dict()
        if arm is ref:
            diff["note"] = "the reference arm itself"
        loss = describe(list(arm.final_loss.values()))
        rows.append(
            {
                "arm": arm.index,
                "label": arm.label,
                "n": accuracy.n,
                "test_accuracy": accuracy.as_dict(),
                "final_loss": loss.as_dict(),
                "per_seed": {
                    str(s): {"test_accuracy": arm.accuracy[s], "final_loss": arm.final_loss.get(s)}
                    for s in sorted(arm.accuracy)
                },
                "diff_to_reference": diff,
            }
        )
    return {
        "metric": "test_accuracy",
        "reference": ref.index,
        "confidence": CONFIDENCE,
        "method": METHOD,
        "test": TEST_NAME,
        "arms": rows,
    }
