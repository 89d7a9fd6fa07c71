"""Figures of the scale benchmark's JSON line that other modules measure on the same live
store: each is a function of the store being served (LiveStore) that returns its figure, or
None when it is not measured (yet, or at this size). bench/scale_bench.py calls every one in
FIGURES while the server runs on the full store (before the prune), and writes what it
returns under that key.

- `dashboard_usable_s`: the dashboard in headless Chromium on this store, seconds to a usable
  page: to come from the dashboard benchmark's module.
- `tiny_run_overhead_ms`: the service's overhead per tiny run (wall time less training) over
  1,000 tiny runs through 2 workers: to come from the tiny-runs benchmark's module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.scale_store import BuiltStore


@dataclass(frozen=True)
class LiveStore:
    size: int
    store: str  # "postgres" or "sqlite"
    base_url: str  # the live `trainlab serve` on it
    token: str  # a viewer's API key
    database_url: str
    built: BuiltStore  # ids of its runs, ablation, sweep


Figure = Callable[[LiveStore], float | None]


def dashboard_usable_s(live: LiveStore) -> float | None:
    return None


def tiny_run_overhead_ms(live: LiveStore) -> float | None:
    return None


FIGURES: dict[str, Figure] = {
    "dashboard_usable_s": dashboard_usable_s,
    "tiny_run_overhead_ms": tiny_run_overhead_ms,
}
