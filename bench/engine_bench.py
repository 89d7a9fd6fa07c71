"""The engine against the plain PyTorch loop, preset by preset, in the same go.

For each preset the reference loop (../shared/bench/reference_loop.py: the book's recipe
written the plain way, batch 1, tensors in memory) and the engine each train in a fresh
process, one right after the other, so load on the machine hits both alike; with --repeats,
the order alternates and the best time of each side counts. Both report the seconds of their
training loop alone (no imports, data loading or evaluation) and the test accuracy on the full
test set.

Bar (issue 2): engine / reference <= 0.9 for every preset, <= 0.7 for seed-adam and
seed-layernorm, and test accuracy within 1 point of the reference.

Usage:
    python bench/engine_bench.py [--presets seed-adam,seed-layernorm] [--epochs 3]
        [--train-limit N] [--device cpu|cuda] [--threads 1] [--repeats 1]
        [--data-dir ../shared/data] [--reference ../shared/bench/reference_loop.py]
        [--json-out bench/results/engine.json]
Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PRESETS = ("seed-baseline", "seed-bce", "seed-leakyrelu", "seed-adam", "seed-layernorm")
BARS = {"seed-adam": 0.7, "seed-layernorm": 0.7}
DEFAULT_BAR = 0.9
ACCURACY_TOLERANCE = 0.01


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-limit", type=int, default=0, help="first N records (0: all)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument(
        "--reference", type=Path, default=REPO.parent / "shared" / "bench" / "reference_loop.py"
    )
    p.add_argument("--json-out", type=Path, help="also write the JSON here")
    p.add_argument("--child-engine", metavar="PRESET", help=argparse.SUPPRESS)
    p.add_argument("--dense", action="store_true", help=argparse.SUPPRESS)  # child: no sparse input
    return p.parse_args(argv)


def common_flags(args: argparse.Namespace, preset: str) -> list[str]:
    return [
        "--preset", preset, "--epochs", str(args.epochs), "--train-limit", str(args.train_limit),
        "--threads", str(args.threads), "--device", args.device, "--data-dir", str(args.data_dir),
        "--seed", str(args.seed),
    ]  # fmt: skip


def last_json_line(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def run_reference(args: argparse.Namespace, preset: str) -> dict[str, Any]:
    return last_json_line([sys.executable, str(args.reference), *common_flags(args, preset)])


def run_engine(args: argparse.Namespace, preset: str) -> dict[str, Any]:
    flags = common_flags(args, preset)[2:]  # the preset goes in --child-engine
    return last_json_line([sys.executable, __file__, "--child-engine", preset, *flags])


def child_engine(args: argparse.Namespace) -> None:
    """One engine run in this (fresh) process; prints the reference loop's JSON fields."""
    sys.path.insert(0, str(REPO))
    from core.presets import build_spec
    from worker.engine import run_training

    overrides: dict[str, Any] = {"epochs": args.epochs, "seed": args.seed, "device": args.device}
    if args.train_limit:
        overrides["train_limit"] = args.train_limit
    spec = build_spec(args.child_engine, overrides)
    result = run_training(
        spec,
        data_dir=args.data_dir,
        allow_download=False,
        threads=args.threads,
        sparse_input=not args.dense,
    )
    seconds = result.metrics["train_seconds"]
    print(json.dumps({
        "preset": args.child_engine,
        "steps": result.steps,
        "loss_points": result.metrics["loss_points"],
        "train_seconds": round(seconds, 3),
        "us_per_step": round(seconds / result.steps * 1e6, 1),
        "test_accuracy": round(result.metrics["test_accuracy"], 4),
        "record_19": [round(float(v), 4) for v in result.predictions.outputs[19]],
        "device_name": result.fingerprint["device_name"],
    }))  # fmt: skip


def bench_preset(args: argparse.Namespace, preset: str) -> dict[str, Any]:
    reference: list[dict[str, Any]] = []
    engine: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        runs = [(run_reference, reference), (run_engine, engine)]
        for run, sink in runs if repeat % 2 == 0 else runs[::-1]:
            sink.append(run(args, preset))
    ref = min(reference, key=lambda r: r["train_seconds"])
    eng = min(engine, key=lambda r: r["train_seconds"])
    ratio = eng["train_seconds"] / ref["train_seconds"]
    bar = BARS.get(preset, DEFAULT_BAR)
    accuracy_gap = eng["test_accuracy"] - ref["test_accuracy"]
    return {
        "preset": preset,
        "steps": eng["steps"],
        "reference_s": ref["train_seconds"],
        "engine_s": eng["train_seconds"],
        "ratio": round(ratio, 3),
        "bar": bar,
        "reference_accuracy": ref["test_accuracy"],
        "engine_accuracy": eng["test_accuracy"],
        "ok": ratio <= bar and abs(accuracy_gap) <= ACCURACY_TOLERANCE,
        "reference_runs_s": [r["train_seconds"] for r in reference],
        "engine_runs_s": [r["train_seconds"] for r in engine],
        "device_name": eng["device_name"],
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("preset", "reference s", "engine s", "ratio", "bar", "ref acc", "engine acc", "")
    print("{:<16}{:>12}{:>10}{:>7}{:>6}{:>9}{:>12}  {}".format(*header))
    for r in rows:
        print(
            f"{r['preset']:<16}{r['reference_s']:>12.2f}{r['engine_s']:>10.2f}{r['ratio']:>7.3f}"
            f"{r['bar']:>6.1f}{r['reference_accuracy']:>9.4f}{r['engine_accuracy']:>12.4f}"
            f"  {'ok' if r['ok'] else 'MISS'}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_engine:
        child_engine(args)
        return 0
    if not args.reference.exists():
        raise SystemExit(f"reference loop not found: {args.reference} (see --reference)")
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = sorted(set(presets) - set(PRESETS))
    if unknown:
        raise SystemExit(f"unknown presets {unknown}; known: {', '.join(PRESETS)}")
    started = time.perf_counter()
    rows = []
    for preset in presets:
        row = bench_preset(args, preset)
        rows.append(row)
        # Each row as soon as it is measured, so a run cut short still reports what it did.
        print(f"  {preset}: {json.dumps(row)}", file=sys.stderr, flush=True)
    print_table(rows)
    report = {
        "bench": "engine_vs_reference",
        "device": args.device,
        "device_name": rows[0]["device_name"] if rows else None,
        "threads": args.threads,
        "epochs": args.epochs,
        "train_limit": args.train_limit or None,
        "seed": args.seed,
        "repeats": args.repeats,
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
