"""Upgrade drill: this release replaces the previous one (tests/migrations/previous_release.py)
while runs train, in the order README's "Operations" gives: migrate, start the new API and
workers, stop the old ones.

The previous release, from its own commit (tests/integration/previous_release.py), migrates an
empty store to its head and serves, with two workers training a long run each and two runs
queued behind them. This release's migrations are applied while those workers train, and they
go on training; the old API still reads the migrated store and takes a run on it (the
migrations only expand). This release's API and two workers start and a run is submitted
through the new API; then the old workers stop, one by SIGTERM (it hands its run back), the
other by kill -9 (the reaper requeues its run), and the old API by SIGTERM. Every run,
whichever release took or trained it, must end succeeded with the exact series of an
uninterrupted run (drills.py), and be claimed exactly once more per interruption: a hand-back
is one more attempt, counted in `handbacks`; a kill one more attempt.
"""

from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.store.migrate import head_revision
from tests.conftest import REPO, free_port, require_mnist
from tests.integration.drills import (
    assert_all_succeeded_exact,
    drill_body,
    reference_series,
    report,
    wait_until,
)
from tests.integration.previous_release import (
    PACKAGES,
    imported_from,
    previous_release_stack,
    previous_release_tree,
)
from tests.integration.services import DrillPostgres, drill_postgres, drill_redis
from tests.integration.stack import FAST_SETTINGS, TRAINLAB, Stack, clean_env
from tests.migrations.previous_release import PREVIOUS_RELEASE, PREVIOUS_RELEASE_HEAD
from worker.shutdown import descendants

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis, pytest.mark.drill]

DATABASE = "upgrade"
# Long enough to train through the migration and the new processes' start, so that each old
# worker still holds its run when it stops (on the 2-core test machine they were about half
# done then).
LONG = drill_body(seed=1, epochs=2, train_limit=30000)
# test_limit is no per-run knob: these never join a long run's fused group.
BODIES = {
    "r1": LONG,
    "r2": LONG,
    **{f"r{s}": drill_body(seed=s, test_limit=400) for s in (3, 4, 5, 6)},
}


def _env(workdir: Path, services: dict[str, str]) -> tuple[str, dict[str, str]]:
    port = free_port()
    settings = {"TRAINLAB_PORT": str(port), "TRAINLAB_STATE_DIR": str(workdir / "state")}
    return f"http://127.0.0.1:{port}", clean_env({**FAST_SETTINGS, **services, **settings})


def _pid(experiment: dict[str, Any]) -> int:
    """The pool process that holds (or last held) a run: its `worker` is host:pid."""
    return int(str(experiment["worker"]).rsplit(":", 1)[1])


@dataclass
class Upgrade:
    old: Stack
    new: Stack
    pg: DrillPostgres
    tree: Path
    ids: dict[str, str] = field(default_factory=dict)
    figures: dict[str, float | str] = field(default_factory=dict)
    old_read: dict[str, Any] = field(default_factory=dict)  # r1's /loss from the old API
    handed_back: str = ""
    killed: str = ""

    def migrate(self, stack: Stack) -> float:
        """`trainlab migrate` of the stack's release; how long it took."""
        start = time.monotonic()
        done = subprocess.run(
            [*TRAINLAB, "migrate"],
            cwd=stack.workdir,
            env=stack.env,
            capture_output=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
        return time.monotonic() - start

    def revision(self) -> str:
        with self.pg.connect(DATABASE) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        assert row is not None
        return str(row[0])

    def claims(self) -> dict[str, tuple[int, int]]:
        """experiment id -> (attempt, handbacks), from the store."""
        with self.pg.connect(DATABASE) as db:
            rows = db.execute("SELECT id, attempt, handbacks FROM experiments").fetchall()
        return {str(row[0]): (int(row[1]), int(row[2])) for row in rows}

    def run(self) -> None:
        old, new = self.old, self.new
        # Each release imports its own packages: the same interpreter, another path.
        assert sorted(imported_from(old)) == sorted(PACKAGES)
        assert all(Path(f).is_relative_to(self.tree) for f in imported_from(old).values())
        assert all(Path(f).is_relative_to(REPO) for f in imported_from(new).values())
        self.migrate(old)
        assert self.revision() == PREVIOUS_RELEASE_HEAD, f"{PREVIOUS_RELEASE}'s head"
        old.start_api()
        old_workers = [old.start_worker(), old.start_worker()]
        old.wait_ready()
        self.previous_release_training()

        self.figures["migrate"] = self.migrate(new)
        assert self.revision() == head_revision()
        self.previous_release_on_the_migrated_store()

        start = time.monotonic()
        new.start_api()
        new_workers = [new.start_worker(), new.start_worker()]
        new.wait_ready()
        self.figures["new_ready"] = time.monotonic() - start
        self.ids["r5"] = new.submit(BODIES["r5"])["id"]
        new_pids = {pid for w in new_workers for pid in (w.pid, *descendants(w.pid))}

        self.stop_previous_release(old_workers)
        start = time.monotonic()
        finished = {name: new.wait_terminal(self.ids[name]) for name in BODIES}
        self.figures["all_finished"] = time.monotonic() - start
        for name in ("r1", "r2"):  # the interrupted runs ended on this release's workers
            assert _pid(finished[name]) in new_pids, finished[name]["worker"]
        # Neither release's processes met an error on the other's data (a reaper pass or a
        # write that failed would show here, even where it cost no run).
        for stack in (old, new):
            assert "Traceback" not in stack.full_logs(), stack.logs()

    def previous_release_training(self) -> None:
        """r1 and r2 training, one on each old worker; r3 and r4 queued behind them."""
        old = self.old
        self.ids["r1"] = old.submit(BODIES["r1"])["id"]
        # Training, so its worker has claimed its group: r2, the same spec, can't join it.
        first = old.wait_for(self.ids["r1"], lambda e: e["progress"]["step"] > 0)
        self.ids["r2"] = old.submit(BODIES["r2"])["id"]  # the other worker: the first is busy
        second = old.wait_for(self.ids["r2"], lambda e: e["progress"]["step"] > 1000)
        assert first["worker"] != second["worker"], (first, second)
        for name in ("r3", "r4"):
            self.ids[name] = old.submit(BODIES[name])["id"]
        assert all(old.get(self.ids[n])["status"] == "queued" for n in ("r3", "r4"))
        # The old pool processes ran the old tree's job code (they wrote its bytecode there).
        assert list((self.tree / "worker" / "__pycache__").glob("fused_job.*.pyc"))

    def previous_release_on_the_migrated_store(self) -> None:
        """The old workers go on training; the old API reads and takes a run."""
        old, long_runs = self.old, [self.ids["r1"], self.ids["r2"]]
        at = {run: old.get(run)["progress"]["step"] for run in long_runs}
        for run in long_runs:
            old.wait_for(
                run,
                lambda e, r=run: e["status"] != "running" or e["progress"]["step"] > at[r] + 1000,
            )
            assert old.get(run)["status"] == "running", old.logs()
        with old.client() as client:
            loss = client.get(f"/experiments/{self.ids['r1']}/loss")
            assert loss.status_code == 200, loss.text
            self.old_read = loss.json()
            listed = client.get("/experiments", params={"limit": 50})
            assert listed.status_code == 200, listed.text
            assert {item["id"] for item in listed.json()["items"]} == set(self.ids.values())
            # Its readiness names the head its own code knows: it is the old code.
            ready = client.get("/readyz")
            assert f"needs {PREVIOUS_RELEASE_HEAD}" in ready.text, ready.text
        self.ids["r6"] = old.submit(BODIES["r6"])["id"]

    def stop_previous_release(self, workers: list[subprocess.Popen[bytes]]) -> None:
        """SIGTERM to the worker that holds r1, kill -9 of the one that holds r2, SIGTERM to
        the old API."""
        old, new, r1, r2 = self.old, self.new, self.ids["r1"], self.ids["r2"]
        holding = {run: old.get(run) for run in (r1, r2)}
        for run, experiment in holding.items():
            assert experiment["status"] == "running", f"{run} ended before its worker stopped"
        done = max(e["progress"]["fraction"] for e in holding.values())
        self.figures["long_runs_done_at_stop"] = f"{done:.0%}"
        tree = {w.pid: {w.pid, *descendants(w.pid)} for w in workers}
        graceful = next(w for w in workers if _pid(holding[r1]) in tree[w.pid])
        lost = next(w for w in workers if w is not graceful)
        assert _pid(holding[r2]) in tree[lost.pid]

        start = time.monotonic()
        graceful.send_signal(signal.SIGTERM)
        graceful.wait(timeout=60)
        self.figures["graceful_exit"] = time.monotonic() - start
        resumed = wait_until(
            "r1 resumed by a new worker",
            lambda: (e := new.get(r1))["attempt"] == 2 and e["status"] != "queued",
        )
        self.figures["handed_back_resumed"] = resumed - start

        start = time.monotonic()
        old.kill(lost, signal.SIGKILL)
        requeued = wait_until("r2 requeued", lambda: new.get(r2)["status"] != "running")
        self.figures["killed_requeued"] = requeued - start
        assert old.api is not None
        old.api.send_signal(signal.SIGTERM)
        old.api.wait(timeout=60)
        self.handed_back, self.killed = r1, r2


def test_upgrade_with_runs_in_flight(tmp_path: Path) -> None:
    require_mnist()
    began = time.monotonic()
    tree = previous_release_tree(tmp_path / "previous")
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    with (
        ThreadPoolExecutor(1) as pool,
        drill_postgres() as pg,
        drill_redis() as redis_server,
    ):
        # The uninterrupted series, computed meanwhile in this process (drills.py).
        references = pool.submit(lambda: [reference_series(b) for b in BODIES.values()])
        services = {
            "TRAINLAB_DATABASE_URL": pg.create_database(DATABASE),
            "TRAINLAB_BROKER_URL": redis_server.url,
        }
        old = previous_release_stack(tree, *_env(tree, services))
        new = Stack(*_env(new_dir, services), workdir=new_dir)
        drill = Upgrade(old, new, pg, tree)
        try:
            try:
                drill.run()
            except BaseException:
                print(f"previous release:\n{old.logs()}\nthis release:\n{new.logs()}")
                raise
            references.result()
            # One more claim per interruption and none more: a hand-back (counted as one) and
            # a lost attempt; every other run claimed once, by whichever release.
            expected = {run: (1, 0) for run in drill.ids.values()}
            expected[drill.handed_back], expected[drill.killed] = (2, 1), (2, 0)
            assert drill.claims() == expected
            runs = [({"id": drill.ids[name]}, body) for name, body in BODIES.items()]
            assert_all_succeeded_exact(new, runs, attempts=lambda e: e["attempt"] >= 1)
            # What the old API read on the migrated store is the start of the exact series.
            steps, values = reference_series(LONG)
            count = len(drill.old_read["steps"])
            assert count > 0 and drill.old_read["steps"] == steps[:count]
            read = np.asarray(drill.old_read["values"], dtype=np.float32).tolist()
            assert read == values[:count]
        finally:
            new.stop()
            old.stop()
    report("upgrade", **drill.figures, total=time.monotonic() - began)
