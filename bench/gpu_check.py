"""The engine on a CUDA machine, in one go: correctness checks, then speed. Every row is printed
(and flushed) as soon as it is measured, so a run cut short still reports what it did.

1. CUDA checks on a subset: CUDA graphs give the eager series bit for bit; fused runs are close
   to the same runs alone; CUDA is close to the CPU; a run stopped on CUDA resumes there bit
   for bit, and its checkpoint resumes on the CPU.
2. One run alone, microseconds per step with and without CUDA graphs, for the five presets:
   (t(long) - t(short)) / (steps(long) - steps(short)), so warm-up and capture cancel out.
   Goal (issue 12): <= 60 us per step with graphs.
3. The book design (the five presets) x 5 seeds, 1 epoch: fused (5 groups of 5 seeds) against
   the 25 runs one after another, each with and without graphs. Runs per second and ratios.
   Goal: fused with graphs >= 10x the runs per second of the 25 runs one after another.
   --design-records below 60,000 measures that many records per epoch; the full-epoch times
   are then extrapolated, and labelled so.

Imports only worker.engine*, core.spec and core.presets (torch, numpy, pydantic; torchvision
not needed). Data: --data-dir (torchvision layout: DIR/MNIST/raw/...), or --mnist-gz DIR holding
gzip'd copies of the four IDX files, unpacked into a temporary folder.

Usage: python3 bench/gpu_check.py --mnist-gz DIR [--quick] [--design-records 20000]
           [--budget-s 500] [--json-out results.jsonl]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
IDX: tuple[str, ...] = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
IDX += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
BOOK = ("seed-baseline", "seed-bce", "seed-leakyrelu", "seed-adam", "seed-layernorm")
START = time.perf_counter()
DEVICE = ["cuda"]  # --device cpu runs the same script here, to check the script itself


def emit(kind: str, out: Path | None, **row: Any) -> None:
    row = {"check": kind, "t_s": round(time.perf_counter() - START, 1), **row}
    print(json.dumps(row, default=str), flush=True)
    if out is not None:
        with out.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")


def unpack(gz_dir: Path) -> Path:
    """DIR/*.gz (or plain IDX files) -> a temporary DIR/MNIST/raw/ layout."""
    root = Path(tempfile.mkdtemp(prefix="mnist-"))
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX:
        packed, plain = gz_dir / f"{name}.gz", gz_dir / name
        if packed.exists():
            with gzip.open(packed, "rb") as src, (raw / name).open("wb") as dst:
                shutil.copyfileobj(src, dst)
        elif plain.exists():
            shutil.copyfile(plain, raw / name)
        else:
            raise SystemExit(f"{packed} not found (need the four MNIST IDX files, gzip'd)")
    return root


def series(spec: Any, data: Path, **kwargs: Any) -> tuple[Any, list[float]]:
    from worker.engine import RunCallbacks, run_training

    values: list[float] = []
    stop = kwargs.pop("should_stop", lambda: False)
    callbacks = RunCallbacks(on_loss=lambda _, v: values.extend(v), should_stop=stop)
    kwargs.setdefault("device", DEVICE[0])
    return run_training(spec, data_dir=data, callbacks=callbacks, **kwargs), values


def out_extender(out: list[float]) -> Callable[[list[int], list[float]], None]:
    """An on_loss callback that collects one run's values into `out`."""
    return lambda _steps, values: out.extend(values)


def max_diff(a: list[float], b: list[float]) -> float:
    import numpy as np

    if len(a) != len(b):
        return float("inf")
    return float(np.max(np.abs(np.array(a) - np.array(b)))) if a else 0.0


def checks(args: argparse.Namespace, data: Path) -> None:
    import numpy as np

    from core.presets import build_spec
    from worker.engine import RunCallbacks, run_training_group

    records = 600 if args.quick else 3000
    for preset in ("seed-baseline", "seed-adam", "seed-layernorm"):
        spec = build_spec(preset, {"epochs": 1, "train_limit": records, "test_limit": 1000})
        graphed, a = series(spec, data)
        eager, b = series(spec, data, cuda_graphs=False)
        cpu, c = series(spec, data, device="cpu", threads=1)
        flushes = {"n": 0}

        def stop_soon(flushes: dict[str, int] = flushes) -> bool:
            flushes["n"] += 1
            return flushes["n"] >= records // 25

        first, head = series(spec, data, flush_interval_s=0.0, should_stop=stop_soon)
        resumed, tail = series(spec, data, resume_from=first.checkpoint)
        exact = head + tail == a and np.array_equal(
            resumed.predictions.outputs, graphed.predictions.outputs
        )
        on_cpu, _ = series(spec, data, device="cpu", threads=1, resume_from=first.checkpoint)
        emit(
            "cuda", args.json_out, preset=preset, steps=spec.total_steps,
            graphs=graphed.fingerprint["cuda_graphs"],
            graphs_equal_eager=a == b, graphs_vs_eager_max_diff=max_diff(a, b),
            outputs_equal=bool(np.array_equal(graphed.predictions.outputs,
                                              eager.predictions.outputs)),
            cuda_close_to_cpu=bool(np.allclose(a, c, rtol=1e-3, atol=1e-5)),
            cuda_vs_cpu_max_diff=max_diff(a, c),
            stopped_at=first.steps, resume_equal=exact,
            cuda_checkpoint_resumes_on_cpu=on_cpu.steps == spec.total_steps,
            accuracy_cuda=graphed.metrics["test_accuracy"],
            accuracy_cpu=cpu.metrics["test_accuracy"],
        )  # fmt: skip
    for preset in ("seed-baseline", "seed-layernorm"):
        specs = [
            build_spec(preset, {"epochs": 1, "train_limit": records, "test_limit": 1000, "seed": s})
            for s in range(5)
        ]
        fused_values: list[list[float]] = [[] for _ in specs]
        calls = [RunCallbacks(on_loss=out_extender(out)) for out in fused_values]
        fused = run_training_group(specs, data_dir=data, callbacks=calls, device=DEVICE[0])
        alone = [series(s, data) for s in specs]
        diffs = [max_diff(f, a) for f, (_, a) in zip(fused_values, alone, strict=True)]
        close = [
            bool(np.allclose(f, a, rtol=1e-3, atol=1e-5))
            for f, (_, a) in zip(fused_values, alone, strict=True)
        ]
        emit(
            "fused_vs_alone_cuda", args.json_out, preset=preset, runs=5,
            fused_runs=fused[0].fingerprint["fused_runs"], close=close, max_diffs=diffs,
            graphs=fused[0].fingerprint["cuda_graphs"],
        )  # fmt: skip


def step_times(args: argparse.Namespace, data: Path) -> None:
    from core.presets import build_spec

    short, long = (500, 1500) if args.quick else (2000, 6000)
    for preset in BOOK:
        row: dict[str, Any] = {"preset": preset}
        for graphs in (True, False):
            seconds = []
            for records in (short, long):
                spec = build_spec(preset, {"epochs": 1, "train_limit": records, "test_limit": 100})
                result, _ = series(spec, data, cuda_graphs=graphs)
                seconds.append(result.metrics["train_seconds"])
            key = "graphs" if graphs else "eager"
            row[f"us_per_step_{key}"] = round((seconds[1] - seconds[0]) / (long - short) * 1e6, 1)
            row[f"us_per_step_{key}_whole_run"] = round(seconds[1] / long * 1e6, 1)
            if graphs:
                row["graphs"] = result.fingerprint["cuda_graphs"]
        row["speedup"] = round(row["us_per_step_eager"] / row["us_per_step_graphs"], 2)
        row["goal_60us_ok"] = row["us_per_step_graphs"] <= 60
        emit("single_run_step", args.json_out, **row)


def design(args: argparse.Namespace, data: Path) -> None:
    from core.presets import build_spec
    from worker.engine import run_training, run_training_group

    seeds = 2 if args.quick else 5
    records = args.design_records
    specs = [
        build_spec(p, {"epochs": 1, "train_limit": records, "seed": s})
        for p in BOOK
        for s in range(seeds)
    ]
    rates: dict[str, float] = {}
    accuracies: dict[str, list[float]] = {}
    # The headline and the baseline first: if the budget runs out, the ratio is there.
    for fused, graphs in ((True, True), (False, False), (False, True), (True, False)):
        name = f"{'fused' if fused else 'sequential'}_{'graphs' if graphs else 'eager'}"
        if time.perf_counter() - START > args.budget_s:
            emit("design", args.json_out, mode=name, skipped="over --budget-s")
            continue
        begin = time.perf_counter()
        if fused:
            results = run_training_group(specs, data_dir=data, cuda_graphs=graphs, device=DEVICE[0])
            groups = {id(r): r.fingerprint["fused_runs"] for r in results}
            # Groups train one after another: each group's time counted once.
            seconds, k = 0.0, 0
            while k < len(results):
                size = results[k].fingerprint["fused_runs"]
                seconds += max(r.metrics["train_seconds"] for r in results[k : k + size])
                k += size
        else:
            results = [
                run_training(s, data_dir=data, cuda_graphs=graphs, device=DEVICE[0]) for s in specs
            ]
            groups = {}
            seconds = sum(r.metrics["train_seconds"] for r in results)
        rates[name] = len(specs) / seconds
        accuracies[name] = [r.metrics["test_accuracy"] for r in results]
        full = seconds * 60_000 / records
        emit(
            "design", args.json_out, mode=name, runs=len(specs), records=records,
            train_seconds=round(seconds, 2), runs_per_second=round(rates[name], 4),
            wall_seconds=round(time.perf_counter() - begin, 1),
            fused_runs=sorted(set(groups.values())) or [1],
            graphs=results[0].fingerprint["cuda_graphs"],
            full_epoch_seconds=round(full, 1),
            full_epoch_seconds_is="measured" if records >= 60_000 else "extrapolated",
            mean_accuracy=round(sum(accuracies[name]) / len(specs), 4),
        )  # fmt: skip
    base = rates.get("sequential_eager")
    for name, rate in rates.items():
        if base:
            emit(
                "design_ratio", args.json_out, mode=name, vs_sequential_eager=round(rate / base, 2)
            )
    if "fused_graphs" in rates and "sequential_graphs" in rates:
        ratio = round(rates["fused_graphs"] / rates["sequential_graphs"], 2)
        emit("design_ratio", args.json_out, mode="fused_graphs", vs_sequential_graphs=ratio)
    if base and "fused_graphs" in rates:
        goal = rates["fused_graphs"] / base >= 10
        emit("goal", args.json_out, fused_graphs_vs_sequential_eager_ge_10=goal)
    if "fused_graphs" in accuracies and "sequential_graphs" in accuracies:
        gap = max(
            abs(a - b)
            for a, b in zip(
                accuracies["fused_graphs"], accuracies["sequential_graphs"], strict=True
            )
        )
        emit("design_accuracy", args.json_out, max_gap_fused_vs_sequential=gap)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, help="torchvision layout: DIR/MNIST/raw/")
    p.add_argument("--mnist-gz", type=Path, help="a folder with the four IDX files, gzip'd")
    p.add_argument("--quick", action="store_true", help="a smoke test, under a minute")
    p.add_argument("--design-records", type=int, help="records per epoch (default 20000)")
    p.add_argument("--budget-s", type=float, default=500.0, help="skip design modes after this")
    p.add_argument("--skip", default="", help="comma-separated: checks,steps,design")
    p.add_argument("--json-out", type=Path, help="append every row here too (JSON lines)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help=argparse.SUPPRESS)
    args = p.parse_args()
    DEVICE[0] = args.device
    args.design_records = args.design_records or (1000 if args.quick else 20_000)
    missing = [m for m in ("numpy", "pydantic") if not _importable(m)]
    if missing:
        raise SystemExit(f"missing Python packages: {', '.join(missing)} (pip install them)")
    import torch

    if args.mnist_gz:
        data = unpack(args.mnist_gz)
    elif args.data_dir:
        data = args.data_dir
    else:
        raise SystemExit("give --mnist-gz DIR or --data-dir DIR")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"no CUDA device (torch {torch.__version__})")
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    emit(
        "device", args.json_out, name=name, torch=torch.__version__,
        cuda=torch.version.cuda, python=sys.version.split()[0], quick=args.quick,
        design_records=args.design_records,
    )  # fmt: skip
    skip = {s.strip() for s in args.skip.split(",")}
    sections = [("checks", checks), ("steps", step_times), ("design", design)]
    for name, section in sections:
        if name in skip:
            continue
        try:
            section(args, data)
        except Exception as exc:  # report and go on: the other sections still tell something
            emit("error", args.json_out, section=name, error=f"{type(exc).__name__}: {exc}")
    emit("done", args.json_out, seconds=round(time.perf_counter() - START, 1))
    return 0


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
