"""Fair scheduling at claim time, on SQLite and Postgres: two accounts' queues are served
alternately, whoever queued first, and a silent run still resumes through its own message."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, update

from core.presets import build_spec
from core.spec import ExperimentSpec
from core.store import experiments, runs
from core.store.models import Status
from core.store.scheduling import claim_next
from core.store.session import session_scope
from core.store.tables import EXPERIMENTS
from tests.core.store.helpers import backdate, read

_C = EXPERIMENTS.c
SPEC = build_spec("seed-adam", {"epochs": 1, "train_limit": 100, "test_limit": 10})


def _queue(engine: Engine, owner: str | None, count: int) -> list[str]:
    with session_scope(engine) as session:
        return [
            experiments.create_experiment(session, SPEC, owner=owner)[0].id for _ in range(count)
        ]


def _next(engine: Engine, hint: str = "x" * 32) -> tuple[str, int] | None:
    with session_scope(engine) as session:
        return claim_next(session, hint, worker="w:1", stale_after_s=60)


def _finish(engine: Engine, experiment_id: str, attempt: int) -> None:
    with session_scope(engine) as session:
        assert runs.finish(session, experiment_id, attempt, status=Status.succeeded)


def test_two_members_fifty_runs_each_are_served_alternately(engine: Engine) -> None:
    alice = _queue(engine, "alice", 50)
    _queue(engine, "bob", 50)  # queued after all of alice's
    owners = []
    while (picked := _next(engine, alice[0])) is not None:
        experiment_id, attempt = picked
        owners.append("alice" if experiment_id in alice else "bob")
        _finish(engine, experiment_id, attempt)
    assert owners == ["alice", "bob"] * 50
    # Within an account, oldest first.
    with session_scope(engine) as session:
        started = {e: experiments.require_experiment(session, e).started_at for e in alice}
    assert [started[e] for e in alice] == sorted(started[e] for e in alice)


def test_busy_workers_split_between_accounts(engine: Engine) -> None:
    _queue(engine, "alice", 5)
    _queue(engine, "bob", 5)
    _queue(engine, None, 1)  # an open server's run is an account of its own
    picks = [_next(engine) for _ in range(3)]
    owners = sorted(str(read(engine, p[0]).owner) for p in picks if p)
    assert owners == ["None", "alice", "bob"]


def test_cancelled_runs_are_skipped_and_an_empty_queue_gives_nothing(engine: Engine) -> None:
    (only,) = _queue(engine, "alice", 1)
    with session_scope(engine) as session:
        experiments.request_cancel(session, only)
    assert _next(engine) is None


def test_a_silent_runs_own_message_resumes_it(engine: Engine) -> None:
    silent, waiting = _queue(engine, "alice", 2)
    first = _next(engine, silent)
    assert first is not None and first[0] == silent
    # A second message for a run that is alive stands for another queued run.
    other = _next(engine, silent)
    assert other is not None and other[0] == waiting
    with session_scope(engine) as session:
        assert runs.finish(session, waiting, other[1], status=Status.succeeded)
    backdate(engine, silent, heartbeat_s=600)
    # The worker died; its message comes back: the run resumes, rather than another starting.
    resumed = _next(engine, silent)
    assert resumed == (silent, 2)


def test_siblings_are_the_same_accounts_runs_of_the_same_structure(engine: Engine) -> None:
    from core.store.scheduling import claim_siblings

    def queue(owner: str | None, **overrides: object) -> str:
        spec = build_spec("seed-adam", {"epochs": 1, "train_limit": 100, **overrides})
        with session_scope(engine) as session:
            return experiments.create_experiment(session, spec, owner=owner)[0].id

    head = queue("alice", seed=0)
    seeds = [queue("alice", seed=s) for s in (1, 2, 3)]
    lr = queue("alice", seed=4, lr=0.01)  # a per-run knob: fuses too
    other_shape = queue("alice", seed=5, model={"hidden": [100]})
    bobs = queue("bob", seed=6)
    cancelled = queue("alice", seed=7)
    with session_scope(engine) as session:
        experiments.request_cancel(session, cancelled)
    assert _next(engine, head) == (head, 1)
    with session_scope(engine) as session:
        taken = claim_siblings(session, head, worker="w:1", stale_after_s=60, most=3)
    assert [t[0] for t in taken] == seeds and {t[1] for t in taken} == {1}
    with session_scope(engine) as session:
        more = claim_siblings(session, head, worker="w:1", stale_after_s=60, most=10)
    assert [t[0] for t in more] == [lr]
    for untouched in (other_shape, bobs):
        assert read(engine, untouched).status == "queued"


def test_siblings_are_chosen_by_the_stored_group_key_not_by_validating_specs(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group_key column decides: a candidate whose key column differs is passed over
    although its spec is the same structure, one whose key matches is taken although its
    stored spec no longer validates, and no candidate's spec is validated."""
    from core.store.scheduling import claim_siblings

    head, same, rekeyed, broken = _queue(engine, "alice", 4)
    with session_scope(engine) as session:
        session.execute(update(EXPERIMENTS).where(_C.id == rekeyed).values(group_key="0" * 16))
        session.execute(update(EXPERIMENTS).where(_C.id == broken).values(spec={"epochs": -1}))
    assert _next(engine, head) == (head, 1)
    validated: list[object] = []
    original = ExperimentSpec.model_validate
    monkeypatch.setattr(
        ExperimentSpec,
        "model_validate",
        lambda *a, **k: validated.append(a) or original(*a, **k),
    )
    with session_scope(engine) as session:
        taken = claim_siblings(session, head, worker="w:1", stale_after_s=60, most=5)
    assert [t[0] for t in taken] == [same, broken]
    assert validated == []
    assert read(engine, rekeyed).status == "queued"


def test_a_head_without_a_group_key_trains_alone(engine: Engine) -> None:
    from core.store.scheduling import claim_siblings

    head, other = _queue(engine, None, 2)
    with session_scope(engine) as session:
        session.execute(update(EXPERIMENTS).where(_C.id.in_([head, other])).values(group_key=None))
    assert _next(engine, head) == (head, 1)
    with session_scope(engine) as session:
        assert claim_siblings(session, head, worker="w:1", stale_after_s=60, most=5) == []
