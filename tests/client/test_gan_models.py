"""The client's walk between two seeds: evenly spaced, both ends exact, sizes checked."""

from __future__ import annotations

import pytest

from trainlab.gan_models import between


def test_a_walk_starts_and_ends_on_the_two_seeds_in_even_steps() -> None:
    walk = between([0.0, 1.0], [1.0, -1.0], 5)
    assert walk[0] == [0.0, 1.0] and walk[-1] == [1.0, -1.0]
    assert [seed[0] for seed in walk] == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize(
    ("a", "b", "steps", "message"),
    [([0.0], [0.0, 1.0], 3, "differ in size"), ([0.0], [1.0], 1, "steps >= 2")],
)
def test_a_walk_that_cannot_be_is_refused(
    a: list[float], b: list[float], steps: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        between(a, b, steps)
