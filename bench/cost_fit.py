"""Fits classifier_cost.STEP_SECONDS to bench/cost_calibration.py's measurements.

The estimate of a step is linear in the costs (a sum of the spec's step_features, each times
its cost), so "every ratio estimate/measured within g either way, every cost >= 0" is a linear
feasibility problem (each row divided by its measured time): the fit bisects on g for the
smallest g some costs meet (scipy's linprog), which makes the worst ratio as small as these
features allow. The two cache sizes (CACHE_VALUES, FAR_VALUES) are not linear: the fit tries a
few of each and keeps the best. A cost the fit leaves at 0 prices nothing.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy.optimize import linprog

from core.kinds import classifier_cost
from core.kinds.classifier_cost import step_features
from core.spec import ExperimentSpec

KNEES = (500_000, 1_000_000, 2_000_000, 4_000_000)
FAR_KNEES = (8_000_000, 16_000_000, 32_000_000, 64_000_000)
SLACK = 1.02


def _matrix(specs: list[ExperimentSpec]) -> tuple[list[str], np.ndarray]:
    features = [step_features(spec) for spec in specs]
    names = sorted({name for f in features for name in f})
    return names, np.array([[f.get(name, 0.0) for name in names] for f in features])


def _feasible(relative: np.ndarray, bound: float) -> np.ndarray | None:
    """Costs >= 0 that put every ratio within `bound` either way, if there are any: of those,
    the ones with the least total distance of the ratios from 1 (each ratio r = 1 + over -
    under, both >= 0, the sum of all of them the least), so most specs sit near 1, not at the
    bound."""
    rows, columns = relative.shape
    eye = np.eye(rows)
    found = linprog(
        np.concatenate([np.zeros(columns), np.ones(2 * rows)]),
        A_ub=np.hstack([np.vstack([relative, -relative]), np.zeros((2 * rows, 2 * rows))]),
        b_ub=np.concatenate([np.full(rows, bound), np.full(rows, -1 / bound)]),
        A_eq=np.hstack([relative, -eye, eye]),
        b_eq=np.ones(rows),
        bounds=[(0, None)] * (columns + 2 * rows),
        method="highs",
    )
    return np.asarray(found.x[:columns]) if found.status == 0 else None


def fit(
    specs: list[ExperimentSpec], measured_s: list[float]
) -> tuple[dict[str, float], np.ndarray]:
    """(cost of each feature in seconds, the fitted ratio estimate/measured of each spec)."""
    names, features = _matrix(specs)
    relative = features / np.array(measured_s)[:, None]
    scale = relative.max(axis=0)
    scale[scale == 0] = 1.0
    relative = relative / scale
    low, high = 1.0, 64.0
    best = _feasible(relative, high)
    assert best is not None, "no costs fit the measurements at all"
    while high / low > 1.001:  # bisect the smallest bound some costs meet
        middle = math.sqrt(low * high)
        found = _feasible(relative, middle)
        if found is None:
            low = middle
        else:
            high, best = middle, found
    # A little over the least bound, the costs are freer to bring the other ratios near 1.
    best = _feasible(relative, high * SLACK)
    assert best is not None
    # Costs of no consequence (under a thousandth of every spec's step) are left out.
    best[(relative * best).max(axis=0) < 1e-3] = 0.0
    return dict(zip(names, (best / scale).tolist(), strict=True)), relative @ best


def _worst(ratios: np.ndarray) -> float:
    return float(max(ratios.max(), 1 / max(ratios.min(), 1e-12)))


def fit_and_print(rows: list[dict[str, Any]], specs: list[ExperimentSpec], goal: float) -> None:
    measured = [r["measured_ms"] / 1e3 for r in rows]
    fits = {}
    for knees in itertools.product(KNEES, FAR_KNEES):  # the caches' sizes: the best of a few
        classifier_cost.CACHE_VALUES, classifier_cost.FAR_VALUES = knees
        fits[knees] = fit(specs, measured)
        print(f"CACHE_VALUES, FAR_VALUES = {knees}: worst {_worst(fits[knees][1]):.3f}x")
    knees = min(fits, key=lambda k: _worst(fits[k][1]))
    classifier_cost.CACHE_VALUES, classifier_cost.FAR_VALUES = knees
    costs, ratios = fits[knees]
    print(f"CACHE_VALUES = {knees[0]:_}\nFAR_VALUES = {knees[1]:_}")
    print("\nfitted (seconds per unit of each feature):")
    print("STEP_SECONDS: dict[str, float] = {")
    for name, cost in costs.items():
        if cost:
            print(f'    "{name}": {cost:.3g},')
    print("}")
    print(f"{'#':>3} {'spec':<44}{'fitted/meas':>12}")
    for r, ratio in zip(rows, ratios, strict=True):
        flag = "" if 1 / goal <= ratio <= goal else "  MISS"
        print(f"{r['index']:>3} {r['name']:<44}{ratio:>12.2f}{flag}")
    print(
        f"fitted: worst over-estimate {ratios.max():.2f}x, "
        f"worst under-estimate {1 / ratios.min():.2f}x (goal {goal}x)"
    )
