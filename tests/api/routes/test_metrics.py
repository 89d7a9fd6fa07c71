"""GET /metrics on both backends: figures read from the store at scrape time (statuses, queue
depths, runs started and finished, kept across deletions, steps per second per worker), the
reaper's actions counted as its passes run, and HTTP latency labelled by route template."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, update

from api.app import create_app, reaper_hook
from api.services.metrics import StoreCollector
from core.settings import Settings
from core.store.clock import utcnow
from core.store.models import Status
from core.store.session import session_scope
from core.store.tables import EXPERIMENTS
from tests.api.app_client import AppClient, app_client
from tests.api.conftest import BrokerMessageReader
from tests.core.store.helpers import backdate, finish, queued, running
from tests.core.store.test_retention import full_run

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: AppClient) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    found: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_store_figures_and_counters_that_survive_deletion(
    client: AppClient, engine: Engine
) -> None:
    queued(engine)
    queued(engine, seed=1)
    running(engine, seed=2)
    done = full_run(engine, seed=3)
    failed_id, attempt = running(engine, seed=4)
    assert finish(engine, failed_id, attempt, status=Status.failed, error="x")

    before = scrape(client)
    assert value(before, "trainlab_store_up") == 1
    assert value(before, "trainlab_experiments", status="queued") == 2
    assert value(before, "trainlab_experiments", status="cancelled") == 0
    assert value(before, "trainlab_queue_depth") == 2
    assert value(before, "trainlab_runs_started_total") == 3
    assert value(before, "trainlab_runs_finished_total", outcome="succeeded") == 1
    assert value(before, "trainlab_runs_finished_total", outcome="failed") == 1

    assert client.request("DELETE", f"/experiments/{done}").status_code == 200
    after = scrape(client)
    assert value(after, "trainlab_experiments", status="succeeded") == 0
    assert value(after, "trainlab_runs_started_total") == 3
    assert value(after, "trainlab_runs_finished_total", outcome="succeeded") == 1


def test_broker_depth_counts_the_messages_waiting(
    client: AppClient, broker_messages: BrokerMessageReader
) -> None:
    for seed in range(2):
        submitted = client.post(
            "/experiments", json={"preset": "seed-baseline", "overrides": {"seed": seed}}
        )
        assert submitted.status_code == 201
    depth = value(scrape(client), "trainlab_broker_queue_depth")
    assert depth == len(broker_messages.all()) >= 2


def _beat(engine: Engine, experiment_id: str, step: int, at: datetime) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(EXPERIMENTS)
            .where(EXPERIMENTS.c.id == experiment_id)
            .values(step=step, heartbeat_at=at)
        )


def test_steps_per_second_per_worker_between_scrapes(client: AppClient, engine: Engine) -> None:
    one, _ = running(engine)
    two, _ = running(engine, seed=1)  # the same worker ("test:1") trains both
    then = utcnow() - timedelta(seconds=10)
    _beat(engine, one, 100, then)
    _beat(engine, two, 0, then)
    scrape(client)
    later = then + timedelta(seconds=2)
    _beat(engine, one, 300, later)  # 200 steps in 2 s
    _beat(engine, two, 50, later)  # 50 steps in 2 s
    speeds = scrape(client)
    assert value(speeds, "trainlab_worker_steps_per_second", worker="test:1") == 125.0
    # No heartbeat since: the last figure stands.
    again = scrape(client)
    assert value(again, "trainlab_worker_steps_per_second", worker="test:1") == 125.0


def test_request_latency_is_labelled_by_route_template(client: AppClient, engine: Engine) -> None:
    for _ in range(2):
        client.get(f"/experiments/{queued(engine)}")
    client.get("/experiments/no-such-id")
    client.get("/no/such/path")
    samples = scrape(client)
    name = "trainlab_http_request_duration_seconds_count"
    route = "/experiments/{experiment_id}"
    assert value(samples, name, method="GET", route=route, status="200") == 2
    assert value(samples, name, method="GET", route=route, status="404") == 1
    assert value(samples, name, method="GET", route="<unmatched>", status="404") == 1
    assert not any("no-such-id" in str(labels) for _, labels in samples)


@pytest.fixture
def reaping_client(settings: Settings) -> Iterator[AppClient]:
    fast = settings.model_copy(update={"reaper_interval_s": 0.05, "heartbeat_timeout_s": 1.0})
    with app_client(create_app(fast, lifespan_hooks=[reaper_hook])) as api:
        yield api


def test_reaper_actions_are_counted_as_its_passes_run(
    reaping_client: AppClient, engine: Engine
) -> None:
    lost, _ = running(engine)
    backdate(engine, lost, heartbeat_s=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        samples = scrape(reaping_client)
        if value(samples, "trainlab_reaper_actions_total", action="requeued") >= 1:
            break
        time.sleep(0.05)
    assert value(samples, "trainlab_reaper_actions_total", action="requeued") == 1
    assert value(samples, "trainlab_reaper_actions_total", action="sent") >= 1
    assert value(samples, "trainlab_reaper_actions_total", action="failed") == 0


def test_a_store_that_does_not_answer_is_reported_not_raised(tmp_path: object) -> None:
    unreachable = create_engine("sqlite:////nonexistent-dir/trainlab.db")
    families = list(StoreCollector(unreachable, broker=None).collect())
    assert [f.name for f in families] == ["trainlab_store_up"]
    assert families[0].samples[0].value == 0
