"""`trainlab prune`, run as an operator runs it (a subprocess of the CLI on the store named by
TRAINLAB_DATABASE_URL), on both backends: a dry run changes nothing, a real one removes old
finished runs (not ablation members), compacts the rest and prints what it freed."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cli.maintenance import duration, statuses
from core.store import ablations
from core.store.models import Status
from core.store.session import session_scope
from tests.cli.test_local import trainlab
from tests.core.store.helpers import backdate, finish, running
from tests.core.store.test_retention import full_run, rows_of


def test_prune_old_runs(engine: Engine, database_url: str, tmp_path: Path) -> None:
    old_ok = full_run(engine)
    old_failed, attempt = running(engine, seed=1)
    assert finish(engine, old_failed, attempt, status=Status.failed, error="x")
    recent = full_run(engine, seed=2)
    member = full_run(engine, seed=3)
    for experiment_id in (old_ok, old_failed, member):
        backdate(engine, experiment_id, finished_s=45 * 86_400)
    with session_scope(engine) as session:
        ablations.add_ablation(
            session, name=None, design="grid", request={}, arms=[{}], seeds=[0],
            members=[(0, 0, member)],
        )  # fmt: skip
    env = {"TRAINLAB_DATABASE_URL": database_url}

    dry = trainlab("prune", "--older-than", "30d", "--dry-run", cwd=tmp_path, **env)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {old_ok}" in dry.stdout and f"would remove {old_failed}" in dry.stdout
    assert "kept 1 that an ablation counts as members" in dry.stdout
    assert rows_of(engine, old_ok)["experiments"] == 1  # nothing changed

    only_failed = trainlab(
        "prune",
        "--older-than",
        "30d",
        "--status",
        "failed",
        cwd=tmp_path,
        **env,
    )
    assert only_failed.returncode == 0, only_failed.stderr
    assert f"removed {old_failed}" in only_failed.stdout and old_ok not in only_failed.stdout
    assert rows_of(engine, old_failed)["experiments"] == 0
    # The retention pass ran too: the recent run lost its rows and checkpoint, not its curve.
    assert "3 series compacted, 3 checkpoints dropped" in only_failed.stdout
    counts = rows_of(engine, recent)
    assert counts["loss_points"] == counts["experiment_checkpoints"] == 0
    assert counts["experiment_series"] == counts["experiment_models"] == 1

    everything = trainlab("prune", "--older-than", "30d", cwd=tmp_path, **env)
    assert f"removed {old_ok}" in everything.stdout
    assert "freed 2.9 kB (2880 bytes)" in everything.stdout  # predictions, model, series
    assert rows_of(engine, member)["experiments"] == 1
    assert rows_of(engine, recent)["experiments"] == 1


def test_arguments_are_checked() -> None:
    assert duration("30d") == timedelta(days=30) and duration("12h") == timedelta(hours=12)
    assert statuses("failed,cancelled") == ["failed", "cancelled"]
    for bad in ("30", "d30", "3 days"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"e\.g\. 30d"):
            duration(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="only finished runs"):
        statuses("running")


def test_a_bad_age_is_refused_by_the_command(tmp_path: Path) -> None:
    done = trainlab("prune", "--older-than", "soon", cwd=tmp_path)
    assert done.returncode == 2 and "--older-than" in done.stderr
