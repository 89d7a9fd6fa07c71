"""What GET /metrics reports, in Prometheus' text format (prometheus-client).

Two kinds of figure, on purpose:
- Read from the store at scrape time (StoreCollector), so every API process answers the same
  whatever ran where: experiments by status, queue depth, runs started and finished by outcome
  (counters: the store's sums plus what deleted experiments had added, kept in
  `deleted_totals`, so they never go down), and steps per second per worker, from the step
  and heartbeat of each running experiment between two scrapes. A scrape is three grouped
  reads and, when the broker answers within a second, its queue length.
- Counted in this process: the reaper's actions (it runs in the API process) and HTTP
  latency per route template (api/instrumentation.py).

Each app has its own registry, so several apps in one process (tests) never collide.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlmodel import Session

from core.broker import TRAINING_QUEUE, Broker
from core.store import census, retention
from core.store.models import TERMINAL_VALUES, Status

logger = logging.getLogger(__name__)

REAPER_ACTIONS = ("requeued", "failed", "cancelled", "sent", "resent")


class ReapReportLike(Protocol):
    requeued: list[str]
    failed: list[str]
    cancelled: list[str]
    sent: list[str]


@dataclass(frozen=True)
class _Seen:
    step: int
    heartbeat_at: datetime
    rate: float


class StoreCollector(Collector):
    def __init__(self, engine: Engine, broker: Broker | None) -> None:
        self.engine = engine
        self.broker = broker
        self._seen: dict[tuple[str, int], _Seen] = {}
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        return []  # no scrape at registration time

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("trainlab_store_up", "1 when the store answered this scrape.")
        try:
            with Session(self.engine) as session:
                totals = census.status_totals(session)
                deleted = retention.deleted_totals(session)
                running = census.running_progress(session)
        except Exception:  # the scrape must answer even when the database does not
            logger.exception("metrics: the store did not answer")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._experiments(totals, deleted)
        yield self._speeds(running)
        depth = self._broker_depth()
        if depth is not None:
            broker = GaugeMetricFamily(
                "trainlab_broker_queue_depth",
                "Run messages waiting in the broker's training queue (not yet taken).",
            )
            broker.add_metric([], depth)
            yield broker

    def _experiments(
        self, totals: dict[str, census.StatusTotal], deleted: dict[str, int]
    ) -> Iterator[Metric]:
        by_status = GaugeMetricFamily(
            "trainlab_experiments", "Experiments in the store by status.", labels=["status"]
        )
        for status, total in sorted(totals.items()):
            by_status.add_metric([status], total.experiments)
        yield by_status
        queue = GaugeMetricFamily("trainlab_queue_depth", "Queued experiments (the store's).")
        queue.add_metric([], totals[Status.queued.value].experiments)
        yield queue
        started = CounterMetricFamily(
            "trainlab_runs_started", "Run attempts started by workers (every claim counts)."
        )
        attempts = sum(t.attempts for t in totals.values())
        started.add_metric([], attempts + deleted.get("runs_started", 0))
        yield started
        finished = CounterMetricFamily(
            "trainlab_runs_finished",
            "Experiments that ended, by outcome (failed ones are outcome=failed).",
            labels=["outcome"],
        )
        for outcome in TERMINAL_VALUES:
            gone = deleted.get(f"runs_finished_{outcome}", 0)
            finished.add_metric([outcome], totals[outcome].experiments + gone)
        yield finished

    def _speeds(self, running: list[census.RunningProgress]) -> Metric:
        """Steps per second per worker: the step gained between this scrape's heartbeat and
        the one seen at the previous scrape; on the first sight of a run, its average since
        it started."""
        speeds = GaugeMetricFamily(
            "trainlab_worker_steps_per_second",
            "Optimizer steps per second of the runs each worker is training.",
            labels=["worker"],
        )
        per_worker: dict[str, float] = {}
        with self._lock:
            seen: dict[tuple[str, int], _Seen] = {}
            for run in running:
                if run.heartbeat_at is None:
                    continue
                key = (run.experiment_id, run.attempt)
                rate = self._rate(self._seen.get(key), run)
                seen[key] = _Seen(run.step, run.heartbeat_at, rate)
                worker = run.worker or "unknown"
                per_worker[worker] = per_worker.get(worker, 0.0) + rate
            self._seen = seen
        for worker, rate in sorted(per_worker.items()):
            speeds.add_metric([worker], rate)
        return speeds

    @staticmethod
    def _rate(before: _Seen | None, now: census.RunningProgress) -> float:
        assert now.heartbeat_at is not None
        if before is not None:
            elapsed = (now.heartbeat_at - before.heartbeat_at).total_seconds()
            if elapsed <= 0:
                return before.rate  # no beat since the last scrape: keep the last figure
            return max(now.step - before.step, 0) / elapsed
        if now.started_at is None:
            return 0.0
        elapsed = (now.heartbeat_at - now.started_at).total_seconds()
        return now.step / elapsed if elapsed > 0 else 0.0

    def _broker_depth(self) -> int | None:
        if self.broker is None:
            return None
        try:
            with self.broker.celery.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=1)
                declared: Any = connection.default_channel.queue_declare(
                    queue=TRAINING_QUEUE, passive=False, durable=True, auto_delete=False
                )
                return int(declared.message_count)
        except Exception as exc:  # a broker that is down leaves the figure out, not the scrape
            logger.warning("metrics: broker queue depth unavailable: %s", exc)
            return None


class AppMetrics:
    """The app's registry and the figures counted in this process."""

    def __init__(self, engine: Engine, broker: Broker | None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(engine, broker))
        self.reaper_actions = Counter(
            "trainlab_reaper_actions",
            "What this API process's reaper did: requeued, failed or cancelled lost runs, and "
            "sent messages the broker never got.",
            ["action"],
            registry=self.registry,
        )
        for action in REAPER_ACTIONS:
            self.reaper_actions.labels(action)  # present at 0 from the start
        self.request_seconds = Histogram(
            "trainlab_http_request_duration_seconds",
            "HTTP request latency by route template (the path with {parameters}), until the "
            "response ends (an event stream counts for as long as it stays open).",
            ["method", "route", "status"],
            registry=self.registry,
        )

    def record_reap(self, report: ReapReportLike) -> None:
        for action in REAPER_ACTIONS:
            done = len(getattr(report, action))
            if done:
                self.reaper_actions.labels(action).inc(done)
