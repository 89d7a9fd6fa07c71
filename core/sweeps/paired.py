"""The paired-seed pruner: stop a trial that is outside a rung's top band and clearly worse,
seed by seed, than the band's edge.

Every trial of a sweep trains on the same seeds (same initial weights and data order per
seed), so at a rung two trials' figures pair up by seed. The rule, at rung r of R, over the
trials that have every seed's figure at that rung (the trial itself included, m of them):

    band  = the best max(1, m // eta) of them by their seeds' mean (eta = 3: what successive
            halving, ASHA, keeps of a rung; ties go to the lower trial number)
    edge  = the worst trial in the band
    d_s   = sign * (trial_s - edge_s) for each seed s          (sign makes "larger is better")
    upper = mean(d) + t_{1 - alpha/(R-1), n - 1} * sd(d) / sqrt(n)
    prune when the trial is outside the band and upper < 0,
    and never while fewer than MIN_TRIALS trials are at the rung.

So a trial is stopped only when ASHA would stop it too (it is not in the top 1/eta) and, even
at the optimistic end of a one-sided confidence interval on its paired seeds, it trails the
weakest trial ASHA keeps. Comparing with the band's edge rather than the single best one is
what keeps a good-but-not-best configuration: early in training (1/9 of the steps) the 2nd and
3rd configurations of a grid trail the best by gaps a few paired seeds resolve, so "worse than
the best" stopped them; "worse than the worst one kept" does not. Until MIN_TRIALS trials have
reached a rung (the sweep's `prune_after`, default 6) nothing is pruned there: with fewer,
the band is the best trial alone, and that is the comparison this rule replaced.

The guard against many looks: a trial is looked at up to R - 1 times (the last rung is not
judged), and alpha is split evenly over them (Bonferroni, the first step of Holm), so the
chance of stopping a trial that is in truth as good as the band's edge stays at most alpha
over all its rungs. At least two seeds are needed (one gives no spread); with identical
seeds' differences (sd 0) the bound is the mean itself. The decision names every trial it
ranked (`rivals`), so it can be decided again from the stored rung figures of those trials.
Pure functions, no Optuna, no database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy import stats as sps

from core.sweeps.gate import ETA, MIN_TRIALS

__all__ = ["ETA", "MIN_TRIALS", "Decision", "band_size", "decide", "per_look_alpha", "upper_bound"]

DEFAULT_ALPHA = 0.05
MIN_SEEDS = 2


@dataclass(frozen=True)
class Decision:
    prune: bool
    reason: str
    reference: int | None = None  # the trial compared with: the band's edge
    mean_diff: float | None = None
    upper: float | None = None
    n: int = 0
    alpha: float = DEFAULT_ALPHA
    # The other trials that had every seed's figure at this rung when it was decided: the
    # same figures of these trials give the same decision again, whoever reported later.
    rivals: list[int] = field(default_factory=list)
    band: int = 0  # how many trials the band kept at this rung (0: no band drawn)
    min_trials: int = MIN_TRIALS  # the sweep's `prune_after`: no prune with fewer at the rung
    mean: float | None = None  # the trial's own seeds' mean at this rung

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def per_look_alpha(alpha: float, looks: int) -> float:
    return alpha / max(looks, 1)


def band_size(trials: int, eta: int = ETA) -> int:
    """How many of `trials` at a rung successive halving keeps: the top 1/eta, at least one."""
    return max(1, trials // eta)


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
    number: int = -1,
    eta: int = ETA,
    min_trials: int = MIN_TRIALS,
) -> Decision:
    """Should the trial with per-seed figures `trial` (trial `number`) stop at this rung?
    `others` maps each other trial's number to its per-seed figures at the same rung; only
    those that have every seed of `trial` count."""
    seeds = sorted(trial)
    level = per_look_alpha(alpha, looks)
    if len(seeds) < MIN_SEEDS:
        reason = f"needs {MIN_SEEDS} seeds at least"
        return Decision(False, reason, alpha=level, min_trials=min_trials)
    sign = 1.0 if maximize else -1.0
    means = {
        other: sum(figures[s] for s in seeds) / len(seeds)
        for other, figures in others.items()
        if other != number and all(s in figures for s in seeds)
    }
    compared = sorted(means)
    if not means:
        reason = "no other trial at this rung yet"
        return Decision(False, reason, alpha=level, n=len(seeds), min_trials=min_trials)
    means[number] = sum(trial.values()) / len(seeds)
    ranked = sorted(means, key=lambda k: (-sign * means[k], k))
    kept = band_size(len(ranked), eta)
    edge = ranked[kept - 1]
    place = ranked.index(number) + 1
    diffs = [sign * (trial[s] - others[edge][s]) for s in seeds] if edge != number else []
    upper = upper_bound(diffs, level) if diffs else None

    def verdict(prune: bool, reason: str) -> Decision:
        mean = sum(diffs) / len(diffs) if diffs else None
        return Decision(
            prune, reason, edge, mean, upper, len(seeds), level, compared, kept, min_trials,
            means[number],
        )  # fmt: skip

    if len(ranked) < min_trials:
        return verdict(False, f"{len(ranked)} trials at this rung; none pruned before {min_trials}")
    if place <= kept:
        return verdict(False, f"in the top {kept} of {len(ranked)} at this rung (place {place})")
    assert upper is not None
    if upper < 0:
        return verdict(True, (
            f"outside the top {kept} of {len(ranked)} and worse than its edge, trial {edge}, "
            f"on the same {len(seeds)} seeds: the one-sided {1 - level:.4g} upper bound of "
            f"the paired difference is {upper:.4g} < 0"
        ))  # fmt: skip
    return verdict(False, (
        f"outside the top {kept} of {len(ranked)} but not clearly worse than its edge, "
        f"trial {edge} (upper bound {upper:.4g} >= 0)"
    ))  # fmt: skip
