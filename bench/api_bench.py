"""The service's own speed figures, each against its baseline in the same go.

1. End to end: a full 3-epoch `seed-layernorm` submitted through the API to a real worker
   (PostgreSQL + Redis, or the embedded default with --embedded), timed from POST to
   `succeeded`, against the engine alone running the same spec in this process.
   Goal: API time / engine time <= 1.1.
2. `GET /experiments/{id}/loss` on that finished 18,000-point series: p50 of the full curve
   (goal <= 20 ms) and with max_points=500 (goal <= 5 ms), over keep-alive HTTP.

Usage: python bench/api_bench.py --data-dir ../shared/data [--epochs 3] [--embedded]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.integration.stack import Stack, start_embedded, start_production  # noqa: E402

# The deployment's own intervals (api/settings.py defaults), not the tests' short ones: a
# checkpoint every second is right for a test of crash recovery, not for a speed figure.
PRODUCTION_INTERVALS = {
    "TRAINLAB_FLUSH_INTERVAL_S": "1",
    "TRAINLAB_CHECKPOINT_INTERVAL_S": "60",
    "TRAINLAB_HEARTBEAT_TIMEOUT_S": "60",
    "TRAINLAB_REAPER_INTERVAL_S": "10",
}


def engine_alone(overrides: dict[str, object], data_dir: Path) -> float:
    import torch

    from core.presets import build_spec
    from worker.engine import run_training

    torch.set_num_threads(1)
    spec = build_spec("seed-layernorm", overrides)
    started = time.perf_counter()
    run_training(spec, data_dir=data_dir, allow_download=False, device="cpu", threads=1)
    return time.perf_counter() - started


def through_api(stack: Stack, overrides: dict[str, object]) -> tuple[str, float]:
    started = time.perf_counter()
    created = stack.submit({"preset": "seed-layernorm", "overrides": overrides})
    finished = stack.wait_terminal(created["id"], timeout=3600)
    seconds = time.perf_counter() - started
    if finished["status"] != "succeeded":
        raise SystemExit(f"run ended {finished['status']}: {finished['error']}")
    return created["id"], seconds


def latency_ms(stack: Stack, experiment_id: str, params: dict[str, object], n: int) -> list[float]:
    times = []
    with stack.client() as client:
        for i in range(n + 5):
            started = time.perf_counter()
            response = client.get(f"/experiments/{experiment_id}/loss", params=params)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if i >= 5:  # the first few warm the connection and the caches
                times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--embedded", action="store_true", help="SQLite + embedded worker")
    args = parser.parse_args()

    overrides: dict[str, object] = {"epochs": args.epochs, "device": "cpu"}
    if args.train_limit:
        overrides["train_limit"] = args.train_limit
    with tempfile.TemporaryDirectory() as workdir:
        starter = start_embedded if args.embedded else start_production
        # The worker trains at one thread, as the engine alone does here: like for like.
        stack = starter(Path(workdir), settings=PRODUCTION_INTERVALS)
        try:
            engine_s = engine_alone(overrides, args.data_dir)
            experiment_id, api_s = through_api(stack, overrides)
            with stack.client() as client:
                points = len(client.get(f"/experiments/{experiment_id}/loss").json()["steps"])
            full = latency_ms(stack, experiment_id, {}, args.requests)
            reduced = latency_ms(stack, experiment_id, {"max_points": 500}, args.requests)
        finally:
            stack.stop()
    rows = {
        "loss_points": points,
        "mode": "embedded" if args.embedded else "postgres+redis",
        "engine_s": round(engine_s, 2),
        "api_s": round(api_s, 2),
        "api_over_engine": round(api_s / engine_s, 3),
        "loss_full_p50_ms": round(statistics.median(full), 2),
        "loss_full_p95_ms": round(sorted(full)[int(len(full) * 0.95)], 2),
        "loss_500_p50_ms": round(statistics.median(reduced), 2),
        "loss_500_p95_ms": round(sorted(reduced)[int(len(reduced) * 0.95)], 2),
    }
    print(f"{'figure':<20} {'value':>10}  goal")
    goals = {"api_over_engine": "<= 1.1", "loss_full_p50_ms": "<= 20", "loss_500_p50_ms": "<= 5"}
    for key, value in rows.items():
        print(f"{key:<20} {value!s:>10}  {goals.get(key, '')}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
