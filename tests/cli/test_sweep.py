"""`trainlab sweep --wait` against a real `trainlab serve` (its sweep driver running, no
worker): the test finishes the sweep's runs in the store as a worker would, and the command
follows the sweep to its end and prints the leaderboard, best first."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlmodel import Session

from core.store import sweeps as sweep_store
from core.store.session import make_engine
from tests.api.live_server import live_server
from tests.api.sweep_runs import finish_runs

SPACE = {"lr": {"type": "choice", "values": [0.5, 0.0001]}}
ACCURACY = {0.5: 0.8, 0.0001: 0.1}


def _finish_until(db: Path, stop: threading.Event) -> None:
    engine = make_engine(f"sqlite:///{db}")
    try:
        while not stop.wait(0.3):
            with Session(engine) as session:
                ids = sweep_store.active_sweep_ids(session)
            for sweep_id in ids:
                finish_runs(engine, sweep_id, ACCURACY)
    finally:
        engine.dispose()


@pytest.mark.timeout(120)
def test_sweep_wait_prints_the_leaderboard(tmp_path: Path) -> None:
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    with live_server(tmp_path) as server:
        stop = threading.Event()
        finisher = threading.Thread(
            target=_finish_until, args=(tmp_path / "state" / "trainlab.db", stop), daemon=True
        )
        finisher.start()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "cli", "sweep", "--preset", "seed-adam", "--space",
                 "space.json", "--seeds", "2", "--max-trials", "2", "--sampler", "grid",
                 "--pruner", "paired", "--prune-after", "2", "--parallel", "2",
                 "--validation-records", "100",
                 "--set", "train_limit=300", "--set", "test_limit=50", "--set", "epochs=1",
                 "--wait"],
                cwd=tmp_path, env=server.env, capture_output=True, text=True, timeout=90,
            )  # fmt: skip
        finally:
            stop.set()
            finisher.join(timeout=10)
    assert done.returncode == 0, done.stdout + done.stderr + server.log_text()
    lines = done.stdout.splitlines()
    assert lines[0].startswith("sweep ") and "2 trials x 2 seeds" in lines[0]
    header = lines[1].split()
    assert header[:4] == ["trial", "state", "pruned", "rung"]
    best, loser = lines[3], lines[4]
    assert "complete" in best and "lr=0.5" in best and "80.50 ±" in best
    assert "pruned" in loser and "lr=0.0001" in loser
    assert "succeeded, 2 trials" in lines[-1] and "validation figures" in lines[-1]
    assert "trials" in done.stderr  # the progress bar


def test_a_bad_space_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "space.json").write_text("[1, 2]")
    done = subprocess.run(
        [sys.executable, "-m", "cli", "sweep", "--preset", "seed-adam", "--space", "space.json",
         "--server", "http://127.0.0.1:9"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--space space.json" in done.stderr


def test_the_interval_is_the_mean_alone_without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client alone (`pip install trainlab`) has no scipy: the leaderboard shows means."""
    from scipy import stats

    from cli.sweep import _interval

    values = [0.80, 0.83, 0.84]
    mean, half = _interval(values)
    low, high = stats.t.interval(0.95, df=2, loc=mean, scale=stats.sem(values))
    assert mean == pytest.approx(sum(values) / 3) and half == pytest.approx((high - low) / 2)
    monkeypatch.setitem(sys.modules, "scipy", None)
    assert _interval(values) == (mean, None)
