"""The sparse first layer against the dense one, today's engine and the tuned reference loop.

For each plain-SGD preset, four contestants train in fresh processes, one right after the
other (with --repeats the order rotates and the best time of each counts):

- sparse: this engine (its default: the first layer reads only the non-zero pixels);
- dense: this engine with sparse_input=False;
- today: the engine of --baseline-ref (default: main), exported from git into a temporary
  folder and run from there;
- tuned: ../shared/bench/reference_loop.py --tuned (fused optimizer, denormals flushed).

All report the seconds of their training loop alone, and the test accuracy on all 10,000
test records. Goal (issue 12): sparse <= 0.5x today on 1 thread.

Usage:
    python bench/sparse_bench.py [--presets seed-baseline,seed-bce,seed-leakyrelu]
        [--epochs 1] [--train-limit N] [--threads 1] [--repeats 3] [--baseline-ref main]
        [--data-dir ../shared/data] [--reference ../shared/bench/reference_loop.py]
        [--json-out bench/results/sparse.json]
Prints a row per preset as it goes, then a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PRESETS = ("seed-baseline", "seed-bce", "seed-leakyrelu")
GOAL = 0.5
CONTESTANTS = ("sparse", "dense", "today", "tuned")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-limit", type=int, default=0, help="first N records (0: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline-ref", default="main", help="git ref of today's engine")
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument(
        "--reference", type=Path, default=REPO.parent / "shared" / "bench" / "reference_loop.py"
    )
    p.add_argument("--json-out", type=Path, help="also write the JSON here")
    return p.parse_args(argv)


def export(ref: str) -> Path:
    """The tree at `ref`, as files in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="trainlab-today-"))
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=REPO, capture_output=True, check=True
    ).stdout
    archive_path = folder / "tree.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree"


def flags(args: argparse.Namespace, preset: str) -> list[str]:
    return [
        "--epochs", str(args.epochs), "--train-limit", str(args.train_limit),
        "--threads", str(args.threads), "--device", "cpu", "--data-dir", str(args.data_dir),
        "--seed", str(args.seed),
    ]  # fmt: skip


def run(command: list[str], root: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def contestant(args: argparse.Namespace, name: str, preset: str, today: Path) -> dict[str, Any]:
    python = sys.executable
    if name == "tuned":
        command = [python, str(args.reference), "--preset", preset, "--tuned"]
        return run(command + flags(args, preset), REPO)
    root = today if name == "today" else REPO
    command = [python, str(root / "bench" / "engine_bench.py"), "--child-engine", preset]
    command += flags(args, preset) + (["--dense"] if name == "dense" else [])
    return run(command, root)


def bench_preset(args: argparse.Namespace, preset: str, today: Path) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTESTANTS}
    for repeat in range(args.repeats):
        shift = repeat % len(CONTESTANTS)
        for name in CONTESTANTS[shift:] + CONTESTANTS[:shift]:
            runs[name].append(contestant(args, name, preset, today))
    best = {name: min(r, key=lambda x: x["train_seconds"]) for name, r in runs.items()}
    seconds = {name: b["train_seconds"] for name, b in best.items()}
    ratio = seconds["sparse"] / seconds["today"]
    return {
        "preset": preset,
        "steps": best["sparse"]["steps"],
        "seconds": seconds,
        "us_per_step": {name: b["us_per_step"] for name, b in best.items()},
        "sparse_vs_today": round(ratio, 3),
        "sparse_vs_dense": round(seconds["sparse"] / seconds["dense"], 3),
        "sparse_vs_tuned": round(seconds["sparse"] / seconds["tuned"], 3),
        "dense_vs_today": round(seconds["dense"] / seconds["today"], 3),
        "accuracy": {name: b["test_accuracy"] for name, b in best.items()},
        "goal_ok": ratio <= GOAL,
        "all_seconds": {name: [r["train_seconds"] for r in rs] for name, rs in runs.items()},
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'preset':<16}{'today s':>9}{'dense s':>9}{'sparse s':>10}{'tuned s':>9}"
        f"{'sp/today':>10}{'sp/tuned':>10}{'goal':>6}  accuracy today/dense/sparse/tuned"
    )
    for r in rows:
        s, a = r["seconds"], r["accuracy"]
        accuracy = "/".join(f"{a[n]:.4f}" for n in ("today", "dense", "sparse", "tuned"))
        print(
            f"{r['preset']:<16}{s['today']:>9.2f}{s['dense']:>9.2f}{s['sparse']:>10.2f}"
            f"{s['tuned']:>9.2f}{r['sparse_vs_today']:>10.3f}{r['sparse_vs_tuned']:>10.3f}"
            f"{'ok' if r['goal_ok'] else 'MISS':>6}  {accuracy}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.reference.exists():
        raise SystemExit(f"reference loop not found: {args.reference} (see --reference)")
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    started = time.perf_counter()
    today = export(args.baseline_ref)
    rows = []
    for preset in presets:
        row = bench_preset(args, preset, today)
        rows.append(row)
        print(f"  {preset}: {json.dumps(row)}", file=sys.stderr, flush=True)
    print_table(rows)
    report = {
        "bench": "sparse_first_layer",
        "baseline_ref": args.baseline_ref,
        "threads": args.threads,
        "epochs": args.epochs,
        "train_limit": args.train_limit or None,
        "repeats": args.repeats,
        "goal": {"sparse_vs_today_max": GOAL},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "all_ok": all(r["goal_ok"] for r in rows),
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
