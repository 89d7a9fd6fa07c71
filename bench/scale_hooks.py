"""Figures of the scale benchmark's JSON line that other modules measure on the same live
store: each is a function of the store being served (LiveStore) that returns its figure, or
None when it is not measured (yet, or at this size). bench/scale_bench.py calls every one in
FIGURES while the server runs on the full store (before the prune), and writes what it
returns under that key.

- `dashboard_usable_s`: the dashboard in headless Chromium on this store, seconds to a usable
  page (bench/scale_dashboard.py); its other figures (after a sort, the next page) go in
  DETAILS.
- `tiny_run_overhead_ms`: the service's overhead per tiny run (wall time less training) over
  1,000 tiny runs through 2 workers (bench/scale_tiny.py). Those runs need workers, which the
  store being read must not have (they would train its queued runs): they run once per
  benchmark, on a PostgreSQL database and Redis database of their own, and every line
  carries that one figure; the full figures, Ray Tune's beside them, go in the first line's
  DETAILS.

DETAILS[(size, store)] holds what a figure measured beyond its one number, for the JSON line.
SETTINGS says what to measure (bench/scale_bench.py sets it from its options).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class Settings:
    dashboard: bool = True
    tiny_runs: int = 1000  # 0: none
    ray: bool = True
    mlflow_sizes: set[int] = field(default_factory=lambda: {10_000})


SETTINGS = Settings()
DETAILS: dict[tuple[int, str], dict[str, Any]] = {}
_tiny: dict[str, Any] = {}


def dashboard_usable_s(live: LiveStore) -> float | None:
    if not SETTINGS.dashboard:
        return None
    from bench.scale_dashboard import dashboard

    figures = dashboard(live)
    DETAILS.setdefault((live.size, live.store), {}).update(
        dashboard_next_page_s=figures["next_page_s"], dashboard=figures
    )
    return float(figures["usable_s"])


def tiny_run_overhead_ms(live: LiveStore) -> float | None:
    if not SETTINGS.tiny_runs:
        return None
    if not _tiny:
        from bench.scale_tiny import tiny_runs

        _tiny.update(tiny_runs(SETTINGS.tiny_runs, SETTINGS.ray))
        DETAILS.setdefault((live.size, live.store), {})["tiny_runs"] = _tiny
    return float(_tiny["trainlab"]["overhead_ms"])


def mlflow_ratios(live: LiveStore) -> float | None:
    """MLflow beside trainlab on the same reads (bench/scale_mlflow.py), at its sizes; the
    worst ratio (MLflow's p95 over trainlab's: above 1, trainlab is faster), every ratio in
    DETAILS."""
    if live.size not in SETTINGS.mlflow_sizes:
        return None
    from bench.scale_mlflow import compare

    figures = compare(live)
    DETAILS.setdefault((live.size, live.store), {})["mlflow"] = figures
    return figures.get("min_ratio")


FIGURES: dict[str, Figure] = {
    "dashboard_usable_s": dashboard_usable_s,
    "tiny_run_overhead_ms": tiny_run_overhead_ms,
    "mlflow_min_ratio": mlflow_ratios,
}
