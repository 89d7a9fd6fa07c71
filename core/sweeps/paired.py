"""The paired-seed pruner: stop a trial that is clearly worse than the best one, seed by seed.

Every trial of a sweep trains on the same seeds (same initial weights and data order per
seed), so at a rung two trials' figures pair up by seed. The rule, at rung r of R:

    d_s = sign * (trial_s - best_s) for each shared seed s   (sign makes "larger is better")
    upper = mean(d) + t_{1 - alpha/R, n - 1} * sd(d) / sqrt(n)
    prune when upper < 0

where `best` is the other trial with the best mean at that rung over the same seeds. So a
trial is stopped only when, even at the optimistic end of a one-sided (1 - alpha/R)
confidence interval, it trails the best. The guard against many looks: a trial is looked at
up to R times, and alpha is split evenly over them (Bonferroni, the first step of Holm), so
the chance of stopping a trial that is in truth as good as the best stays at most alpha over
all its rungs. At least two seeds are needed (one gives no spread); with identical seeds'
differences (sd 0) the bound is the mean itself. Pure functions, no Optuna, no database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy import stats as sps

DEFAULT_ALPHA = 0.05
MIN_SEEDS = 2


@dataclass(frozen=True)
class Decision:
    prune: bool
    reason: str
    reference: int | None = None  # the trial compared with
    mean_diff: float | None = None
    upper: float | None = None
    n: int = 0
    alpha: float = DEFAULT_ALPHA
    # The other trials that had every seed's figure at this rung when it was decided: the
    # same figures of these trials give the same decision again, whoever reported later.
    rivals: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def per_look_alpha(alpha: float, looks: int) -> float:
    return alpha / max(looks, 1)


def upper_bound(diffs: list[float], alpha: float) -> float | None:
    """One-sided (1 - alpha) upper confidence bound of the mean of `diffs`; None for n < 2."""
    n = len(diffs)
    if n < MIN_SEEDS:
        return None
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    return mean + float(sps.t.ppf(1.0 - alpha, n - 1)) * sd / math.sqrt(n)


def decide(
    trial: Mapping[int, float],
    others: Mapping[int, Mapping[int, float]],
    *,
    looks: int,
    alpha: float = DEFAULT_ALPHA,
    maximize: bool = True,
) -> Decision:
    """Should the trial with per-seed figures `trial` stop at this rung? `others` maps each
    other trial's number to its per-seed figures at the same rung; only those that have every
    seed of `trial` count."""
    seeds = sorted(trial)
    level = per_look_alpha(alpha, looks)
    if len(seeds) < MIN_SEEDS:
        return Decision(False, f"needs {MIN_SEEDS} seeds at least", alpha=level)
    sign = 1.0 if maximize else -1.0
    rivals = {
        number: sum(figures[s] for s in seeds) / len(seeds)
        for number, figures in others.items()
        if all(s in figures for s in seeds)
    }
    compared = sorted(rivals)
    if not rivals:
        return Decision(False, "no other trial at this rung yet", alpha=level, n=len(seeds))
    best = max(rivals, key=lambda number: (sign * rivals[number], -number))
    diffs = [sign * (trial[s] - others[best][s]) for s in seeds]
    mean = sum(diffs) / len(diffs)
    upper = upper_bound(diffs, level)
    assert upper is not None
    if upper < 0:
        reason = (
            f"worse than trial {best} on the same {len(seeds)} seeds: the one-sided "
            f"{1 - level:.4g} upper bound of the paired difference is {upper:.4g} < 0"
        )
        return Decision(True, reason, best, mean, upper, len(seeds), level, compared)
    reason = f"not clearly worse than trial {best} (upper bound {upper:.4g} >= 0)"
    return Decision(False, reason, best, mean, upper, len(seeds), level, compared)
