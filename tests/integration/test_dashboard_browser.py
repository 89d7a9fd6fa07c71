"""The dashboard in headless Chromium against a live uvicorn server: finished experiments, a
book ablation made of them, and a run whose points keep arriving while the page is open.
Checks that curves, the digit and the output bars are really drawn (canvas pixels), that the
summary table is filled, that live updates redraw, and saves a screenshot to test-artifacts/.

Runs are written through the store as a worker writes them, so no training is needed here;
tests/integration/test_ablation_live.py does the same against a real worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from api.app import create_app
from api.services.datasets import load_test_split
from core.presets import BOOK_CHAIN, build_spec
from core.store.migrate import upgrade_to_head
from core.store.session import make_engine
from tests.api.recorded_runs import RecordedRuns
from tests.conftest import make_settings
from tests.integration.browser import (
    browser_errors,
    chromium,
    ink,
    require_chromium,
    screenshot,
    wait_until,
)
from tests.integration.stack import free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

SUBSET = {"epochs": 1, "train_limit": 3000, "test_limit": 100}


@dataclass
class LiveServer:
    url: str
    running_id: str
    stop_writing: threading.Event


def _curve(points: int, level: float, rng: np.random.Generator) -> list[float]:
    x = np.arange(points)
    noisy = level * np.exp(-x / 60) + 0.05 + 0.03 * rng.random(points)
    return [float(v) for v in noisy]


def _populate(runs: RecordedRuns, mnist_dir: Path) -> None:
    labels = load_test_split(mnist_dir.resolve(), "mnist").labels
    rng = np.random.default_rng(0)
    for arm, preset in enumerate(BOOK_CHAIN):
        for seed in (0, 1):
            spec = build_spec(preset, {**SUBSET, "seed": seed})
            steps = [spec.log_every * (i + 1) for i in range(spec.loss_points)]
            predicted = labels[: spec.test_records].copy()
            predicted[rng.random(predicted.size) < 0.3 - 0.05 * arm] = 7
            runs.finished_run(
                spec,
                accuracy=0.8 + 0.03 * arm + 0.01 * seed,
                final_loss=0.3 - 0.05 * arm,
                series=(steps, _curve(len(steps), 1.0 - 0.15 * arm, rng)),
                predicted=predicted,
                labels=labels,
                name=f"{preset}/{seed}",
            )


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Iterator[LiveServer]:
    require_chromium()
    root = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    settings = make_settings(
        database_url=f"sqlite:///{root / 'trainlab.db'}",
        broker_url=f"sqla+sqlite:///{root / 'broker.db'}",
        state_dir=root / "state",
        data_dir=mnist_dir,
        port=port,
    )
    upgrade_to_head(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    runs = RecordedRuns(engine)
    _populate(runs, mnist_dir)

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
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, lifespan_hooks=[]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(url), 30, "uvicorn to serve")
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
        server.should_exit = True
        serving.join(timeout=15)
        engine.dispose()


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _js(driver: object, script: str) -> object:
    return driver.execute_script(script)  # type: ignore[attr-defined]


def test_dashboard_draws_curves_record_bars_and_summary(live_server: LiveServer) -> None:
    with chromium() as driver:
        driver.get(live_server.url + "/")
        wait_until(lambda: ink(driver, "#curves") > 2000, 30, "overlaid loss curves")
        wait_until(lambda: ink(driver, "#arm-curves") > 2000, 30, "ablation arm curves")
        wait_until(lambda: ink(driver, "#digit") > 2000, 30, "the digit of record 19")
        wait_until(lambda: ink(driver, "#bars-0") > 200, 30, "output bars")
        assert _js(driver, "return document.querySelector('#digit-label').textContent") == (
            "record 19: a 4"
        )
        bars = _js(driver, "return document.querySelectorAll('#bars canvas').length")
        assert isinstance(bars, int) and bars >= 1
        summary_rows = _js(driver, "return document.querySelectorAll('#summary tbody tr').length")
        assert summary_rows == len(BOOK_CHAIN)
        first_row = _js(driver, "return document.querySelector('#summary tbody tr').textContent")
        assert isinstance(first_row, str) and "seed-baseline" in first_row and "[" in first_row
        status = _js(
            driver,
            f'return document.querySelector(\'tr[data-id="{live_server.running_id}"] '
            ".status').textContent",
        )
        assert status == "running"
        # The running experiment is among the overlaid curves and streams its points.
        selected = _js(driver, "return [...window.trainlab.selected]")
        assert isinstance(selected, list) and live_server.running_id in selected
        wait_until(lambda: _js(driver, "return window.trainlab.streams.size") == 1, 15, "SSE")
        renders = _js(driver, "return window.trainlab.renders")
        assert isinstance(renders, int)
        wait_until(
            lambda: int(_js(driver, "return window.trainlab.renders")) >= renders + 2,  # type: ignore[call-overload]
            20,
            "live redraws from the event stream",
        )
        screenshot(driver, "dashboard.png")
        assert not browser_errors(driver)


def test_smoothing_slider_and_selection_redraw(live_server: LiveServer) -> None:
    with chromium() as driver:
        driver.get(live_server.url + "/")
        wait_until(lambda: ink(driver, "#curves") > 2000, 30, "loss curves")
        live_server.stop_writing.set()  # hold the data still: only the slider changes now
        time.sleep(1.5)
        before = ink(driver, "#curves")
        renders = int(_js(driver, "return window.trainlab.renders"))  # type: ignore[call-overload]
        _js(
            driver,
            "const s = document.querySelector('#smoothing'); s.value = '0';"
            "s.dispatchEvent(new Event('input'));",
        )
        wait_until(
            lambda: int(_js(driver, "return window.trainlab.renders")) > renders,  # type: ignore[call-overload]
            10,
            "a redraw after moving the slider",
        )
        assert (
            _js(driver, "return document.querySelector('#smoothing-value').textContent") == "0.00"
        )
        # Unsmoothed noisy curves cover more pixels than smoothed ones.
        assert ink(driver, "#curves") > before
        rows = _js(driver, "return document.querySelectorAll('#experiments tbody tr').length")
        assert isinstance(rows, int) and rows >= 11
        # Untick everything but one: the overlay shrinks to that one curve.
        for experiment_id in list(_js(driver, "return [...window.trainlab.selected]"))[1:]:  # type: ignore[call-overload]
            driver.find_element("css selector", f'tr[data-id="{experiment_id}"] input').click()
        wait_until(
            lambda: _js(driver, "return window.trainlab.selected.size") == 1, 10, "one selected"
        )
        legend = _js(driver, "return document.querySelectorAll('#curves-legend span').length")
        wait_until(
            lambda: (
                _js(driver, "return document.querySelectorAll('#curves-legend span').length") == 1
            ),
            10,
            f"a one-curve legend (was {legend})",
        )
        screenshot(driver, "dashboard-one-curve.png")
