"""Deleting experiments and ablations in the store: every row and blob goes, unfinished runs
only when asked to cancel (then once they have ended), ablation members are refused, shared
members stay, and what deleted runs had added to the /metrics counters is kept."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import SQLModel

from core.presets import build_spec
from core.store import ablations, artifacts, pruning, retention, runs, series, series_points
from core.store.models import Status
from core.store.session import session_scope
from tests.core.store.helpers import SMALL, finish, predictions, queued, read, running, write_loss

PER_EXPERIMENT_TABLES = (
    "loss_points",
    "series_points",
    "experiment_series",
    "experiment_predictions",
    "experiment_checkpoints",
    "experiment_models",
)


def rows_of(engine: Engine, experiment_id: str) -> dict[str, int]:
    counts = {}
    with engine.connect() as connection:
        for name in PER_EXPERIMENT_TABLES:
            table = SQLModel.metadata.tables[name]
            counts[name] = connection.execute(
                select(func.count()).where(table.c.experiment_id == experiment_id)
            ).scalar_one()
        experiments = SQLModel.metadata.tables["experiments"]
        counts["experiments"] = connection.execute(
            select(func.count()).where(experiments.c.id == experiment_id)
        ).scalar_one()
    return counts


def full_run(engine: Engine, *, keep_checkpoint: bool = True, **overrides: object) -> str:
    """A succeeded run with every kind of row: points, series, predictions, checkpoint, model."""
    experiment_id, attempt = running(engine, **overrides)
    write_loss(engine, experiment_id, attempt, range(10, 110, 10), [0.5] * 10)
    with session_scope(engine) as session:
        assert artifacts.save_checkpoint(session, experiment_id, attempt, 100, b"c" * 5000)
        assert artifacts.save_model(
            session,
            experiment_id,
            attempt,
            step=100,
            data=b"m" * 700,
            keep_checkpoint=keep_checkpoint,
        )
    assert finish(engine, experiment_id, attempt, with_predictions=predictions(50))
    return experiment_id


def test_a_finished_experiment_goes_with_every_row_and_blob(engine: Engine) -> None:
    experiment_id = full_run(engine)
    other = full_run(engine, seed=1)
    assert rows_of(engine, experiment_id) == {
        "loss_points": 10,
        "series_points": 0,
        "experiment_series": 1,
        "experiment_predictions": 1,
        "experiment_checkpoints": 1,
        "experiment_models": 1,
        "experiments": 1,
    }
    with session_scope(engine) as session:
        outcome = retention.delete_experiment(session, experiment_id, cancel=False)
    # 10 points * 12 + series 10 * 8 + predictions 50 * 42 + checkpoint + model.
    assert outcome.deleted and outcome.freed_bytes == 120 + 80 + 50 * 42 + 5000 + 700
    assert set(rows_of(engine, experiment_id).values()) == {0}
    assert rows_of(engine, other)["experiment_models"] == 1  # only that one went


def test_named_series_points_go_with_their_experiment(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    with session_scope(engine) as session:
        series_points.append_loss(
            session, experiment_id, attempt, [10, 20], [1.0, 2.0], "generator"
        )
    with session_scope(engine) as session:
        assert runs.fail(session, experiment_id, "gave up")  # ended, never packed
    with session_scope(engine) as session:
        outcome = retention.delete_experiment(session, experiment_id, cancel=False)
    assert outcome.deleted and outcome.freed_bytes == 2 * 12
    assert set(rows_of(engine, experiment_id).values()) == {0}


def test_an_unfinished_experiment_is_refused_unless_cancel_is_asked(engine: Engine) -> None:
    waiting = queued(engine)
    busy, _ = running(engine, seed=1)
    for experiment_id in (waiting, busy):
        with (
            session_scope(engine) as session,
            pytest.raises(retention.StillRunning, match="cancel=true"),
        ):
            retention.delete_experiment(session, experiment_id, cancel=False)
    # Queued: cancelled and removed at once.
    with session_scope(engine) as session:
        assert retention.delete_experiment(session, waiting, cancel=True).deleted
    assert rows_of(engine, waiting)["experiments"] == 0
    # Running: asked to stop, removed once it has ended (the retention pass).
    with session_scope(engine) as session:
        outcome = retention.delete_experiment(session, busy, cancel=True)
    assert not outcome.deleted
    flagged = read(engine, busy)
    assert flagged.cancel_requested and flagged.delete_requested and flagged.status == "running"
    with session_scope(engine) as session:
        assert not pruning.sweep(session, keep_checkpoints=False).deleted  # not ended yet
    assert finish(engine, busy, flagged.attempt, status=Status.cancelled)
    with session_scope(engine) as session:
        assert pruning.sweep(session, keep_checkpoints=False).deleted == [busy]
    assert rows_of(engine, busy)["experiments"] == 0


def _ablation(engine: Engine, experiment_ids: list[str], name: str = "a") -> str:
    with session_scope(engine) as session:
        ablation = ablations.add_ablation(
            session,
            name=name,
            design="grid",
            request={},
            arms=[{"index": i} for i in range(len(experiment_ids))],
            seeds=[0],
            members=[(i, 0, e) for i, e in enumerate(experiment_ids)],
        )
        return ablation.id


def test_a_member_of_an_ablation_is_refused_naming_it(engine: Engine) -> None:
    experiment_id = full_run(engine)
    ablation_id = _ablation(engine, [experiment_id])
    with (
        session_scope(engine) as session,
        pytest.raises(retention.InAblations, match=ablation_id) as refused,
    ):
        retention.delete_experiment(session, experiment_id, cancel=False)
    assert refused.value.ablation_ids == [ablation_id]
    assert rows_of(engine, experiment_id)["experiments"] == 1


def test_deleting_an_ablation_keeps_shared_members_and_cancels_when_asked(
    engine: Engine,
) -> None:
    own_done = full_run(engine)
    shared = full_run(engine, seed=1)
    own_running, attempt = running(engine, seed=2)
    ablation_id = _ablation(engine, [own_done, shared, own_running])
    other_ablation = _ablation(engine, [shared], name="b")
    with (
        session_scope(engine) as session,
        pytest.raises(retention.StillRunning, match="1 unfinished"),
    ):
        retention.delete_ablation(session, ablation_id, cancel=False)
    with session_scope(engine) as session:
        outcome = retention.delete_ablation(session, ablation_id, cancel=True)
    assert outcome.deleted == [own_done]
    assert outcome.pending == [own_running]
    assert outcome.kept_shared == [shared]
    assert outcome.freed_bytes > 0
    with session_scope(engine) as session:
        assert ablations.get_ablation(session, ablation_id) is None
        assert ablations.get_ablation(session, other_ablation) is not None
    assert rows_of(engine, shared)["experiments"] == 1
    assert read(engine, own_running).cancel_requested
    # A new ablation asking for the same spec does not take up the run being cancelled.
    with session_scope(engine) as session:
        spec = build_spec("seed-adam", SMALL | {"seed": 2})
        assert ablations.find_reusable(session, spec, None) is None
    assert finish(engine, own_running, attempt, status=Status.cancelled)
    with session_scope(engine) as session:
        assert pruning.sweep(session, keep_checkpoints=False).deleted == [own_running]


def test_counters_of_deleted_runs_are_kept(engine: Engine) -> None:
    done = full_run(engine)
    failed_id, _ = running(engine, seed=1)
    with session_scope(engine) as session:
        assert runs.fail(session, failed_id, "boom")
        retention.remove_experiments(session, [done, failed_id])
    with session_scope(engine) as session:
        totals = retention.deleted_totals(session)
    assert totals == {"runs_started": 2, "runs_finished_succeeded": 1, "runs_finished_failed": 1}
    # A second deletion adds to the same rows.
    again = full_run(engine, seed=3)
    with session_scope(engine) as session:
        retention.remove_experiments(session, [again])
    with session_scope(engine) as session:
        assert retention.deleted_totals(session)["runs_finished_succeeded"] == 2


def test_the_deleted_series_is_no_longer_served_from_this_process_cache(engine: Engine) -> None:
    experiment_id = full_run(engine)
    with session_scope(engine) as session:
        assert series.read_finished_series(session, experiment_id) is not None
        assert artifacts.read_predictions(session, experiment_id) is not None
    assert series.cached_finished_series(engine, experiment_id) is not None
    with session_scope(engine) as session:
        retention.delete_experiment(session, experiment_id, cancel=False)
    assert series.cached_finished_series(engine, experiment_id) is None
    with session_scope(engine) as session:
        assert artifacts.read_predictions(session, experiment_id) is None
