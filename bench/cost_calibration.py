"""The cost model's time per step against the engine's, over a spread of specs.

For each spec of SPECS (depth 1..8, widths 1..4096, batch 1..512, every activation,
normalization, optimizer and loss), the engine trains it in this process on the real MNIST
(already loaded: the engine keeps it for the process) with one CPU thread: a warm-up run, then
--repeats timed runs of enough steps to last about --target-s each; the measured figure is the
median of the runs' training seconds per step (the engine's `train_seconds`, which leaves out
loading and evaluation, counted in this process's CPU time: see cpu_clock). The estimate is
core/kinds/classifier_cost.py's `step_seconds`.

Prints a row per spec as it goes, then the table (estimated and measured ms per step, their
ratio), the worst ratio each way and one JSON line with every figure. With --fit it also fits
the model's costs to the measurements (bench/cost_fit.py: the costs of
classifier_cost.step_features that make the worst ratio smallest, and the cache sizes) and
prints them, ready to paste into classifier_cost.py, with the worst ratio they give.

Usage:
    python bench/cost_calibration.py [--data-dir ../shared/data] [--repeats 3] [--target-s 0.3]
        [--only 0,5,9] [--fit] [--json-out bench/results/cost.json] [--from-json FILE ...]
Goal: every spec within 1.5x either way. The machine is shared: run it when `uptime` is low
(its load average is in the JSON), and fit on several runs (--from-json, repeated).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.cost_specs import SPECS, spec_of  # noqa: E402
from core.kinds.classifier_cost import step_seconds  # noqa: E402
from core.spec import ExperimentSpec  # noqa: E402

GOAL = 1.5
MAX_RECORDS = 60_000
MAX_STEPS = 20_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--target-s", type=float, default=0.3, help="seconds of one timed run")
    p.add_argument("--only", default="", help="comma-separated indices into SPECS")
    p.add_argument("--fit", action="store_true", help="fit the coefficients and print them")
    p.add_argument("--json-out", type=Path, help="also write the JSON here")
    p.add_argument(
        "--from-json",
        type=Path,
        action="append",
        help="take the measurements from an earlier run's --json-out instead (repeatable: a "
        "row per run and spec, so a fit holds for each run)",
    )
    return p.parse_args(argv)


@contextlib.contextmanager
def cpu_clock() -> Iterator[None]:
    """The engine's training loop timed by this process's CPU time, not the wall clock: the
    other users of a shared machine then inflate the figure far less (cache sharing still
    does). Only worker/engine/loop.py's view of `time` changes, for the run."""
    from worker.engine import loop

    setattr(loop, "time", types.SimpleNamespace(perf_counter=time.process_time))  # noqa: B010
    try:
        yield
    finally:
        setattr(loop, "time", time)  # noqa: B010


def timed(spec: ExperimentSpec, steps: int, data_dir: Path) -> float:
    """CPU seconds per step of the engine's training loop over `steps` steps of `spec`."""
    from worker.engine import run_training

    records = min(steps * spec.batch_size, MAX_RECORDS)
    run = spec.model_copy(update={"epochs": 1, "train_limit": records, "test_limit": 10})
    run = ExperimentSpec.model_validate(run.model_dump())
    with cpu_clock():
        result = run_training(
            run, data_dir=data_dir, allow_download=False, threads=1, flush_interval_s=3600.0
        )
    return float(result.metrics["train_seconds"]) / result.steps


def measure(spec: ExperimentSpec, args: argparse.Namespace) -> dict[str, Any]:
    most = MAX_RECORDS // spec.batch_size
    # Two warm-ups: 3 steps (a big spec's steps take seconds), then about 50 ms of steps, whose
    # time per step sizes the timed runs.
    warm = timed(spec, min(most, 3), args.data_dir)
    warm = timed(spec, max(3, min(most, round(0.05 / warm))), args.data_dir)
    steps = max(3, min(most, MAX_STEPS, round(args.target_s / warm)))
    runs = [timed(spec, steps, args.data_dir) * 1e3 for _ in range(args.repeats)]
    return {"steps": steps, "measured_ms": statistics.median(runs), "runs_ms": runs}


def row_of(index: int, name: str, spec: ExperimentSpec, measured: dict[str, Any]) -> dict[str, Any]:
    estimated = step_seconds(spec) * 1e3
    return {
        "index": index,
        "name": name,
        **measured,
        "estimated_ms": estimated,
        "ratio": estimated / measured["measured_ms"],
    }


def worst(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """(the largest over-estimate, the largest under-estimate), both as factors >= 1 or not."""
    ratios = [r["ratio"] for r in rows]
    return max(ratios), 1 / max(min(ratios), 1e-9)


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'#':>3} {'spec':<44}{'steps':>6}{'est ms':>10}{'meas ms':>10}{'est/meas':>10}")
    for r in rows:
        flag = "" if 1 / GOAL <= r["ratio"] <= GOAL else "  MISS"
        print(
            f"{r['index']:>3} {r['name']:<44}{r['steps']:>6}{r['estimated_ms']:>10.3f}"
            f"{r['measured_ms']:>10.3f}{r['ratio']:>10.2f}{flag}"
        )
    over, under = worst(rows)
    print(f"worst over-estimate {over:.2f}x, worst under-estimate {under:.2f}x (goal {GOAL}x)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [int(i) for i in args.only.split(",") if i.strip()] or list(range(len(SPECS)))
    started = time.perf_counter()
    earlier = [
        {r["name"]: r for r in json.loads(path.read_text())["results"]}
        for path in args.from_json or []
    ]
    rows = []
    for index in chosen:
        name, fields = SPECS[index]
        spec = spec_of(fields)
        keys = ("steps", "measured_ms", "runs_ms")
        runs = [{k: run[name][k] for k in keys} for run in earlier] or [measure(spec, args)]
        for measured in runs:
            row = row_of(index, name, spec, measured)
            rows.append(row)
            print(f"  {json.dumps(row)}", file=sys.stderr, flush=True)
    print_table(rows)
    if args.fit:
        from bench.cost_fit import fit_and_print

        fit_and_print(rows, [spec_of(SPECS[r["index"]][1]) for r in rows], GOAL)
    over, under = worst(rows)
    report = {
        "bench": "cost_calibration",
        "threads": 1,
        "load_average": os.getloadavg(),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "worst_over": round(over, 3),
        "worst_under": round(under, 3),
        "all_ok": max(over, under) <= GOAL,
        "results": rows,
    }
    line = json.dumps(report, separators=(",", ":"))
    print(line)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
