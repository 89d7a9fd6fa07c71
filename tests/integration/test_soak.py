"""The soak: two API processes and two workers under a steady mix of requests for SOAK_SECONDS
(`make drills`: 360, `make soak`: 1800 unless given), then the invariants an operator relies
on when the service runs for months: no run stuck, every series exact, no process that keeps
growing, nothing wrong in the logs.

The mix (tests/integration/soak.py) runs for the warm-up (a fifth of the time, at most 120 s,
and on until every kind of request has been answered), then pauses: every run ends, every
client disconnects, and the first quiet window is sampled. Then it runs for the rest of the
time, and the second quiet window is sampled the same way.
From the first window to the second (tests/integration/soak_rules.py): each process's resident
memory grows by at most 10 %; its open file descriptors and database connections, and the
Redis server's clients, by at most the two a connection pool may add. The figures are printed
(run pytest with -s), and every sample is kept in the test's soak-series.json.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import require_mnist
from tests.integration.drills import drill_body, reference_series
from tests.integration.services import DrillPostgres, DrillRedis, drill_postgres, drill_redis
from tests.integration.soak import Mix
from tests.integration.soak_figures import figures
from tests.integration.soak_probe import Sampler, log_lines, start_soak_stack
from tests.integration.soak_rules import Growth, Window, bound_for, growth

pytestmark = [pytest.mark.integration, pytest.mark.drill]

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "360"))
WARMUP_S = min(120.0, SOAK_SECONDS / 5)
QUIET_S = 6.0  # each quiet window: about six samples, a second apart
# Small runs (a second or two of training each) of two structures and four seeds: seeds of one
# structure may train together as a fused group, and each must still get its own series. Each
# run that turns over leaves a few tens of kB in the API processes' caches (its finished series,
# its last answers; bounded, full after a thousand runs or more): much shorter runs would turn
# over faster, and grow them faster.
CATALOGUE = [
    drill_body(seed=seed, train_limit=limit, test_limit=100)
    for seed in (61, 62, 63, 64)
    for limit in (1000, 2000)
]


@pytest.fixture
def servers() -> Iterator[tuple[DrillPostgres, DrillRedis]]:
    with drill_postgres() as pg, drill_redis() as broker:
        yield pg, broker


def quiet_window(sampler: Sampler) -> Window:
    """Sampled once the clients have gone and their connections are closed."""
    time.sleep(2.0)
    start = sampler.now()
    time.sleep(QUIET_S)
    return start, sampler.now()


T = TypeVar("T")


def timed(took: dict[str, float], phase: str, step: Callable[[], T]) -> T:
    began = time.monotonic()
    try:
        return step()
    finally:
        took[phase] = time.monotonic() - began


@pytest.mark.timeout(int(SOAK_SECONDS) + 900)
def test_soak(servers: tuple[DrillPostgres, DrillRedis], tmp_path: Path) -> None:
    require_mnist()
    pg, broker = servers
    began = time.monotonic()
    # The uninterrupted runs' series, computed once, here, while the stack starts.
    references = threading.Thread(target=lambda: [reference_series(b) for b in CATALOGUE])
    references.start()
    soak = start_soak_stack(tmp_path, pg, broker)
    references.join()
    sampler = Sampler(soak, pg, broker)
    mix = Mix(soak.urls, CATALOGUE, seed=int(SOAK_SECONDS))
    took: dict[str, float] = {"start": time.monotonic() - began}
    try:
        sampler.start()
        took["warm-up"] = mix.run_for(WARMUP_S, or_until_warm=SOAK_SECONDS / 2)
        stuck = timed(took, "drain", mix.drain)
        first = quiet_window(sampler)
        took["measured"] = mix.run_for(SOAK_SECONDS - took["warm-up"])
        stuck += timed(took, "final drain", mix.drain)
        last = quiet_window(sampler)
        unaccounted = timed(took, "final check", mix.check_kept)
    finally:
        try:
            sampler.stop()
        finally:
            soak.stack.stop()
    growths: list[Growth] = [
        growth(name, sampler.get(name), first, last, bound_for(name)) for name in sampler.names()
    ]
    trouble, warnings = log_lines(tmp_path)
    # Every sample, for a closer look: {figure: [[seconds, value], ...]}.
    (tmp_path / "soak-series.json").write_text(json.dumps(sampler.series))
    took["all"] = time.monotonic() - began
    print(figures(mix, sampler, growths, took, warnings, trouble), file=sys.stderr, flush=True)
    assert not mix.stats.failures, "\n".join(mix.stats.failures[:20])
    assert not stuck, stuck
    assert not unaccounted, unaccounted
    twice = [r.id for r in mix.ledger.runs_where(lambda r: r.attempt > 1)]
    assert not twice, f"claimed more than once with no fault: {twice}"
    assert all(g.ok for g in growths), "\n".join(str(g) for g in growths if not g.ok)
    assert not trouble, "\n".join(trouble[:40])
