"""trainlab's paired pruning against Optuna's and Ray Tune's single-seed pruners, on one grid.

1. Ground truth (bench/sweep_grid.py): every configuration of a grid around the book's
   recipes (lr, hidden width, activation, optimizer, normalization; 1 epoch of 20,000
   records, 10,000 validation records held out by the spec's rule) on 5 seeds no method uses;
   a configuration's true figure is its mean validation accuracy, its true rank its place.
2. The same grid searched, 5 repetitions each (sampler seed = repetition), at an equal budget
   of training steps (--budget x the steps of the grid trained once on one seed):
   - trainlab: a live service (bench/sweep_trainlab.py), TPE + the paired pruner on 3 seeds;
   - optuna: TPE + SuccessiveHalvingPruner on one seed (seed = repetition);
   - ray: Ray Tune's random search + ASHAScheduler on one seed (bench/sweep_peers.py).
   Rungs are the same for all: 1/9, 1/3 and all of a run's steps.
3. Per method and repetition: steps trained, the chosen configuration (the best trial that
   ran its full budget) with its true rank and true validation accuracy, how often a trial of
   a true top-3 configuration was pruned (stopped by the pruner; trials the budget's end
   stops are "cut", not counted), and the overhead per trial (wall time not spent in the
   engine, see each arm's docstring).

Goals (issue): trainlab's pick within 0.3 pt of the grid's best in every repetition using
<= 30 % of the grid's steps (the 5-seed grid the ground truth trains); wrong prunes of true
top-3 configurations at most half of single-seed ASHA's (Ray Tune's) at equal compute;
overhead <= 20 ms per trial.

Usage: python bench/sweep_bench.py --data-dir ../shared/data [--reps 5] [--budget 0.3]
       [--methods trainlab,optuna,ray] [--seeds 3] [--quick] [--name NAME]
       (BENCH_SWEEP_QUICK=1 = --quick; the JSON goes to bench/results/sweep[-quick][-NAME].json)
Prints a row per repetition as it goes, then a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.sweep_grid import FULL, QUICK, Grid, Truth, ground_truth  # noqa: E402

GAP_PT, STEPS_SHARE, PRUNE_RATIO, OVERHEAD_MS = 0.3, 0.30, 0.5, 20.0
TOP = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--budget", type=float, default=0.3,
                   help="steps per search, as a multiple of the one-seed grid's")  # fmt: skip
    p.add_argument("--methods", default="trainlab,optuna,ray")
    p.add_argument("--seeds", type=int, default=3, help="trainlab's paired seeds")
    p.add_argument("--parallel", type=int, default=4, help="trainlab's trials at once")
    quick = bool(os.environ.get("BENCH_SWEEP_QUICK"))
    p.add_argument("--quick", action="store_true", default=quick, help="a small grid, 2 reps")
    results = REPO / "bench" / "results"
    p.add_argument("--results", type=Path, default=results, help="the cache and the JSON")
    p.add_argument("--name", default="", help="names the JSON file: sweep[-NAME].json")
    return p.parse_args(argv)


def score(truth: Truth, run: dict[str, Any], grid_steps: int) -> dict[str, Any]:
    best = truth.mean(truth.ranked[0])
    top = set(truth.top(TOP))
    chosen = run["chosen"]
    trials = run["trials"]
    return {
        "steps": run["steps"],
        "steps_share": round(run["steps"] / grid_steps, 4),
        "trials": len(trials),
        "pruned": sum(t["state"] == "pruned" for t in trials),
        "top_trials": sum(t["config"] in top for t in trials),
        "top_pruned": sum(t["config"] in top and t["state"] == "pruned" for t in trials),
        "chosen": chosen,
        "rank": truth.rank(chosen) if chosen else None,
        "accuracy": round(truth.mean(chosen), 5) if chosen else None,
        "gap_pt": round(100 * (best - truth.mean(chosen)), 3) if chosen else None,
        "overhead_ms": run["overhead_per_trial_ms"],
        "wall_s": run["wall_s"],
        "engine_s": run["engine_s"],
        # Each trial in order: its configuration's true rank, its end, the rung of a prune.
        "log": [[truth.rank(t["config"]), t["state"], t["pruned_at_rung"]] for t in trials],
        # trainlab's only: waits at rungs for verdicts, outcome writes, the sweep's end.
        **{k: run[k] for k in ("held_s", "write_s", "end_lag_s", "unstarted") if k in run},
    }


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    gaps = [r["gap_pt"] for r in rows if r["gap_pt"] is not None]
    ranks = [r["rank"] for r in rows if r["rank"] is not None]
    return {
        "reps": len(rows),
        "steps_share": round(statistics.fmean(r["steps_share"] for r in rows), 4),
        "trials": round(statistics.fmean(r["trials"] for r in rows), 1),
        "ranks": [r["rank"] for r in rows],
        "median_rank": statistics.median(ranks) if ranks else None,
        "accuracy": round(statistics.fmean(r["accuracy"] for r in rows if r["accuracy"]), 5)
        if gaps
        else None,
        "mean_gap_pt": round(statistics.fmean(gaps), 3) if gaps else None,
        "within_gap": sum(g <= GAP_PT for g in gaps),
        "top_pruned": sum(r["top_pruned"] for r in rows),
        "top_trials": sum(r["top_trials"] for r in rows),
        "overhead_ms": round(statistics.fmean(r["overhead_ms"] for r in rows), 1),
    }


def run_method(
    name: str, args: argparse.Namespace, grid: Grid, budget: int, truth: Truth, grid_steps: int
) -> list[dict[str, Any]]:
    from bench import sweep_peers

    rows = []
    arm = None
    if name == "trainlab":
        from bench.sweep_trainlab import TrainlabArm

        arm = TrainlabArm(grid, args.data_dir, args.seeds, args.parallel)
    try:
        for rep in range(args.reps):
            if arm is not None:
                run = arm.run(rep, budget)
            else:
                method = sweep_peers.optuna_arm if name == "optuna" else sweep_peers.ray_arm
                run = method(grid, args.data_dir, rep, rep % 5, budget)
            row = {"method": name, "rep": rep, **score(truth, run, grid_steps)}
            rows.append(row)
            print(f"  {json.dumps(row)}", flush=True)
    finally:
        if arm is not None:
            arm.close()
    return rows


def print_table(results: dict[str, dict[str, Any]], truth: Truth) -> None:
    best = truth.ranked[0]
    print(f"\nground truth: {len(truth.ranked)} configurations x {len(truth.seeds)} seeds, "
          f"best {100 * truth.mean(best):.2f} % ({best}); top {TOP}: "
          + ", ".join(f"{100 * truth.mean(k):.2f}" for k in truth.top(TOP)))  # fmt: skip
    head = ("method", "steps %grid", "trials", "true ranks", "val acc %", "gap pt",
            f"<= {GAP_PT} pt", "top-3 pruned", "overhead ms")  # fmt: skip
    print("{:<10}{:>12}{:>8}{:>18}{:>11}{:>8}{:>10}{:>14}{:>13}".format(*head))
    for name, a in results.items():
        ranks = ",".join(str(r) if r else "-" for r in a["ranks"])
        acc = f"{100 * a['accuracy']:.2f}" if a["accuracy"] else "-"
        print(f"{name:<10}{100 * a['steps_share']:>11.1f}%{a['trials']:>8}{ranks:>18}{acc:>11}"
              f"{a['mean_gap_pt'] if a['mean_gap_pt'] is not None else '-':>8}"
              f"{a['within_gap']:>7}/{a['reps']:<2}"
              f"{a['top_pruned']:>8}/{a['top_trials']:<5}{a['overhead_ms']:>13}")  # fmt: skip


def goals(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ours = results.get("trainlab")
    if ours is None:
        return {}
    out: dict[str, Any] = {
        "pick_within_gap": ours["within_gap"] == ours["reps"],
        "steps_within_share": ours["steps_share"] <= STEPS_SHARE,
        "overhead_within": ours["overhead_ms"] <= OVERHEAD_MS,
    }
    if "ray" in results:
        asha = results["ray"]["top_pruned"]
        out["wrong_prunes_half_of_asha"] = ours["top_pruned"] <= PRUNE_RATIO * asha
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    grid = QUICK if args.quick else FULL
    if args.quick:
        args.reps = min(args.reps, 2)
    started = time.perf_counter()
    truth = ground_truth(grid, args.data_dir, args.results)
    print(f"ground truth: {len(truth.ranked)} configurations in {truth.seconds:.0f} s", flush=True)
    one_seed = len(truth.ranked) * grid.steps()
    grid_steps = one_seed * len(truth.seeds)  # the 5-seed grid: the goal's 30 % is of this
    budget = int(args.budget * one_seed)
    rows: dict[str, list[dict[str, Any]]] = {}
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        rows[name] = run_method(name, args, grid, budget, truth, grid_steps)
    results = {name: aggregate(r) for name, r in rows.items()}
    print_table(results, truth)
    report = {
        "bench": "sweep", "quick": args.quick, "grid": grid.values, "records": grid.records,
        "validation_records": grid.validation_records, "configs": len(truth.ranked),
        "ground_seeds": truth.seeds, "ground_steps": truth.steps,
        "ground_s": round(truth.seconds, 1), "budget_steps": budget,
        "budget_share_of_grid": round(budget / grid_steps, 4), "trainlab_seeds": args.seeds,
        "best": truth.ranked[0], "best_accuracy": round(truth.mean(truth.ranked[0]), 5),
        "top": {k: round(truth.mean(k), 5) for k in truth.top(TOP)},
        "results": results, "goals": goals(results), "rows": rows, "load": os.getloadavg(),
        "wall_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    line = json.dumps(report, separators=(",", ":"))
    print(line)
    args.results.mkdir(parents=True, exist_ok=True)
    suffix = "".join(f"-{part}" for part in ("quick" if args.quick else "", args.name) if part)
    (args.results / f"sweep{suffix}.json").write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
