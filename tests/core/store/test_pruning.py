"""The retention pass and prune candidates: ended runs lose their per-point rows (the packed
series still answers, also for a run the reaper failed, which was never packed) and their
checkpoints unless kept; final weights are stored by the current attempt only."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from core.store import ablations, artifacts, pruning, retention, runs, series, series_points
from core.store.clock import utcnow
from core.store.models import Status
from core.store.session import session_scope
from tests.core.store.helpers import backdate, finish, running, write_loss
from tests.core.store.test_retention import full_run, rows_of


def test_final_weights_are_stored_by_the_current_attempt_only(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    with session_scope(engine) as session:
        artifacts.save_checkpoint(session, experiment_id, attempt, 5, b"ckpt")
        assert not artifacts.save_model(
            session, experiment_id, attempt + 1, step=5, data=b"w", keep_checkpoint=False
        )
    assert rows_of(engine, experiment_id)["experiment_models"] == 0
    with session_scope(engine) as session:
        assert artifacts.save_model(
            session, experiment_id, attempt, step=5, data=b"weights", keep_checkpoint=False
        )
    with session_scope(engine) as session:
        info = artifacts.model_info(session, experiment_id)
        assert info is not None and (info.step, info.size) == (5, 7)
        assert info.sha256 == hashlib.sha256(b"weights").hexdigest()
        assert artifacts.read_model(session, experiment_id) == b"weights"
        assert artifacts.get_checkpoint(session, experiment_id) is None  # dropped with it


def test_a_run_without_a_usable_model_stores_none(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    with session_scope(engine) as session:
        artifacts.save_checkpoint(session, experiment_id, attempt, 0, b"ckpt")
        assert artifacts.save_model(
            session, experiment_id, attempt, step=0, data=None, keep_checkpoint=True
        )
    with session_scope(engine) as session:
        assert artifacts.model_info(session, experiment_id) is None
        assert artifacts.get_checkpoint(session, experiment_id) is not None  # kept, as asked


def test_the_sweep_compacts_ended_runs_and_their_curves_still_read(engine: Engine) -> None:
    done = full_run(engine)
    live, live_attempt = running(engine, seed=1)
    write_loss(engine, live, live_attempt, [10, 20], [0.3, 0.2])
    lost, lost_attempt = running(engine, seed=2)
    write_loss(engine, lost, lost_attempt, [10, 20, 30], [0.9, 0.8, 0.7])
    with session_scope(engine) as session:
        artifacts.save_checkpoint(session, lost, lost_attempt, 30, b"x" * 100)
        assert runs.fail(session, lost, "gave up")  # as the reaper does: no packing
    with session_scope(engine) as session:
        report = pruning.sweep(session, keep_checkpoints=False)
    assert sorted(report.compacted) == sorted([done, lost])
    assert sorted(report.checkpoints_dropped) == sorted([done, lost])
    assert report.freed_bytes == (10 + 3) * 12 + 5000 + 100
    for experiment_id in (done, lost):
        counts = rows_of(engine, experiment_id)
        assert counts["loss_points"] == 0 and counts["experiment_checkpoints"] == 0
        assert counts["experiment_series"] == 1
    assert rows_of(engine, done)["experiment_models"] == 1  # the weights stay
    with session_scope(engine) as session:
        steps, values = series.read_series(session, lost)
        assert steps.tolist() == [10, 20, 30]
        assert values.tolist() == [0.8999999761581421, 0.800000011920929, 0.699999988079071]
        live_steps, _ = series.read_series(session, live)
        assert live_steps.tolist() == [10, 20]  # a running run keeps its rows
    with session_scope(engine) as session:
        assert not pruning.sweep(session, keep_checkpoints=False)  # nothing left to do


def test_the_sweep_compacts_named_series_too(engine: Engine) -> None:
    """A kind with several series (a GAN's, at the same steps) keeps them in series_points:
    compacted, counted and read back as the classifier's one series is."""
    lost, attempt = running(engine)
    with session_scope(engine) as session:
        for name, value in (("discriminator", 0.5), ("generator", 2.0)):
            series_points.append_loss(session, lost, attempt, [10, 20], [value, value], name)
    with session_scope(engine) as session:
        assert runs.fail(session, lost, "gave up")
    assert rows_of(engine, lost)["series_points"] == 4
    report = pruning.sweep_until_done(engine, keep_checkpoints=False)
    assert report.compacted == [lost] and report.freed_bytes == 4 * 12
    assert rows_of(engine, lost)["series_points"] == 0
    with session_scope(engine) as session:
        steps, values = series.read_series(session, lost, series="generator")
        assert (steps.tolist(), values.tolist()) == ([10, 20], [2.0, 2.0])
        assert series.read_series(session, lost)[0].tolist() == []  # no classifier series


def test_checkpoints_stay_when_kept(engine: Engine) -> None:
    done = full_run(engine)
    report = pruning.sweep_until_done(engine, keep_checkpoints=True)
    assert report.compacted == [done] and report.checkpoints_dropped == []
    assert rows_of(engine, done)["experiment_checkpoints"] == 1


def test_a_dry_run_reports_and_changes_nothing(engine: Engine) -> None:
    done = full_run(engine)
    before = rows_of(engine, done)
    report = pruning.sweep_until_done(engine, keep_checkpoints=False, dry_run=True)
    assert report.compacted == [done] and report.checkpoints_dropped == [done]
    assert rows_of(engine, done) == before


def test_prune_candidates_by_age_outcome_and_membership(engine: Engine) -> None:
    old_ok = full_run(engine)
    old_failed, attempt = running(engine, seed=1)
    assert finish(engine, old_failed, attempt, status=Status.failed, error="x")
    recent = full_run(engine, seed=2)
    member = full_run(engine, seed=3)
    for experiment_id in (old_ok, old_failed, member):
        backdate(engine, experiment_id, finished_s=40 * 86_400)
    backdate(engine, recent, finished_s=3 * 86_400)
    with session_scope(engine) as session:
        ablations.add_ablation(
            session,
            name=None,
            design="grid",
            request={},
            arms=[{}],
            seeds=[0],
            members=[(0, 0, member)],
        )
    cutoff = utcnow() - timedelta(days=30)
    with session_scope(engine) as session:
        found, kept = pruning.prune_candidates(
            session, finished_before=cutoff, statuses=["succeeded", "failed", "cancelled"]
        )
        assert {c.experiment_id for c in found} == {old_ok, old_failed} and kept == 1
        only_failed, _ = pruning.prune_candidates(
            session, finished_before=cutoff, statuses=["failed"]
        )
        assert [c.experiment_id for c in only_failed] == [old_failed]


def test_a_run_deleted_after_the_pass_listed_it_is_left_alone(engine: Engine) -> None:
    """A DELETE through another API process commits between the pass's listing and its
    compaction of that run (the soak caught it): the pass skips the run instead of packing a
    series for an experiment that is gone, which broke the foreign key and the whole pass."""
    done = full_run(engine)
    with session_scope(engine) as sweeping:
        with session_scope(engine) as deleting:
            assert retention.delete_experiment(deleting, done, cancel=False).deleted
        assert not pruning._compact(sweeping, done)
    assert rows_of(engine, done) == dict.fromkeys(rows_of(engine, done), 0)


def test_a_run_being_deleted_is_skipped_without_waiting(engine: Engine) -> None:
    """The deletion holds the run's row (not yet committed) while the pass lists it: the pass
    passes it by (PostgreSQL's SKIP LOCKED) instead of waiting on it, and once the deletion has
    committed nothing of it is left to compact."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: a deletion in progress holds the pass off")
    done = full_run(engine)
    other = full_run(engine, seed=1)
    with session_scope(engine) as deleting:
        assert retention.delete_experiment(deleting, done, cancel=False).deleted
        with session_scope(engine) as sweeping:
            sweeping.execute(text("SET LOCAL lock_timeout = '5s'"))  # never hang the suite
            report = pruning.sweep(sweeping, keep_checkpoints=True)
        assert report.compacted == [other]
    assert rows_of(engine, done)["experiments"] == 0
    assert not pruning.sweep_until_done(engine, keep_checkpoints=True)
