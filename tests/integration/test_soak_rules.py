"""The soak's leak rules (soak_rules.py) on synthetic series shaped as the soak samples them: one
sample a second for ten minutes, a quiet window after the two-minute warm-up and one at the
end. A figure that keeps growing trips its rule; one that stays level, wobbles, or steps up
once as a pool warms does not. No processes: these run with the unit tests."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.integration.soak_rules import (
    Series,
    bound_for,
    growth,
    percentile,
    window_median,
)

FIRST = (122.0, 128.0)  # the quiet window after the warm-up
LAST = (602.0, 608.0)  # the one at the end


def sampled(value_at: Callable[[int], float], seconds: int = 610) -> Series:
    return [(float(t), value_at(t)) for t in range(seconds)]


def check(name: str, series: Series) -> bool:
    return growth(name, series, FIRST, LAST, bound_for(name)).ok


def test_resident_memory_that_keeps_growing_trips_the_rule() -> None:
    # 200 MB growing by 50 kB a second (a few hundred bytes a request) ends about 12 % up.
    assert not check("api0 rss MB", sampled(lambda t: 200 + 0.05 * t))


def test_resident_memory_that_levels_off_after_the_warm_up_passes() -> None:
    rng = random.Random(1)
    # Grows while the caches fill in the warm-up, then wobbles by a few MB under load.
    assert check("api0 rss MB", sampled(lambda t: 150 + min(t, 100) * 0.8 + rng.uniform(-4, 4)))


def test_ten_percent_is_the_line() -> None:
    assert check("worker0 pool rss MB", sampled(lambda t: 1000.0 if t < 300 else 1099.0))
    assert not check("worker0 pool rss MB", sampled(lambda t: 1000.0 if t < 300 else 1101.0))


def test_a_descriptor_leak_trips_the_rule() -> None:
    # One descriptor a minute never closed (a connection per ~1,400 requests at the soak's
    # pace) is 8 more by the end.
    assert not check("api1 fds", sampled(lambda t: 22 + t // 60))


def test_a_pool_that_opens_one_more_connection_later_passes() -> None:
    assert check("api1 pg connections", sampled(lambda t: 4 if t < 400 else 5))
    assert check("api1 fds", sampled(lambda t: 22 if t < 400 else 23))
    assert not check("api1 pg connections", sampled(lambda t: 4 if t < 400 else 7))


def test_connections_that_keep_growing_trip_the_rule() -> None:
    assert not check("worker1 pg connections", sampled(lambda t: 3 + t // 100))
    assert not check("redis clients", sampled(lambda t: 12 + t // 150))


def test_one_odd_sample_decides_nothing() -> None:
    spike = sampled(lambda t: 500.0 if t == 605 else 22.0)
    assert window_median(spike, LAST) == 22.0
    assert check("api0 fds", spike)


def test_a_window_without_samples_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="no sample"):
        growth("api0 fds", sampled(lambda t: 1.0, seconds=300), FIRST, LAST, bound_for("api0 fds"))


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([7.0], 0.95) == 7.0
