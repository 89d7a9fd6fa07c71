"""The API benchmark's figures: where the end-to-end time goes, and the table and JSON line.

A figure that the service doesn't report (yet) is None, printed "n/a": the worker's
`metrics["phases"]` and ETags are being added alongside this benchmark, and the table must
read the same before and after.
"""

from __future__ import annotations

from typing import Any

from bench.api_clients import Completion, timestamp

PHASES = ("claim_s", "load_s", "train_s", "evaluate_s", "write_s")

# figure -> goal, as the issue states them; figures without a goal are context.
GOALS: dict[str, str] = {
    "api_over_engine": "<= 1.05",
    "loss_full_p50_ms": "<= 20",
    "loss_500_p50_ms": "<= 5",
    "pollers_slowdown_pct": "<= 10",
    "post_p50_ms": "<= 50",
}


def breakdown(done: Completion) -> dict[str, float | None]:
    """POST to noticed, in consecutive pieces that add up to the client's total:
    post_to_created (request until the row's created_at), queue_wait (created_at to the
    worker's claim, started_at), the worker's phases and what they leave of started_at to
    finished_at (worker_residual), and notice_lag (finished_at to the client knowing).
    All stamps are from the same machine's clock."""
    experiment = done.experiment
    created = timestamp(experiment["created_at"])
    started = timestamp(experiment["started_at"])
    finished = timestamp(experiment["finished_at"])
    assert created is not None and started is not None and finished is not None
    metrics = experiment.get("metrics") or {}
    phases = metrics.get("phases") or {}
    rows: dict[str, float | None] = {
        "total_s": done.noticed - done.post_started,
        "post_rtt_s": done.post_s,
        "post_to_created_s": created - done.post_started,
        "queue_wait_s": started - created,
        "worker_run_s": finished - started,
    }
    known = 0.0
    for phase in PHASES:
        value = phases.get(phase)
        rows[f"phase_{phase}"] = None if value is None else float(value)
        known += float(value or 0.0)
    rows["worker_residual_s"] = (finished - started) - known if phases else None
    rows["worker_train_seconds"] = metrics.get("train_seconds")
    rows["notice_lag_s"] = done.noticed - finished
    return rows


def engine_phases(total_s: float, metrics: dict[str, Any]) -> dict[str, float | None]:
    """The engine alone: its training loop (RunResult.metrics["train_seconds"]) and the rest
    of run_training (loading the data, building the model, evaluating)."""
    train = metrics.get("train_seconds")
    return {
        "engine_s": total_s,
        "engine_train_s": train,
        "engine_other_s": None if train is None else total_s - train,
        "engine_steps_per_s": metrics.get("steps_per_second"),
    }


def rounded(rows: dict[str, Any]) -> dict[str, Any]:
    return {
        key: round(value, 4 if abs(value) < 1 else 2) if isinstance(value, float) else value
        for key, value in rows.items()
    }


def print_table(rows: dict[str, Any], sections: dict[str, list[str]]) -> None:
    """One block per section, each row: figure, value ("n/a" when not measured), goal."""
    print(f"\n{'figure':<34} {'value':>12}  goal")
    for title, keys in sections.items():
        print(f"-- {title}")
        for key in keys:
            value = rows.get(key)
            shown = "n/a" if value is None else str(value)
            print(f"{key:<34} {shown:>12}  {GOALS.get(key, '')}")
