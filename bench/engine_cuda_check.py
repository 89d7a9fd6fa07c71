"""Checks of the engine on a CUDA machine (CI has no GPU, so these are not in the test suite).

For three presets on a subset: a repeated CUDA run gives the same series; the hand-written
step agrees with autograd on CUDA; CUDA and CPU series agree to rounding; a run stopped on
CUDA resumes there bit for bit, and its checkpoint resumes on the CPU. Then the per-step time
of both step implementations on CUDA.

Usage: python bench/engine_cuda_check.py [--data-dir ../shared/data] [--train-limit 3000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.presets import build_spec  # noqa: E402
from core.spec import ExperimentSpec  # noqa: E402
from worker.engine import (  # noqa: E402
    RunCallbacks,
    RunResult,
    run_training,
)

PRESETS = ("seed-baseline", "seed-adam", "seed-layernorm")


def series_run(
    spec: ExperimentSpec, data_dir: Path, **kwargs: Any
) -> tuple[RunResult, np.ndarray[Any, Any]]:
    values: list[float] = []
    kwargs.setdefault("device", "cuda")
    callbacks = RunCallbacks(
        on_loss=lambda _, v: values.extend(v),
        should_stop=kwargs.pop("should_stop", lambda: False),
    )
    result = run_training(spec, data_dir=data_dir, callbacks=callbacks, **kwargs)
    return result, np.array(values)


def check(preset: str, data_dir: Path, train_limit: int) -> bool:
    spec = build_spec(preset, {"epochs": 1, "train_limit": train_limit, "test_limit": 1000})
    first, a = series_run(spec, data_dir)
    _, again = series_run(spec, data_dir)
    _, slow = series_run(spec, data_dir, fast_path=False)
    _, cpu = series_run(spec, data_dir, device="cpu")
    flushes = {"n": 0}

    def stop_at_50() -> bool:
        flushes["n"] += 1
        return flushes["n"] >= 50

    stopped, head = series_run(spec, data_dir, flush_interval_s=0.0, should_stop=stop_at_50)
    _, tail = series_run(spec, data_dir, resume_from=stopped.checkpoint)
    on_cpu, _ = series_run(spec, data_dir, device="cpu", resume_from=stopped.checkpoint)
    checks = {
        "repeat identical": bool(np.array_equal(a, again)),
        "fast ~ autograd": bool(np.allclose(a, slow, rtol=1e-4, atol=1e-6)),
        "cuda ~ cpu": bool(np.allclose(a, cpu, rtol=1e-3, atol=1e-5)),
        "resume identical": bool(np.array_equal(np.concatenate([head, tail]), a)),
        "cuda checkpoint resumes on cpu": on_cpu.steps == spec.total_steps,
    }
    print(
        f"{preset}: accuracy {first.metrics['test_accuracy']:.4f}, "
        f"fast-autograd {np.abs(a - slow).max():.1e}, cuda-cpu {np.abs(a - cpu).max():.1e}, "
        + ", ".join(f"{name}: {'ok' if ok else 'FAIL'}" for name, ok in checks.items()),
        flush=True,
    )
    return all(checks.values())


def speed(preset: str, data_dir: Path) -> None:
    spec = build_spec(preset, {"epochs": 1, "train_limit": 10_000})
    per_step = []
    for fast in (True, False):
        result, _ = series_run(spec, data_dir, fast_path=fast)
        per_step.append(result.metrics["train_seconds"] / result.steps * 1e6)
    print(f"{preset}: fast {per_step[0]:.0f} us/step, autograd {per_step[1]:.0f} us/step")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--train-limit", type=int, default=3000)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    ok = all([check(p, args.data_dir, args.train_limit) for p in PRESETS])
    for preset in PRESETS:
        speed(preset, args.data_dir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
