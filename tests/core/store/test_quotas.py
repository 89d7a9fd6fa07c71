"""Per-key quotas at admission, on SQLite and Postgres: exact under concurrency, counted per
key, with the quota, limit, current use and a retry time when refused."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update

from core.keys import Role
from core.presets import build_spec
from core.store import experiments, keys, quotas
from core.store.clock import utcnow
from core.store.session import session_scope
from core.store.tables import EXPERIMENTS

SMALL = build_spec("seed-adam", {"epochs": 1, "train_limit": 1000, "test_limit": 100})
ROOMY = quotas.Quotas(active_experiments=1000, daily_cpu_hours=1e12, ablation_cells=200)


def _key(engine: Engine, name: str = "alice") -> str:
    with session_scope(engine) as session:
        key, _ = keys.create_key(session, name, Role.member)
        return key.id


def _admit(engine: Engine, key_id: str, limits: quotas.Quotas, cost: float = 1.0) -> str:
    with session_scope(engine) as session:
        quotas.lock_key(session, key_id)
        experiment, _ = experiments.create_experiment(session, SMALL, key_id=key_id, cost=cost)
        quotas.check(session, key_id, limits, new_experiments=1, new_cost=cost)
        return experiment.id


def test_twenty_concurrent_admissions_against_a_quota_of_five_admit_five(engine: Engine) -> None:
    key_id = _key(engine)
    limits = quotas.Quotas(active_experiments=5, daily_cpu_hours=1e12, ablation_cells=200)
    admitted: list[str] = []
    refused: list[quotas.QuotaExceeded] = []
    start = threading.Barrier(20)

    def submit() -> None:
        start.wait()
        try:
            admitted.append(_admit(engine, key_id, limits))
        except quotas.QuotaExceeded as exc:
            refused.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 5 and len(refused) == 15
    assert {(e.quota, e.limit, e.current) for e in refused} == {("active_experiments", 5, 5)}
    # Another key has its own quota.
    _admit(engine, _key(engine, "bob"), limits)


def test_finished_runs_free_the_active_quota(engine: Engine) -> None:
    key_id = _key(engine)
    limits = quotas.Quotas(active_experiments=1, daily_cpu_hours=1e12, ablation_cells=200)
    first = _admit(engine, key_id, limits)
    with pytest.raises(quotas.QuotaExceeded):
        _admit(engine, key_id, limits)
    with session_scope(engine) as session:
        experiments.request_cancel(session, first)
    _admit(engine, key_id, limits)


def test_daily_cpu_hours_counts_a_rolling_day_and_says_when_to_retry(engine: Engine) -> None:
    key_id = _key(engine)
    limits = quotas.Quotas(active_experiments=100, daily_cpu_hours=10.0, ablation_cells=200)
    old = _admit(engine, key_id, limits, cost=6.0)
    _admit(engine, key_id, limits, cost=3.0)
    with pytest.raises(quotas.QuotaExceeded) as refused:
        _admit(engine, key_id, limits, cost=2.0)
    assert (refused.value.quota, refused.value.limit, refused.value.current) == (
        "daily_cpu_hours",
        10.0,
        9.0,
    )
    # The 6-unit run was made 23 h ago: the request fits once it ages out, in about an hour.
    with session_scope(engine) as session:
        session.execute(
            update(EXPERIMENTS)
            .where(EXPERIMENTS.c.id == old)
            .values(created_at=utcnow() - timedelta(hours=23))
        )
    with pytest.raises(quotas.QuotaExceeded) as later:
        _admit(engine, key_id, limits, cost=2.0)
    assert 3500 <= later.value.retry_after_s <= 3600
    with session_scope(engine) as session:
        session.execute(
            update(EXPERIMENTS)
            .where(EXPERIMENTS.c.id == old)
            .values(created_at=utcnow() - timedelta(hours=25))
        )
    _admit(engine, key_id, limits, cost=2.0)


def test_ablation_size() -> None:
    quotas.check_ablation_size(ROOMY, 200)
    with pytest.raises(quotas.QuotaExceeded) as refused:
        quotas.check_ablation_size(ROOMY, 201)
    assert refused.value.quota == "ablation_cells"
