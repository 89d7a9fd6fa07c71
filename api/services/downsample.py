"""Downsampling a loss curve for display without hiding what matters in it.

Taking every n-th point hides spikes (a divergence, a bad batch) whenever they fall between
the kept points. Min/max bucketing keeps them by construction: the interior of the series is
cut into equal buckets and each bucket contributes its lowest and its highest point, in step
order, so the global minimum and maximum always survive. The first and last points are kept
too, so the curve starts and ends where the run did. A bucket holding a NaN (a run that
diverged) shows the NaN in place of its maximum, so the divergence stays visible.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Steps = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]


def minmax_indices(values: Values, max_points: int) -> npt.NDArray[np.intp]:
    """Indices (ascending) of at most `max_points` points that keep each bucket's extremes."""
    n = int(values.shape[0])
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    if n <= max_points:
        return np.arange(n)
    buckets = (max_points - 2) // 2
    if buckets == 0:
        return np.array([0, n - 1])
    interior = values[1 : n - 1]
    size = -(-interior.shape[0] // buckets)  # ceil: every interior point lands in a bucket
    buckets = -(-interior.shape[0] // size)
    padded = np.empty(buckets * size, dtype=np.float64)
    padded[: interior.shape[0]] = interior
    # Padding repeats the last value: it can't beat a real point, and argmin/argmax return
    # the first occurrence, so a pad index is never chosen over the real one.
    padded[interior.shape[0] :] = interior[-1]
    grid = padded.reshape(buckets, size)

    nan = np.isnan(grid)
    if nan.any():
        low = np.argmin(np.where(nan, np.inf, grid), axis=1)
        high = np.argmax(np.where(nan, -np.inf, grid), axis=1)
        high = np.where(nan.any(axis=1), np.argmax(nan, axis=1), high)
    else:
        low = np.argmin(grid, axis=1)
        high = np.argmax(grid, axis=1)

    offsets = np.arange(buckets) * size + 1
    picked = np.concatenate(([0], low + offsets, high + offsets, [n - 1]))
    return np.unique(picked)


def downsample(steps: Steps, values: Values, max_points: int | None) -> tuple[Steps, Values]:
    """The series itself when it is short enough (or no limit is given), else its min/max
    skeleton of at most `max_points` points."""
    if max_points is None or steps.shape[0] <= max_points:
        return steps, values
    keep = minmax_indices(values, max_points)
    return steps[keep], values[keep]
