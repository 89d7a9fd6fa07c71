"""Fused groups against the same runs trained one after another, in the same go.

For each preset and each group size R, the R seeds 0..R-1 train (a) fused, as one group, and
(b) one after another, each alone; with --repeats the order alternates and the best time of
each side counts. Times are the engine's training-loop seconds (no data loading, model
building or evaluation). Runs-per-second = R / seconds; ratio = fused / sequential runs/s.
On the CPU every run's test accuracy (and whole series) must be the same both ways.

Bar (issue 12, CPU): fused R=4 at >= 0.9x the runs-per-second of 4 single runs, accuracies
identical.

Usage:
    python bench/fused_bench.py [--presets seed-adam,seed-baseline] [--sizes 1,2,4,8,16]
        [--records 20000] [--epochs 1] [--device cpu] [--threads 1] [--repeats 1]
        [--data-dir ../shared/data] [--json-out bench/results/fused.json]
Prints a row per measurement as it goes, then a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.presets import build_spec  # noqa: E402
from core.spec import ExperimentSpec  # noqa: E402

BAR_SIZE, BAR = 4, 0.9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--presets", default="seed-adam,seed-baseline", help="comma-separated")
    p.add_argument("--sizes", default="1,2,4,8,16", help="group sizes R, comma-separated")
    p.add_argument("--records", type=int, default=20_000, help="training records per epoch")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--test-records", type=int, default=10_000)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument(
        "--max-fused-runs", type=int, help="runs per fused group (default: the engine's choice)"
    )
    p.add_argument("--json-out", type=Path, help="also write the JSON here")
    return p.parse_args(argv)


def specs_for(args: argparse.Namespace, preset: str, size: int) -> list[ExperimentSpec]:
    overrides = {
        "epochs": args.epochs,
        "train_limit": args.records,
        "test_limit": args.test_records,
        "device": args.device,
    }
    return [build_spec(preset, {**overrides, "seed": seed}) for seed in range(size)]


def fused(args: argparse.Namespace, specs: list[ExperimentSpec]) -> dict[str, Any]:
    from worker.engine import run_training_group

    results = run_training_group(
        specs,
        data_dir=args.data_dir,
        allow_download=False,
        threads=args.threads,
        max_fused_runs=args.max_fused_runs,
    )
    return {
        # Groups (on the CPU: what the cache holds) train one after another.
        "seconds": sum(
            max(r.metrics["train_seconds"] for r in results[k : k + r0.fingerprint["fused_runs"]])
            for k, r0 in enumerate(results)
            if _group_start(results, k)
        ),
        "accuracies": [r.metrics["test_accuracy"] for r in results],
        "final_losses": [r.metrics["final_loss"] for r in results],
        "group_size": results[0].fingerprint["fused_runs"],
        "device_name": results[0].fingerprint["device_name"],
    }


def _group_start(results: list[Any], k: int) -> bool:
    """Whether results[k] starts a group (runs come in group order, each group's size in the
    fingerprint)."""
    at = 0
    while at < k:
        at += results[at].fingerprint["fused_runs"]
    return at == k


def sequential(args: argparse.Namespace, specs: list[ExperimentSpec]) -> dict[str, Any]:
    from worker.engine import run_training

    results = [
        run_training(spec, data_dir=args.data_dir, allow_download=False, threads=args.threads)
        for spec in specs
    ]
    return {
        "seconds": sum(r.metrics["train_seconds"] for r in results),
        "accuracies": [r.metrics["test_accuracy"] for r in results],
        "final_losses": [r.metrics["final_loss"] for r in results],
    }


def measure(args: argparse.Namespace, preset: str, size: int) -> dict[str, Any]:
    specs = specs_for(args, preset, size)
    sides: dict[str, list[dict[str, Any]]] = {"fused": [], "sequential": []}
    order = [("fused", fused), ("sequential", sequential)]
    for repeat in range(args.repeats):
        for name, run in order if repeat % 2 == 0 else order[::-1]:
            sides[name].append(run(args, specs))
    best = {name: min(runs, key=lambda r: r["seconds"]) for name, runs in sides.items()}
    f, s = best["fused"], best["sequential"]
    fused_rps, seq_rps = size / f["seconds"], size / s["seconds"]
    ratio = fused_rps / seq_rps
    identical = f["accuracies"] == s["accuracies"] and f["final_losses"] == s["final_losses"]
    return {
        "preset": preset,
        "runs": size,
        "steps_per_run": specs[0].total_steps,
        "fused_s": round(f["seconds"], 3),
        "sequential_s": round(s["seconds"], 3),
        "fused_runs_per_s": round(fused_rps, 4),
        "sequential_runs_per_s": round(seq_rps, 4),
        "ratio": round(ratio, 3),
        "group_size": f["group_size"],
        "identical_accuracies": f["accuracies"] == s["accuracies"],
        "identical_final_losses": f["final_losses"] == s["final_losses"],
        "accuracies": f["accuracies"],
        "ok": identical and (size != BAR_SIZE or args.device != "cpu" or ratio >= BAR),
        "fused_runs_s": [round(r["seconds"], 3) for r in sides["fused"]],
        "sequential_runs_s": [round(r["seconds"], 3) for r in sides["sequential"]],
        "device_name": f["device_name"],
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        "preset",
        "R",
        "group",
        "fused s",
        "seq s",
        "fused r/s",
        "seq r/s",
        "ratio",
        "same acc",
    )
    print("{:<16}{:>4}{:>6}{:>9}{:>9}{:>11}{:>10}{:>8}{:>10}".format(*header))
    for r in rows:
        print(
            f"{r['preset']:<16}{r['runs']:>4}{r['group_size']:>6}{r['fused_s']:>9.2f}"
            f"{r['sequential_s']:>9.2f}"
            f"{r['fused_runs_per_s']:>11.3f}{r['sequential_runs_per_s']:>10.3f}{r['ratio']:>8.3f}"
            f"{'yes' if r['identical_accuracies'] else 'NO':>10}  {'ok' if r['ok'] else 'MISS'}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started = time.perf_counter()
    # Load the data (and find the sparse inputs) before anything is timed.
    fused(args, [build_spec(presets[0], {"epochs": 1, "train_limit": 10, "device": args.device})])
    rows = []
    for preset in presets:
        for size in sizes:
            row = measure(args, preset, size)
            rows.append(row)
            print(f"  {json.dumps(row)}", file=sys.stderr, flush=True)
    print_table(rows)
    report = {
        "bench": "fused_vs_sequential",
        "device": args.device,
        "device_name": rows[0]["device_name"] if rows else None,
        "threads": args.threads,
        "records": args.records,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "bar": {"runs": BAR_SIZE, "min_ratio": BAR},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "all_ok": all(r["ok"] for r in rows),
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
