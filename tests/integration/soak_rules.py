"""The soak's leak rules, as pure functions over sampled series (tests/integration/soak.py
samples them; tests/integration/test_soak_rules.py shows each trips on a synthetic leak).

A series is (seconds, value) samples of one figure of one process: resident memory, open file
descriptors, database or broker connections. The soak compares two quiet windows, each taken
with no client connected and no run left to train: one at the end of the warm-up, one at the
end. The same figure in the same quiet state is comparable: what a leak leaves behind is still
there, while what the load holds (a request's socket, a checked-out connection) is not. Each
window's median stands for it, so one odd sample decides nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

Series = Sequence[tuple[float, float]]
Window = tuple[float, float]


@dataclass(frozen=True)
class Bound:
    """How much a figure may grow from the first window to the last: `ratio` of its start
    (resident memory: 0.10) plus `slack` in its own unit."""

    ratio: float = 0.0
    slack: float = 0.0


@dataclass(frozen=True)
class Growth:
    name: str
    start: float
    end: float
    allowed: float

    @property
    def ok(self) -> bool:
        return self.end <= self.allowed

    def __str__(self) -> str:
        verdict = "ok" if self.ok else f"GREW past {self.allowed:g}"
        return f"{self.name}: {self.start:g} -> {self.end:g} ({verdict})"


# The soak's bounds, by the figure's name's ending.
BOUNDS = {
    "rss MB": Bound(ratio=0.10),
    # A connection pool keeps, when idle, as many connections as it once needed at once: a
    # later moment busier than any of the warm-up may leave one or two more (and their
    # descriptors). A leak grows with the requests or the runs, by far more.
    "fds": Bound(slack=2),
    "pg connections": Bound(slack=2),
    "redis clients": Bound(slack=2),
}


def bound_for(figure: str) -> Bound:
    """The bound of a figure (`api0 rss MB`, `worker1 pool fds`, `redis clients`)."""
    return next(bound for suffix, bound in BOUNDS.items() if figure.endswith(suffix))


def window_median(series: Series, window: Window) -> float:
    """The median of the samples taken within [start, end] seconds."""
    inside = [value for at, value in series if window[0] <= at <= window[1]]
    if not inside:
        raise ValueError(f"no sample between {window[0]:.1f} s and {window[1]:.1f} s")
    return float(statistics.median(inside))


def growth(name: str, series: Series, first: Window, last: Window, bound: Bound) -> Growth:
    """The figure's level in the first and the last window, and whether it stayed within
    `bound` of where it started."""
    start = window_median(series, first)
    end = window_median(series, last)
    return Growth(name, start, end, start * (1 + bound.ratio) + bound.slack)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (0.5: the median, 0.95: p95) of a non-empty sequence."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]
