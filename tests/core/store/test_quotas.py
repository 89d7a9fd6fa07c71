"""Per-key quotas at admission, on SQLite and Postgres: exact under concurrency, counted per
key, with the quota, limit, current use and a retry time when refused."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update

from core.cost import estimate
from core.keys import Role
from core.presets import build_spec
from core.store import experiments, keys, quotas, retention
from core.store.clock import utcnow
from core.store.session import session_scope

SMALL = build_spec("seed-adam", {"epochs": 1, "train_limit": 1000, "test_limit": 100})
TERA = 1 << 40
ROOMY = quotas.Quotas(
    active_experiments=1000, daily_cpu_hours=1e12, ablation_cells=200, stored_bytes=TERA
)


def _key(engine: Engine, name: str = "alice") -> str:
    with session_scope(engine) as session:
        key, _ = keys.create_key(session, name, Role.member)
        return key.id


def _admit(
    engine: Engine, key_id: str, limits: quotas.Quotas, cost: float = 1.0, account: str = "alice"
) -> str:
    with session_scope(engine) as session:
        quotas.lock_key(session, key_id, account)
        experiment, _ = experiments.create_experiment(
            session, SMALL, key_id=key_id, owner=account, cost=cost
        )
        quotas.check(
            session,
            key_id,
            limits,
            new_experiments=1,
            new_cost=cost,
            account=account,
            new_stored_bytes=experiment.stored_bytes,
        )
        return experiment.id


def _age_spend(engine: Engine, key_id: str, cpu_hours: float, age: timedelta) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(quotas.SPEND)
            .where(quotas.SPEND.c.key_id == key_id, quotas.SPEND.c.cpu_hours == cpu_hours)
            .values(spent_at=utcnow() - age)
        )


def test_twenty_concurrent_admissions_against_a_quota_of_five_admit_five(engine: Engine) -> None:
    key_id = _key(engine)
    limits = quotas.Quotas(
        active_experiments=5, daily_cpu_hours=1e12, ablation_cells=200, stored_bytes=TERA
    )
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
    limits = quotas.Quotas(
        active_experiments=1, daily_cpu_hours=1e12, ablation_cells=200, stored_bytes=TERA
    )
    first = _admit(engine, key_id, limits)
    with pytest.raises(quotas.QuotaExceeded):
        _admit(engine, key_id, limits)
    with session_scope(engine) as session:
        experiments.request_cancel(session, first)
    _admit(engine, key_id, limits)


def test_daily_cpu_hours_counts_a_rolling_day_and_says_when_to_retry(engine: Engine) -> None:
    key_id = _key(engine)
    limits = quotas.Quotas(
        active_experiments=100, daily_cpu_hours=10.0, ablation_cells=200, stored_bytes=TERA
    )
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
    _age_spend(engine, key_id, 6.0, timedelta(hours=23))
    with pytest.raises(quotas.QuotaExceeded) as later:
        _admit(engine, key_id, limits, cost=2.0)
    assert 3500 <= later.value.retry_after_s <= 3600
    _age_spend(engine, key_id, 6.0, timedelta(hours=25))
    _admit(engine, key_id, limits, cost=2.0)
    assert old


def test_deleting_runs_does_not_give_their_cpu_hours_back(engine: Engine) -> None:
    key_id = _key(engine)
    limits = quotas.Quotas(
        active_experiments=100, daily_cpu_hours=10.0, ablation_cells=200, stored_bytes=TERA
    )
    spent = [_admit(engine, key_id, limits, cost=4.0) for _ in range(2)]
    for experiment_id in spent:
        with session_scope(engine) as session:
            experiments.request_cancel(session, experiment_id)
        with session_scope(engine) as session:
            retention.remove_experiments(session, [experiment_id])
    # The 8 CPU-hours stay counted for their day although both runs are gone.
    with pytest.raises(quotas.QuotaExceeded) as refused:
        _admit(engine, key_id, limits, cost=4.0)
    assert (refused.value.quota, refused.value.current) == ("daily_cpu_hours", 8.0)
    _admit(engine, key_id, limits, cost=2.0)


def test_stored_bytes_are_counted_per_account_and_freed_by_deleting(engine: Engine) -> None:
    per_run = estimate(SMALL).stored_bytes
    limits = quotas.Quotas(
        active_experiments=100, daily_cpu_hours=1e12, ablation_cells=200, stored_bytes=3 * per_run
    )
    first, second = _key(engine, "carol"), _key(engine, "carol")
    made = [_admit(engine, key, limits, account="carol") for key in (first, second, first)]
    # A second key of the same account shares its storage.
    with pytest.raises(quotas.QuotaExceeded) as refused:
        _admit(engine, second, limits, account="carol")
    assert (refused.value.quota, refused.value.limit, refused.value.current) == (
        "stored_bytes",
        3 * per_run,
        3 * per_run,
    )
    assert "account carol" in str(refused.value)
    with session_scope(engine) as session:
        assert quotas.stored_bytes(session, "carol") == 3 * per_run
    _admit(engine, _key(engine, "dave"), limits, account="dave")  # another account's own
    with session_scope(engine) as session:
        experiments.request_cancel(session, made[0])
    with session_scope(engine) as session:
        retention.remove_experiments(session, [made[0]])
    _admit(engine, second, limits, account="carol")


def test_two_keys_of_one_account_admit_exactly_its_storage(engine: Engine) -> None:
    per_run = estimate(SMALL).stored_bytes
    limits = quotas.Quotas(
        active_experiments=100, daily_cpu_hours=1e12, ablation_cells=200, stored_bytes=4 * per_run
    )
    key_ids = [_key(engine, "erin"), _key(engine, "erin")]
    admitted: list[str] = []
    refused: list[quotas.QuotaExceeded] = []
    start = threading.Barrier(12)

    def submit(key_id: str) -> None:
        start.wait()
        try:
            admitted.append(_admit(engine, key_id, limits, account="erin"))
        except quotas.QuotaExceeded as exc:
            refused.append(exc)

    threads = [threading.Thread(target=submit, args=(key_ids[i % 2],)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 4 and len(refused) == 8
    assert {e.quota for e in refused} == {"stored_bytes"}


def test_ablation_size() -> None:
    quotas.check_ablation_size(ROOMY, 200)
    with pytest.raises(quotas.QuotaExceeded) as refused:
        quotas.check_ablation_size(ROOMY, 201)
    assert refused.value.quota == "ablation_cells"
