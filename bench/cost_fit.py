"""Fits classifier_cost.STEP_SECONDS to bench/cost_calibration.py's measurements.

The estimate of a step is linear in the costs (a sum of the spec's step_features, each times
its cost), so the fit starts from non-negative least squares on the ratio estimate/measured
(each row divided by its measured time, the target 1), then refines the logs of the costs to
shrink the worst log-ratio: the objective adds to the squared log-ratios a steep term in
(log-ratio / log goal)^8, which only the specs near or past the goal feel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize, nnls

from core.kinds import classifier_cost
from core.kinds.classifier_cost import step_features
from core.spec import ExperimentSpec

KNEES = (1_000_000, 2_000_000, 4_000_000, 8_000_000, 16_000_000, 32_000_000)
_TINY = 1e-15  # a cost NNLS set to 0 starts here (the refinement works on logs)


def _matrix(specs: list[ExperimentSpec]) -> tuple[list[str], np.ndarray]:
    features = [step_features(spec) for spec in specs]
    names = sorted({name for f in features for name in f})
    return names, np.array([[f.get(name, 0.0) for name in names] for f in features])


def fit(
    specs: list[ExperimentSpec], measured_s: list[float], goal: float
) -> tuple[dict[str, float], np.ndarray]:
    """(cost of each feature in seconds, the fitted ratio estimate/measured of each spec)."""
    names, features = _matrix(specs)
    relative = features / np.array(measured_s)[:, None]
    scale = relative.max(axis=0)
    scale[scale == 0] = 1.0
    start, _ = nnls(relative / scale, np.ones(len(specs)))
    start = start / scale
    used = features.any(axis=0)

    def objective(logs: np.ndarray) -> float:
        ratios = relative @ np.where(used, np.exp(logs), 0.0)
        error = np.log(np.maximum(ratios, 1e-12))
        return float(np.sum(error**2) + 10 * np.sum((error / math.log(goal)) ** 12))

    found = minimize(objective, np.log(np.maximum(start, _TINY)), method="Powell", options={"maxiter": 20_000})
    costs = np.where(used, np.exp(found.x), 0.0)
    if objective(found.x) > objective(np.log(np.maximum(start, _TINY))):
        costs = start
    # Costs of no consequence (under a thousandth of any spec's step) are dropped.
    share = (relative * costs).max(axis=0)
    costs[share < 1e-3] = 0.0
    return dict(zip(names, costs.tolist(), strict=True)), relative @ costs


def _worst(ratios: np.ndarray) -> float:
    return float(max(ratios.max(), 1 / max(ratios.min(), 1e-12)))


def fit_and_print(rows: list[dict[str, Any]], specs: list[ExperimentSpec], goal: float) -> None:
    measured = [r["measured_ms"] / 1e3 for r in rows]
    fits = {}
    for knee in KNEES:  # the cache's size is fitted too: the best of a few
        classifier_cost.CACHE_VALUES = knee
        fits[knee] = fit(specs, measured, goal)
        print(f"CACHE_VALUES = {knee:,}: worst {_worst(fits[knee][1]):.2f}x")
    knee = min(fits, key=lambda k: _worst(fits[k][1]))
    classifier_cost.CACHE_VALUES = knee
    costs, ratios = fits[knee]
    print(f"CACHE_VALUES = {knee:_}")
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
