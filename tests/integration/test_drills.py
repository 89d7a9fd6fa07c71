"""Fault drills: real `trainlab serve` and `trainlab worker` processes on a PostgreSQL server and
a Redis server of the drill's own, which the drill kills and restarts. See drills.py for what
each asserts (all succeeded, attempts as the fault allows, series exact) and the figures it
prints. Each runs with tuned intervals (tests/integration/stack.py: heartbeat timeout 4 s,
reaper pass every 1 s, lost messages sent again after 3 s); those whose recovery rests on a
timing setting run again with every setting at its shipped default (`[defaults]`), as an
operator runs them, and must recover within RECOVERY_GOAL_S there too. The drills whose
recovery needs no timing setting (Postgres restarted, a connection killed) and the fused-group
kill (the same reaper path as a single run's) run tuned only."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.broker import Broker
from tests.conftest import make_settings, require_mnist
from tests.integration.drills import (
    assert_all_succeeded_exact,
    drill_body,
    report,
    wait_until,
)
from tests.integration.services import (
    DrillPostgres,
    DrillRedis,
    drill_postgres,
    drill_redis,
    kill_insert_into,
)
from tests.integration.stack import Stack, start_embedded, start_services_stack

pytestmark = [pytest.mark.integration, pytest.mark.drill]

StackFactory = Callable[..., Stack]
# Every accepted run moves again (claimed, resumed, or its message sent again) this soon after
# any single fault, at the shipped defaults.
RECOVERY_GOAL_S = 30.0
BOTH = pytest.mark.parametrize("timings", ["tuned", "defaults"], indirect=True)


@pytest.fixture(params=["tuned"])
def timings(request: pytest.FixtureRequest) -> str:
    """ "tuned" (short intervals) or "defaults" (every timing setting as shipped)."""
    value: str = request.param
    return value


def recovered(drill: str, timings: str, within: float, **figures: float | str) -> None:
    """Print the drill's figures and hold it to the goal."""
    report(f"{drill} [{timings}]", recovered=within, **figures)
    assert within <= RECOVERY_GOAL_S, f"{drill} [{timings}]: {within:.1f}s to recover"


@pytest.fixture(scope="module")
def pg() -> Iterator[DrillPostgres]:
    with drill_postgres() as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[DrillRedis]:
    with drill_redis() as server:
        yield server


@pytest.fixture
def drill_stack(
    pg: DrillPostgres, redis_server: DrillRedis, tmp_path: Path, timings: str
) -> Iterator[StackFactory]:
    """make(workers=1) -> a production stack on a fresh database of the drill's Postgres and
    on the drill's Redis."""
    require_mnist()
    stacks: list[Stack] = []

    def make(workers: int = 1) -> Stack:
        url = pg.create_database(f"drill_{uuid.uuid4().hex[:8]}")
        stack = start_services_stack(
            tmp_path,
            database_url=url,
            broker_url=redis_server.url,
            workers=workers,
            tuned=timings == "tuned",
        )
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


def _running_past(stack: Stack, experiment_id: str, step: int) -> dict[str, Any]:
    return stack.wait_for(
        experiment_id, lambda e: e["status"] == "running" and e["progress"]["step"] > step
    )


@BOTH
def test_kill_9_of_a_worker_mid_run(drill_stack: StackFactory, timings: str) -> None:
    stack = drill_stack()
    body = drill_body(seed=1, train_limit=12000)
    created = stack.submit(body)
    _running_past(stack, created["id"], 4000)  # a checkpoint (every 1 s) is stored by then
    fault = time.monotonic()
    stack.kill(stack.workers[0], signal.SIGKILL)
    stack.start_worker()
    resumed = wait_until(
        "the second attempt", lambda: stack.get(created["id"])["attempt"] == 2, timeout=120
    )
    # Exactly one more claim: the lost worker's attempt, then the resumed one.
    assert_all_succeeded_exact(stack, [(created, body)], attempts=lambda e: e["attempt"] == 2)
    finished = time.monotonic() - fault
    recovered("kill -9 worker mid-run", timings, resumed - fault, finished=finished)


@BOTH
def test_redis_restarted_without_persistence_with_runs_queued(
    drill_stack: StackFactory, redis_server: DrillRedis, pg: DrillPostgres, timings: str
) -> None:
    stack = drill_stack()
    # The waiting runs differ from the first in structure (test_limit is no per-run knob), so
    # a worker slow to claim the first can't take them with it as one fused group. The first
    # is long enough to be seen running at the default flush interval (1 s) before it ends.
    first, waiting = drill_body(seed=1, train_limit=24000), drill_body(seed=2, test_limit=400)
    runs = [(stack.submit(first), first)] + [(stack.submit(waiting), waiting) for _ in range(3)]
    _running_past(stack, runs[0][0]["id"], 300)
    assert all(stack.get(c["id"])["status"] == "queued" for c, _ in runs[1:])
    waiting_ids = [created["id"] for created, _ in runs[1:]]
    database = stack.env["TRAINLAB_DATABASE_URL"].rsplit("/", 1)[1]
    sent_at = "SELECT id, dispatched_at FROM experiments WHERE id = ANY(%s)"
    with pg.connect(database) as watcher:
        first_sent = {row[0]: row[1] for row in watcher.execute(sent_at, [waiting_ids])}
    before = redis_server.client().info()["run_id"]
    fault = time.monotonic()
    redis_server.restart()  # every message gone: the running one's and the three waiting
    assert redis_server.client().info()["run_id"] != before  # a new server, started empty
    with pg.connect(database) as watcher:
        # Recovered once every waiting run's message is on the broker again.
        resent = wait_until(
            "every waiting run sent again",
            lambda: all(
                first_sent[run] != at
                for run, at in watcher.execute(sent_at, [waiting_ids]).fetchall()
            ),
            timeout=120,
        )
    next_claimed = wait_until(
        "a waiting run to start",
        lambda: stack.get(runs[1][0]["id"])["status"] != "queued",
        timeout=120,
    )
    assert_all_succeeded_exact(stack, runs)  # attempt 1 each: none ran twice
    assert "broker holds no message" in stack.full_logs()
    worker_log = (stack.workdir / "worker0.log").read_text(errors="replace")
    assert "Traceback" not in worker_log, worker_log[-4000:]  # a reconnect, not a crash
    recovered(
        "Redis restarted empty",
        timings,
        resent - fault,
        first_waiting_run_started=next_claimed - fault,
        all_four_finished=time.monotonic() - fault,
    )


@BOTH
def test_worker_killed_between_taking_the_message_and_claiming(
    drill_stack: StackFactory, pg: DrillPostgres, timings: str
) -> None:
    stack = drill_stack(workers=0)
    body = drill_body(seed=3)
    created = stack.submit(body)
    database = stack.env["TRAINLAB_DATABASE_URL"].rsplit("/", 1)[1]
    with pg.connect(database) as watcher, pg.connect(database) as holder:
        # The message goes out just after the answer: on the broker (and stamped) first.
        query = "SELECT dispatched_at IS NOT NULL FROM experiments WHERE id = %s"
        wait_until(
            "the message sent",
            lambda: watcher.execute(query, [created["id"]]).fetchone() == (True,),
        )
        # Hold the experiment's row: the worker's claim (one UPDATE) waits on it.
        holder.autocommit = False
        holder.execute("SELECT id FROM experiments WHERE id = %s FOR UPDATE", [created["id"]])
        worker = stack.start_worker()
        wait_until(
            "the worker to take the message and try to claim",
            lambda: (
                watcher.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE 'UPDATE experiments%%'"
                ).fetchone()
                is not None
            ),
        )
        fault = time.monotonic()
        stack.kill(worker, signal.SIGKILL)
        holder.rollback()
    assert stack.get(created["id"])["status"] == "queued"  # never claimed
    stack.start_worker()
    claimed = wait_until(
        "the run to be claimed", lambda: stack.get(created["id"])["status"] != "queued"
    )
    assert_all_succeeded_exact(stack, [(created, body)])
    assert "broker holds no message" in stack.full_logs()  # sent again by the reaper
    recovered("worker killed between take and claim (Redis)", timings, claimed - fault)


@BOTH
def test_embedded_worker_killed_between_taking_the_message_and_claiming(
    tmp_path: Path, timings: str
) -> None:
    """The SQLite broker never hands a taken message out again: only the store can tell."""
    require_mnist()
    stack = start_embedded(
        tmp_path, settings={"TRAINLAB_EMBEDDED_WORKER": "false"}, tuned=timings == "tuned"
    )
    try:
        body = drill_body(seed=3)
        created = stack.submit(body)
        broker = sqlite3.connect(tmp_path / "state" / "broker.db")
        holder = sqlite3.connect(tmp_path / "state" / "trainlab.db", isolation_level=None)
        # The message goes out just after the answer: on the broker (and stamped) first.
        query = "SELECT dispatched_at IS NOT NULL FROM experiments WHERE id = ?"
        wait_until(
            "the message sent",
            lambda: holder.execute(query, [created["id"]]).fetchone() == (1,),
        )
        holder.execute("BEGIN IMMEDIATE")  # the store's write lock: the claim waits on it
        worker = stack.start_worker()
        wait_until(
            "the worker to take the message",
            lambda: (
                broker.execute("SELECT count(*) FROM kombu_message WHERE visible = 1").fetchone()[0]
                == 0
            ),
        )
        time.sleep(1.0)  # into the claim, waiting on the lock
        fault = time.monotonic()
        stack.kill(worker, signal.SIGKILL)
        holder.execute("ROLLBACK")
        holder.close()
        broker.close()
        assert stack.get(created["id"])["status"] == "queued"
        stack.start_worker()
        claimed = wait_until(
            "the run to be claimed", lambda: stack.get(created["id"])["status"] != "queued"
        )
        assert_all_succeeded_exact(stack, [(created, body)])
        assert "broker holds no message" in stack.full_logs()  # sent again by the reaper
        recovered("worker killed between take and claim (SQLite broker)", timings, claimed - fault)
    finally:
        stack.stop()


def test_postgres_restarted_mid_run(drill_stack: StackFactory, pg: DrillPostgres) -> None:
    stack = drill_stack()
    # Long enough to be seen running (progress comes with each flush) well before it ends:
    # the default 6,000 steps now train in about a second, and a poll could miss them all.
    body = drill_body(seed=4, train_limit=20000)
    created = stack.submit(body)
    at_fault = _running_past(stack, created["id"], 1000)["progress"]["step"]
    fault = time.monotonic()
    pg.stop("fast")
    time.sleep(6)  # longer than the heartbeat timeout (4 s): the reaper must not take it
    pg.start()
    back = time.monotonic()
    stack.wait_ready()
    going_on = wait_until(
        "the run to go on",
        lambda: stack.get(created["id"])["progress"]["step"] > at_fault,
    )
    # Paused and went on: the same attempt, never requeued, never failed.
    assert_all_succeeded_exact(stack, [(created, body)])
    report(
        "Postgres restarted mid-run (down 6 s)",
        going_on_after_back=going_on - back,
        going_on_after_fault=going_on - fault,
    )


def test_one_connection_killed_mid_insert(drill_stack: StackFactory, pg: DrillPostgres) -> None:
    stack = drill_stack(workers=0)
    url = stack.env["TRAINLAB_DATABASE_URL"]
    stack.start_worker(TRAINLAB_DATABASE_URL=f"{url}?application_name=trainlab-worker")
    body = drill_body(seed=5, train_limit=20000)  # still inserting when the lock is taken
    created = stack.submit(body)
    database = url.rsplit("/", 1)[1]
    conninfo = f"postgresql://postgres@127.0.0.1:{pg.port}/{database}"
    kill_insert_into(conninfo, "loss_points", application_name="trainlab-worker")
    fault = time.monotonic()
    at_fault = stack.get(created["id"])["progress"]["step"]
    going_on = wait_until(
        "the run to go on", lambda: stack.get(created["id"])["progress"]["step"] > at_fault
    )
    assert_all_succeeded_exact(stack, [(created, body)])  # attempt 1: it never stopped
    report("one connection killed mid-insert", going_on=going_on - fault)


@BOTH
def test_api_kill_9_with_posts_in_flight_and_keyed_retries(
    drill_stack: StackFactory, pg: DrillPostgres, timings: str
) -> None:
    stack = drill_stack()
    bodies = [drill_body(seed=s, train_limit=1000) for s in (6, 7)]
    keys = [[f"drill-{uuid.uuid4().hex[:8]}-{t}-{k}" for k in range(4)] for t in range(4)]
    answered: dict[str, tuple[str, float]] = {}
    failures: list[BaseException] = []

    def post_all(thread_keys: list[str], thread: int) -> None:
        try:
            with httpx.Client(base_url=stack.base_url, timeout=10.0) as client:
                for number, key in enumerate(thread_keys):
                    body = bodies[(thread + number) % 2]
                    answered[key] = (_post_until_answered(client, body, key), time.monotonic())
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=post_all, args=(k, t), daemon=True) for t, k in enumerate(keys)
    ]
    for thread in threads:
        thread.start()
    wait_until("a few answers", lambda: len(answered) >= 3, timeout=60)
    fault = time.monotonic()
    assert stack.api is not None
    stack.kill(stack.api, signal.SIGKILL)  # POSTs are in flight: some committed, some not
    stack.start_api()
    stack.wait_ready()
    back = time.monotonic()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    all_keys = [key for thread_keys in keys for key in thread_keys]
    assert sorted(answered) == sorted(all_keys)
    ids = {experiment_id for experiment_id, _ in answered.values()}
    assert len(ids) == len(all_keys)  # one experiment per key, however often it was sent
    with stack.client() as client:
        listed = client.get("/experiments", params={"limit": 200}).json()["items"]
    assert {item["id"] for item in listed} == ids  # and no stray experiment either
    database = stack.env["TRAINLAB_DATABASE_URL"].rsplit("/", 1)[1]
    unsent = "SELECT count(*) FROM experiments WHERE status = 'queued' AND dispatched_at IS NULL"
    with pg.connect(database) as watcher:
        # Recovered once every answered run has its message on the broker (the ones answered
        # just before the kill were committed, not yet sent: the reaper sends them).
        all_sent = wait_until(
            "every answered run sent", lambda: watcher.execute(unsent).fetchone() == (0,)
        )
    runs = []
    for poster, thread_keys in enumerate(keys):
        for number, key in enumerate(thread_keys):
            runs.append(({"id": answered[key][0]}, bodies[(poster + number) % 2]))
    assert_all_succeeded_exact(stack, runs)
    recovered(
        "API kill -9 with POSTs in flight",
        timings,
        all_sent - fault,
        api_back=back - fault,
        every_key_answered=max(t for _, t in answered.values()) - fault,
        all_finished=time.monotonic() - fault,
    )


def _post_until_answered(client: httpx.Client, body: dict[str, Any], key: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            response = client.post("/experiments", json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:  # the API is down or died mid-request: same key again
            time.sleep(0.1)
            continue
        if response.status_code in (200, 201):
            experiment_id: str = response.json()["id"]
            return experiment_id
        assert response.status_code >= 500, response.text
        time.sleep(0.1)
    raise AssertionError(f"{key} never answered")


def test_kill_9_of_a_worker_mid_group(drill_stack: StackFactory) -> None:
    """Three seeds of one structure train as one fused group; the worker dies mid-run. Each
    member is requeued on its own and resumes from its own checkpoint (fused again or not),
    ending with the series it has alone."""
    stack = drill_stack(workers=0)
    bodies = [drill_body(seed=s, train_limit=12000) for s in (11, 12, 13)]
    runs = [(stack.submit(body), body) for body in bodies]
    stack.start_worker()
    group = [_running_past(stack, created["id"], 3000) for created, _ in runs]
    # One worker runs all three at once: the same process holds them.
    assert len({e["worker"] for e in group}) == 1
    fault = time.monotonic()
    stack.kill(stack.workers[0], signal.SIGKILL)
    stack.start_worker()
    resumed = wait_until(
        "every member's second attempt",
        lambda: all(stack.get(c["id"])["attempt"] == 2 for c, _ in runs),
        timeout=120,
    )
    assert_all_succeeded_exact(stack, runs, attempts=lambda e: e["attempt"] == 2)
    report("kill -9 worker mid-group", resumed=resumed - fault, finished=time.monotonic() - fault)


def test_every_queued_run_sent_twice_runs_once(
    drill_stack: StackFactory, redis_server: DrillRedis
) -> None:
    """A resend that turns out unneeded is harmless: every queued run gets a second message,
    two workers take them all, and each run is still claimed once, with its exact series; the
    spare messages find nothing to claim and are dropped."""
    stack = drill_stack(workers=0)
    bodies = [drill_body(seed=s, train_limit=1000) for s in (21, 22, 23, 24)]
    runs = [(stack.submit(body), body) for body in bodies]
    for created, _ in runs:
        stack.wait_for(created["id"], lambda e: e["status"] == "queued")
    broker = Broker(make_settings(broker_url=redis_server.url))
    try:
        wait_until(
            "every first message sent",
            lambda: len(broker.held_runs(delivered_within_s=60) or ()) == 4,
        )
        for created, _ in runs:
            broker.send_run(created["id"])  # the second message, as an unneeded resend
        stack.start_worker()
        stack.start_worker()
        assert_all_succeeded_exact(stack, runs)  # attempt 1 each: none ran twice
        # The four spare messages were taken and dropped: nothing left on the broker.
        wait_until(
            "the spare messages consumed",
            lambda: broker.held_runs(delivered_within_s=3600) == set(),
        )
    finally:
        broker.close()
