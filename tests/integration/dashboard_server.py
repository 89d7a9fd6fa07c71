"""A live dashboard server for the browser tests: finished experiments of the book's chain
(two seeds each, written through the store as a worker writes them, so no training is
needed), a book ablation made of them, and a run whose points keep arriving while the page
is open, behind uvicorn with the strict Content-Security-Policy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from api.app import create_app
from api.services.datasets import load_test_split
from core.presets import BOOK_CHAIN, build_spec
from tests.api.live_server import serving
from tests.api.recorded_runs import RecordedRuns
from tests.integration.browser import require_chromium
from tests.integration.dashboard_page import StrictCsp, embedded_store

SUBSET = {"epochs": 1, "train_limit": 3000, "test_limit": 100}


@dataclass
class LiveServer:
    url: str
    running_id: str
    stop_writing: threading.Event


def curve(points: int, level: float, rng: np.random.Generator) -> list[float]:
    x = np.arange(points)
    noisy = level * np.exp(-x / 60) + 0.05 + 0.03 * rng.random(points)
    return [float(v) for v in noisy]


def populate(runs: RecordedRuns, mnist_dir: Path) -> None:
    labels = load_test_split(mnist_dir.resolve(), "mnist").labels
    rng = np.random.default_rng(0)
    for arm, preset in enumerate(BOOK_CHAIN):
        for seed in (0, 1):
            spec = build_spec(preset, {**SUBSET, "seed": seed})
            steps = [spec.log_every * (i + 1) for i in range(spec.loss_points)]
            predicted = labels[: spec.test_records].copy()
            predicted[rng.random(predicted.size) < 0.3 - 0.05 * arm] = 7
            truth = labels[: spec.test_records].astype(np.int64)
            confusion = np.bincount(truth * 10 + predicted, minlength=100).reshape(10, 10)
            runs.finished_run(
                spec,
                accuracy=0.8 + 0.03 * arm + 0.01 * seed,
                final_loss=0.3 - 0.05 * arm,
                series=(steps, curve(len(steps), 1.0 - 0.15 * arm, rng)),
                predicted=predicted,
                labels=labels,
                name=f"{preset}/{seed}",
                metrics={"confusion_matrix": confusion.tolist()},
            )


@contextmanager
def book_dashboard(root: Path, mnist_dir: Path) -> Iterator[LiveServer]:
    require_chromium()
    settings, engine = embedded_store(root, mnist_dir)
    runs = RecordedRuns(engine)
    populate(runs, mnist_dir)

    spec = build_spec("seed-layernorm", {"epochs": 1, "train_limit": 20_000, "seed": 9})
    running_id, attempt = runs.start(spec, name="live-run")
    stop_writing = threading.Event()

    def worker() -> None:
        # Plays a worker: a flush of 30 points (300 steps) about every 0.3 s.
        step = 0
        while not stop_writing.is_set() and step < spec.total_steps - 300:
            steps = list(range(step + 10, step + 301, 10))
            values = [1.0 / (1 + s / 2000) for s in steps]
            runs.write_points(running_id, attempt, steps, values, spec.total_steps)
            step = steps[-1]
            stop_writing.wait(0.3)

    writer = threading.Thread(target=worker, daemon=True)
    writer.start()
    app = StrictCsp(create_app(settings, lifespan_hooks=[]))
    try:
        with serving(app, settings.port, graceful_shutdown_s=2) as url:
            ablation = httpx.post(
                f"{url}/ablations",
                json={"name": "book", "design": "book", "seeds": 2, "overrides": SUBSET},
            )
            assert ablation.status_code == 201, ablation.text
            assert ablation.json()["created_experiments"] == 0  # every cell reuses a finished run
            yield LiveServer(url, running_id, stop_writing)
    finally:
        stop_writing.set()
        writer.join(timeout=10)
        engine.dispose()
