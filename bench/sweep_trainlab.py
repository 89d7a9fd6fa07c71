"""trainlab's arm of the sweep study: the grid searched through a live service.

A real stack (tests/integration/stack.py: `trainlab serve --no-worker` and one `trainlab
worker` at one thread, concurrency 1, on PostgreSQL + Redis) at the deployment's own
intervals. Each repetition is one POST /sweeps (TPE, the paired pruner, `seeds` paired seeds,
3 rungs, the sweep's own validation split), followed on GET /sweeps/{id} about once a second;
once its `budget.steps` reach the study's budget it is cancelled (POST /sweeps/{id}/cancel):
trials still running then are cut by the budget, not pruned. Every decision is the service's:
the API's sweep driver asks Optuna, judges the rungs, cancels pruned runs; the worker trains.

Overhead per trial, from the service's own timestamps and the worker's phases:
    wall    = the last run's finished_at - the sweep's created_at
    engine  = for each delivery of the one worker (runs whose [started_at, finished_at]
              overlap: a fused group), its members' longest load_s + train_s + evaluate_s
              (metrics.phases: preparing data and model, the training loop with its rung
              evaluations, the test evaluation: what the engine alone would spend) less the
              members' held_s (the loop waiting at rungs for the driver's verdicts)
    overhead per trial = (wall - engine) / trials that trained
so it holds everything else: the driver's passes (every second) asking and judging, the
waits for its verdicts at rungs, queueing and dispatch, the claim, the store writes of loss
points, rungs and outcomes, and any moment the worker waits for the next trial. Reported
apart as well: `held_s` (those waits), `write_s` (the outcome writes) and `end_lag_s` (from
the last run's end to the sweep's, the driver's next pass after the cancel).
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.sweep_grid import Grid, key

POLL_S = 1.0
SETTINGS = {
    # The deployment's intervals (core/settings.py), not the tests' short ones.
    "TRAINLAB_FLUSH_INTERVAL_S": "1",
    "TRAINLAB_CHECKPOINT_INTERVAL_S": "60",
    "TRAINLAB_HEARTBEAT_TIMEOUT_S": "60",
    "TRAINLAB_REAPER_INTERVAL_S": "10",
    "TRAINLAB_WORKER_CONCURRENCY": "1",
    "TRAINLAB_QUOTA_ACTIVE_EXPERIMENTS": "100000",
    "TRAINLAB_QUOTA_DAILY_CPU_HOURS": "1000000",
    "TRAINLAB_MAX_ABLATION_CPU_HOURS": "100000",
    "TRAINLAB_RATE_LIMIT_KEY": "1000000/minute",
    "TRAINLAB_RATE_LIMIT_ADDRESS": "1000000/minute",
}


def _time(value: str) -> float:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class TrainlabArm:
    """One live stack for every repetition (the worker's data stays loaded, as in service)."""

    def __init__(self, grid: Grid, data_dir: Path, seeds: int, parallel: int) -> None:
        import os

        from tests.integration.stack import start_production

        os.environ["TEST_DATA_DIR"] = str(data_dir)
        self.grid, self.seeds, self.parallel = grid, seeds, parallel
        for attempt in range(3):
            self.workdir = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
            self.stack = start_production(self.workdir, settings={
                **SETTINGS, "TRAINLAB_DATA_DIR": str(data_dir)
            })  # fmt: skip
            time.sleep(1.0)
            # The port is picked free, then bound by serve: on a shared machine another
            # process may take it first, and /readyz answers from that one. Ours must be up.
            if self.stack.api is not None and self.stack.api.poll() is None:
                break
            self.stack.stop()
            if attempt == 2:
                raise RuntimeError(f"serve did not start:\n{self.stack.logs()}")
        self._warm()

    def _warm(self) -> None:
        """One small run first: the worker imports torch and decodes MNIST before any timing."""
        spec = self.grid.spec(self.grid.configs()[0], 0).model_dump(mode="json")
        spec = {k: v for k, v in spec.items() if not k.startswith("validation")}
        created = self.stack.submit({**spec, "train_limit": 100})
        self.stack.wait_terminal(created["id"], timeout=300)

    def close(self) -> None:
        self.stack.stop()

    def run(self, rep: int, budget: int) -> dict[str, Any]:
        body = {
            "name": f"bench-{rep}", "spec": self.grid.base(), "space": self.grid.space(),
            "seeds": self.seeds, "sampler": "tpe", "pruner": "paired", "max_trials": 200,
            "parallel": self.parallel, "validation_records": self.grid.validation_records,
            "rungs": 3, "sampler_seed": rep,
        }  # fmt: skip
        with self.stack.client() as client:
            response = client.post("/sweeps", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"POST /sweeps: {response.status_code} {response.text}")
            sweep_id = response.json()["id"]
            view = client.get(f"/sweeps/{sweep_id}").json()
            cancelled = False
            while view["status"] in ("running", "cancelling"):
                if not cancelled and view["budget"]["steps"] >= budget:
                    client.post(f"/sweeps/{sweep_id}/cancel", json={}).raise_for_status()
                    cancelled = True
                time.sleep(POLL_S)
                view = client.get(f"/sweeps/{sweep_id}").json()
            runs = [
                client.get(f"/experiments/{r['experiment_id']}").json()
                for t in view["trials"]
                for r in t["runs"]
            ]
        return summarize(view, runs)


def summarize(view: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The sweep's figures. Trials none of whose runs started (queued when the budget's cancel
    came: up to `parallel` of them) trained nothing and count nowhere, as in the peers' arms,
    where a trial exists once it trains."""
    started_ids = {r["id"] for r in runs if r["started_at"]}
    trials, unstarted = [], 0
    for t in view["trials"]:
        if not any(r["experiment_id"] in started_ids for r in t["runs"]):
            unstarted += 1
            continue
        # `failed` here is a trial whose runs the budget's cancel stopped.
        state = {"failed": "cut"}.get(t["state"], t["state"])
        rung = t["pruned_at_rung"]
        trials.append({"config": key(t["params"]), "state": state, "pruned_at_rung": rung})
    best = view["best"]
    started = [r for r in runs if r["started_at"] and r["finished_at"]]
    held = _phase(started, "held_s")
    engine = _engine_seconds(started) - held
    last_end = max((_time(r["finished_at"]) for r in started), default=_time(view["created_at"]))
    wall = last_end - _time(view["created_at"])
    end_lag = _time(view["finished_at"]) - last_end if view["finished_at"] else None
    return {
        "chosen": key(best["params"]) if best else None,
        "steps": view["budget"]["steps"],
        "trials": trials,
        "wall_s": round(wall, 3),
        "engine_s": round(engine, 3),
        "overhead_per_trial_ms": round(1000 * (wall - engine) / max(len(trials), 1), 1),
        "end_lag_s": None if end_lag is None else round(end_lag, 3),
        "held_s": round(held, 3),
        "write_s": round(_phase(started, "write_s"), 3),
        "status": view["status"],
        "unstarted": unstarted,
    }


def _engine_seconds(runs: list[dict[str, Any]]) -> float:
    """The one worker's deliveries, one after another: overlapping runs are one fused group."""
    spans = sorted((_time(r["started_at"]), _time(r["finished_at"]), _engine_of(r)) for r in runs)
    total, end, group = 0.0, float("-inf"), 0.0
    for start, finish, seconds in spans:
        if start >= end:  # a new delivery
            total += group
            group = 0.0
        group, end = max(group, seconds), max(end, finish)
    return total + group


def _engine_of(run: dict[str, Any]) -> float:
    phases = (run.get("metrics") or {}).get("phases") or {}
    return float(sum(phases.get(p, 0.0) for p in ("load_s", "train_s", "evaluate_s")))


def _phase(runs: list[dict[str, Any]], name: str) -> float:
    return sum(float(((r.get("metrics") or {}).get("phases") or {}).get(name, 0.0)) for r in runs)
