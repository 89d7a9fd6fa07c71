"""The sweep driver (api/background/sweeps.py), its passes run by the test and its runs
finished in the store as a worker would finish them (tests/api/sweep_runs.py), on SQLite and
Postgres: every decision it stores can be decided again from the store alone, whoever reported
later; a driver that loses its lease in the middle of a pass stops there, leaving the sweep
whole to the process that took it over; a sweep ends only once all its runs have; and its
trials are its owner's runs, waiting for the owner's quota and judged while they wait."""

from __future__ import annotations

import copy
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from api.app import create_app
from api.background.sweeps import SweepDriver
from core.keys import Role
from core.settings import Settings
from core.store import keys
from core.store import sweeps as sweep_store
from core.store.clock import utcnow
from core.store.models import Experiment
from core.store.session import session_scope
from core.sweeps import paired
from core.sweeps.study_cache import StudyCache
from tests.api.app_client import AppClient, app_client
from tests.api.sweep_runs import Sent, finish_runs
from tests.core.sweeps.decisions import assert_decisions_reproduce

BASE: dict[str, Any] = {
    "preset": "seed-baseline",
    "overrides": {"train_limit": 500, "test_limit": 100, "epochs": 1, "batch_size": 10},
    "validation_records": 200,
    "sampler": "grid",
    "seeds": 2,
    # A prune among the two or three trials these tests run (the default waits for six).
    "prune_after": 2,
}
ACCURACY = {0.5: 0.8, 0.0001: 0.1, 0.01: 0.5}
PAUSE_S = 2.0  # long enough for b's whole pass when nothing holds it up


def _sweep(
    client: AppClient, lrs: list[float], headers: dict[str, str] | None = None, **body: Any
) -> str:
    space = {"lr": {"type": "choice", "values": lrs}}
    created = client.post("/sweeps", json={**BASE, "space": space, **body}, headers=headers)
    assert created.status_code == 201, created.text
    sweep_id: str = created.json()["id"]
    return sweep_id


def test_decisions_are_decided_again_from_the_store(
    client: AppClient, engine: Engine, settings: Settings
) -> None:
    # One trial at a time: the first is judged before the second has any figure.
    sweep_id = _sweep(client, [0.5, 0.0001], max_trials=2, parallel=1)
    driver = SweepDriver(engine, Sent(), settings)  # type: ignore[arg-type]
    for _ in range(2):
        driver.drive(sweep_id)
        finish_runs(engine, sweep_id, ACCURACY)
        driver.drive(sweep_id)
    view = client.get(f"/sweeps/{sweep_id}").json()
    assert view["status"] == "succeeded" and len(view["trials"]) == 2
    first, second = view["trials"]
    # Two keeps of the first; the second is pruned at its first rung or kept at both.
    assert len(second["decisions"]) == (1 if second["state"] == "pruned" else 2)
    assert assert_decisions_reproduce(view) == 2 + len(second["decisions"])
    assert [d["rivals"] for d in first["decisions"]] == [[], []]
    assert second["decisions"][0]["rivals"] == [0]
    # The second trial's figures are in the store now: deciding the first's rungs against
    # every trial there is would not give what was decided then.
    mine = {r["seed"]: r["rungs"][0]["validation_accuracy"] for r in first["runs"]}
    later = {r["seed"]: r["rungs"][0]["validation_accuracy"] for r in second["runs"]}
    against_all = paired.decide(mine, {1: later}, looks=2).as_dict()
    assert {"rung": 0, **against_all} != first["decisions"][0]
    # And a figure changed after the fact is found.
    tampered = copy.deepcopy(view)
    tampered["trials"][1]["runs"][0]["rungs"][0]["validation_accuracy"] += 1e-9
    with pytest.raises(AssertionError):
        assert_decisions_reproduce(tampered)


def _take_over(engine: Engine, other: SweepDriver, sweep_id: str) -> None:
    """What happens while the first driver is paused past its lease: its lease runs out (set
    so here) and `other` drives a whole pass."""
    with Session(engine) as session:
        sweep = sweep_store.require_sweep(session, sweep_id)
        sweep.lease_until = utcnow() - timedelta(seconds=1)
        session.add(sweep)
        session.commit()
    other.drive(sweep_id)


def test_a_driver_paused_mid_pass_past_its_lease_never_writes_over_the_next(
    client: AppClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Driver a stalls between two trials of one pass (in Optuna's ask) while b, in another
    thread, takes the sweep over. Whatever the order they then run in, the sweep has each
    trial once, each run sent once, and a ends its pass without an error."""
    sweep_id = _sweep(client, [0.5, 0.0001, 0.01], max_trials=3, parallel=3)
    sent_a, sent_b = Sent(), Sent()
    a = SweepDriver(engine, sent_a, settings)  # type: ignore[arg-type]
    b = SweepDriver(engine, sent_b, settings)  # type: ignore[arg-type]
    a.lease.me, b.lease.me = "a", "b"
    real_ask = StudyCache.ask
    asks: list[threading.Thread] = []

    def ask(self: StudyCache, sweep: str, space: Any, records: list[Any], **kwargs: Any) -> Any:
        if (
            threading.current_thread() is threading.main_thread()
            and len(asks) == 0
            and len(records) == 1  # a's second ask, its first trial committed
        ):
            other = threading.Thread(target=_take_over, args=(engine, b, sweep_id))
            asks.append(other)
            other.start()
            # b finishes, or waits for a's transaction: a goes on either way.
            other.join(timeout=PAUSE_S)
        return real_ask(self, sweep, space, records, **kwargs)

    monkeypatch.setattr(StudyCache, "ask", ask)
    a.drive(sweep_id)
    asks[0].join(timeout=60)
    assert not asks[0].is_alive()
    with Session(engine) as session:
        trials = sweep_store.trials(session, sweep_id)
        runs = sweep_store.runs_with_experiments(session, sweep_id)
    assert [t.number for t in trials] == [0, 1, 2]
    experiment_ids = sorted(e.id for members in runs.values() for _, e in members)
    assert len(set(experiment_ids)) == 6
    assert len(client.get("/experiments", params={"limit": 50}).json()["items"]) == 6
    # Each run went out once, from the process that committed it.
    assert sorted(sent_a.ids + sent_b.ids) == experiment_ids
    finish_runs(engine, sweep_id, ACCURACY)
    for _ in range(2):
        a.drive(sweep_id)
        b.drive(sweep_id)
    view = client.get(f"/sweeps/{sweep_id}").json()
    assert view["status"] == "succeeded" and len(view["trials"]) == 3
    assert_decisions_reproduce(view)


def test_a_sweep_ends_only_once_its_pruned_trials_runs_have_stopped(
    client: AppClient, engine: Engine, settings: Settings
) -> None:
    sweep_id = _sweep(client, [0.5, 0.0001], max_trials=2, parallel=2)
    driver = SweepDriver(engine, Sent(), settings)  # type: ignore[arg-type]
    driver.drive(sweep_id)
    finish_runs(engine, sweep_id, ACCURACY)
    with Session(engine) as session:
        # The loser's runs still train (their rungs reported so far) when it is judged.
        losing = [e for _, e in _runs_of(session, sweep_id, 0.0001)]
        for experiment in losing:
            experiment.status, experiment.step = "running", 17
            session.add(experiment)
        session.commit()
        losing_ids = [e.id for e in losing]
    driver.drive(sweep_id)
    view = client.get(f"/sweeps/{sweep_id}").json()
    states = sorted(t["state"] for t in view["trials"])
    assert states == ["complete", "pruned"] and view["status"] == "running"
    assert all(client.get(f"/experiments/{i}").json()["cancel_requested"] for i in losing_ids)
    with Session(engine) as session:
        for _, experiment in _runs_of(session, sweep_id, 0.0001):
            experiment.status = "cancelled"  # as the worker ends a run asked to stop
            session.add(experiment)
        session.commit()
    driver.drive(sweep_id)
    assert client.get(f"/sweeps/{sweep_id}").json()["status"] == "succeeded"


def _runs_of(session: Session, sweep_id: str, lr: float) -> list[tuple[Any, Experiment]]:
    runs = sweep_store.runs_with_experiments(session, sweep_id)
    return [(r, e) for members in runs.values() for r, e in members if e.spec["lr"] == lr]


def test_trials_are_the_owners_runs_and_wait_for_its_quota(
    settings: Settings, engine: Engine
) -> None:
    """Three active runs a key: the second trial's two runs wait until the first's end; the
    sweep says so while it waits, and no longer once it goes on."""
    limited = settings.model_copy(update={"auth": "required", "quota_active_experiments": 3})
    with session_scope(engine) as session:
        _, token = keys.create_key(session, "ann", Role.member)
    ann = {"Authorization": f"Bearer {token}"}
    with app_client(create_app(limited, lifespan_hooks=[])) as client:
        sweep_id = _sweep(client, [0.5, 0.0001], ann, max_trials=2, parallel=2)
        driver = SweepDriver(engine, Sent(), limited)  # type: ignore[arg-type]
        driver.drive(sweep_id)
        view = client.get(f"/sweeps/{sweep_id}", headers=ann).json()
        assert len(view["trials"]) == 1 and view["note"].startswith("waiting: ")
        runs = client.get("/experiments", params={"tag": sweep_id}, headers=ann).json()["items"]
        assert len(runs) == 2 and all(r["owner"] == "ann" for r in runs)
        assert all(set(r["tags"]) == {"sweep", sweep_id} for r in runs)
        finish_runs(engine, sweep_id, ACCURACY)
        driver.drive(sweep_id)
        view = client.get(f"/sweeps/{sweep_id}", headers=ann).json()
        assert len(view["trials"]) == 2 and view["note"] is None, view["note"]
        finish_runs(engine, sweep_id, ACCURACY)
        driver.drive(sweep_id)
        assert client.get(f"/sweeps/{sweep_id}", headers=ann).json()["status"] == "succeeded"


def test_a_sweep_waiting_for_its_quota_still_judges_its_trials(
    settings: Settings, engine: Engine
) -> None:
    """The pass's judgements stand even when the trial it asks next waits for the quota: the
    loser is pruned and its runs asked to stop, which is what frees the quota."""
    limited = settings.model_copy(update={"auth": "required", "quota_active_experiments": 4})
    with session_scope(engine) as session:
        _, token = keys.create_key(session, "ann", Role.member)
    ann = {"Authorization": f"Bearer {token}"}
    with app_client(create_app(limited, lifespan_hooks=[])) as client:
        sweep_id = _sweep(client, [0.5, 0.0001, 0.01], ann, max_trials=3, parallel=3)
        driver = SweepDriver(engine, Sent(), limited)  # type: ignore[arg-type]
        driver.drive(sweep_id)  # two trials; the third waits
        finish_runs(engine, sweep_id, ACCURACY)
        with Session(engine) as session:
            for members in sweep_store.runs_with_experiments(session, sweep_id).values():
                for _, experiment in members:  # rungs reported, still training
                    experiment.status, experiment.step = "running", 17
                    session.add(experiment)
            session.commit()
        driver.drive(sweep_id)
        view = client.get(f"/sweeps/{sweep_id}", headers=ann).json()
        assert len(view["trials"]) == 2 and view["note"].startswith("waiting: ")
        pruned = [t for t in view["trials"] if t["state"] == "pruned"]
        assert len(pruned) == 1, view["trials"]
        for run in pruned[0]["runs"]:
            got = client.get(f"/experiments/{run['experiment_id']}", headers=ann).json()
            assert got["cancel_requested"], got
