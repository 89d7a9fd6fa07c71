"""Curves side by side: TensorBoard smoothing, alignment on shared steps, seed bands and a
downsampling that keeps every curve on the same x values and keeps spikes.

Order matters and is fixed here: smooth each raw series first (as TensorBoard does, over the
points the run actually logged), then align on the union of steps, then downsample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def tensorboard_ema(values: Sequence[float] | FloatArray, weight: float) -> FloatArray:
    """TensorBoard's scalar smoothing ("classic" smoothing, tensorboard/webapp
    widgets/line_chart_v2/data_transformer.ts): a debiased exponential moving average.

        last_t = last_{t-1} * w + (1 - w) * y_t          (last_0 = 0)
        smoothed_t = last_t / (1 - w ** k_t)              (k_t = finite points so far)

    Non-finite points pass through unchanged and do not advance the average; a constant
    series is returned as is; weight 1 disables the debias division, as in TensorBoard.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"smoothing weight must be within 0..1, got {weight}")
    y = np.asarray(values, dtype=np.float64)
    if y.size == 0 or weight == 0.0 or bool(np.all(y == y[0])):
        return y.copy()
    out = y.copy()
    finite = np.isfinite(y)
    # The recurrence over the finite points only, as a first-order IIR filter (scipy's lfilter
    # runs it in C: 18,000 points in about 2 ms, against ~20 ms in a Python loop).
    ema = lfilter([1.0 - weight], [1.0, -weight], y[finite])
    if weight < 1.0:
        ema /= 1.0 - weight ** np.arange(1, ema.size + 1, dtype=np.float64)
    out[finite] = ema
    return out


@dataclass(frozen=True)
class Aligned:
    """Curves on one shared step axis; NaN where a curve has no point at that step."""

    steps: IntArray
    values: FloatArray  # [curves, len(steps)]


def align(
    series: Sequence[tuple[Sequence[int] | IntArray, Sequence[float] | FloatArray]],
) -> Aligned:
    """Put every (steps, values) series on the union of their steps. A run still going, or
    one with a different log_every, gets NaN (null in JSON) where it has no point."""
    step_arrays = [np.asarray(s, dtype=np.int64) for s, _ in series]
    union = np.unique(np.concatenate(step_arrays)) if step_arrays else np.zeros(0, np.int64)
    matrix = np.full((len(series), union.size), np.nan, dtype=np.float64)
    for row, (steps, (_, values)) in enumerate(zip(step_arrays, series, strict=True)):
        matrix[row, np.searchsorted(union, steps)] = np.asarray(values, dtype=np.float64)
    return Aligned(union, matrix)


def _bucket_bounds(n: int, max_points: int) -> tuple[int, int]:
    buckets = max(1, max_points // 2)
    size = -(-n // buckets)  # ceil
    return -(-n // size), size


def _pad(matrix: FloatArray, total: int) -> FloatArray:
    pad = total - matrix.shape[1]
    return np.pad(matrix, ((0, 0), (0, pad)), constant_values=np.nan) if pad else matrix


def downsample_aligned(
    aligned: Aligned,
    max_points: int,
    *,
    lower: FloatArray | None = None,
    upper: FloatArray | None = None,
) -> tuple[Aligned, FloatArray | None, FloatArray | None]:
    """At most `max_points` shared x values. Each bucket of consecutive steps becomes two
    points, at its first and last step; every curve puts its bucket minimum and maximum there,
    in the order they occurred, so a one-point loss spike survives (unlike every n-th point).
    Optional `lower`/`upper` bands (same shape) become the bucket's min and max at both x."""
    n = aligned.steps.size
    if n <= max_points:
        return aligned, lower, upper
    count, size = _bucket_bounds(n, max_points)
    curves = aligned.values.shape[0]
    blocks = _pad(aligned.values, count * size).reshape(curves, count, size)
    missing = np.isnan(blocks)
    imin = np.where(missing, np.inf, blocks).argmin(axis=2)
    imax = np.where(missing, -np.inf, blocks).argmax(axis=2)
    first_i = np.minimum(imin, imax)[..., None]
    second_i = np.maximum(imin, imax)[..., None]
    first = np.take_along_axis(blocks, first_i, axis=2)[..., 0]
    second = np.take_along_axis(blocks, second_i, axis=2)[..., 0]

    starts = np.arange(count) * size
    ends = np.minimum(starts + size, n) - 1
    x = np.stack([aligned.steps[starts], aligned.steps[ends]], axis=1).reshape(-1)
    y = np.stack([first, second], axis=2).reshape(curves, -1)
    # A one-step bucket (the tail) would repeat its x: keep it once.
    keep = np.ones(x.size, dtype=bool)
    keep[1::2] = starts != ends

    def band(arr: FloatArray | None, reduce: Any) -> FloatArray | None:
        if arr is None:
            return None
        b = _pad(arr, count * size).reshape(curves, count, size)
        per_bucket = reduce.reduce(b, axis=2)  # fmin/fmax ignore NaN, no warnings
        return np.repeat(per_bucket, 2, axis=1)[:, keep]

    return (
        Aligned(x[keep], y[:, keep]),
        band(lower, np.fmin),
        band(upper, np.fmax),
    )


@dataclass(frozen=True)
class Band:
    """Per group of curves (an ablation arm's seeds): mean, min and max at each step."""

    mean: FloatArray
    low: FloatArray
    high: FloatArray
    count: npt.NDArray[np.int64]  # how many curves have a point at each step


def seed_band(values: FloatArray) -> Band:
    """Mean and min/max envelope across rows, ignoring rows missing a step (NaN)."""
    present = ~np.isnan(values)
    count = present.sum(axis=0).astype(np.int64)
    total = np.where(present, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return Band(mean, np.fmin.reduce(values, axis=0), np.fmax.reduce(values, axis=0), count)


def group_bands(
    aligned: Aligned, groups: Sequence[Sequence[int]]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bands for groups of rows of `aligned` (rows of each group are its seeds). Groups with no
    rows give all-NaN rows. Returns (mean, low, high), each [groups, steps]."""
    shape = (len(groups), aligned.steps.size)
    mean, low, high = (np.full(shape, np.nan) for _ in range(3))
    for g, rows in enumerate(groups):
        if rows:
            b = seed_band(aligned.values[list(rows)])
            mean[g], low[g], high[g] = b.mean, b.low, b.high
    return mean, low, high


def json_floats(values: FloatArray) -> list[float | None]:
    """NaN and infinities become null: JSON has no NaN. Checked as one array, not value by
    value (NumPy's per-call cost made this most of /compare/loss's CPU)."""
    array = np.asarray(values, dtype=np.float64)
    floats: list[float | None] = array.tolist()
    for index in np.flatnonzero(~np.isfinite(array)).tolist():
        floats[index] = None
    return floats
