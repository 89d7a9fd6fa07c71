"""A GAN sweep on the dashboard, in headless Chromium against a live uvicorn server: with a
GAN preset as the base, the sweep form's space lists the GAN's fields (not the classifier's)
and starts a sweep ranked by the judge's Fréchet distance; its card (the runs finished in the
store as a worker finishes them) names that objective, writes it as a distance (lower is
better: the best trial is the one with the lowest), and says the figures are the judge's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.background.sweeps import SweepDriver
from tests.api.live_server import serving
from tests.api.recorded_runs import RecordedRuns, finished_judge
from tests.api.sweep_runs import Sent, finish_gan_runs
from tests.integration.browser import browser_errors, chromium, require_chromium, wait_until
from tests.integration.dashboard_page import StrictCsp, embedded_store, js

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


def _text(driver: Any, selector: str) -> str:
    found: str = js(driver, f"return document.querySelector({selector!r})?.textContent ?? ''")
    return found


def _fill(driver: Any, selector: str, text: str) -> None:
    element = driver.find_element("css selector", selector)
    element.clear()
    element.send_keys(text)


@pytest.fixture
def served(tmp_path: Path, mnist_dir: Path) -> Iterator[tuple[str, Any]]:
    require_chromium()
    settings, engine = embedded_store(tmp_path, mnist_dir)
    finished_judge(RecordedRuns(engine))  # the account's classifier: every trial's judge
    app = StrictCsp(create_app(settings, lifespan_hooks=[]))
    try:
        with serving(app, settings.port, graceful_shutdown_s=2) as url:
            yield url, (engine, settings)
    finally:
        engine.dispose()


def test_a_gan_sweep_from_the_form_to_its_card(served: tuple[str, Any]) -> None:
    url, (engine, settings) = served
    with chromium() as driver:
        driver.set_window_size(1280, 1400)
        driver.get(f"{url}/")
        wait_until(lambda: js(driver, "return document.body.dataset.sweepFormReady"), 20, "form")
        driver.find_element("css selector", "#tab-sweep").click()
        fields = (
            "return [...document.querySelectorAll('#swp-space .sp-field option')].map(o => o.value)"
        )
        assert "lr" in js(driver, fields) and "generator.lr" not in js(driver, fields)
        driver.find_element("css selector", "#swp-preset option[value=gan-mnist]").click()
        wait_until(lambda: "generator.lr" in js(driver, fields), 10, "the GAN's fields")
        assert "lr" not in js(driver, fields) and "judge" not in js(driver, fields)
        row = "#swp-space .space-row"
        driver.find_element("css selector", f"{row} .sp-type option[value=choice]").click()
        _fill(driver, f"{row} .sp-values", "0.0001, 0.5")
        driver.find_element("css selector", "[id='swp-objective'] option[value=frechet]").click()
        driver.find_element("css selector", "[id='swp-sampler'] option[value=grid]").click()
        _fill(driver, "[id='swp-train_limit']", "180")
        _fill(driver, "[id='swp-max_trials']", "2")
        _fill(driver, "[id='swp-seeds']", "2")
        driver.find_element("css selector", "#swp-submit").click()
        wait_until(lambda: "started sweep" in _text(driver, "#swp-result"), 10, "the sweep made")
        made = httpx.get(f"{url}/sweeps").json()["items"][0]
        view = httpx.get(f"{url}/sweeps/{made['id']}").json()
        assert view["base"]["kind"] == "gan" and view["objective"] == "frechet"
        assert view["sampler"] == "grid" and view["maximize"] is False
        assert view["space"] == {"generator.lr": {"type": "choice", "values": [0.0001, 0.5]}}

        driver_ = SweepDriver(engine, Sent(), settings)  # type: ignore[arg-type]
        driver_.drive(made["id"])
        finish_gan_runs(engine, made["id"], {0.0001: 20.0, 0.5: 300.0})
        for _ in range(3):
            driver_.drive(made["id"])
        wait_until(lambda: "succeeded" in _text(driver, "#sweep-status"), 30, "the card to follow")
        best = _text(driver, "#sweep-best-text")
        # The lowest distance is the best, written as a distance, not a percentage.
        assert "generator.lr=1.00e" in best and "Fréchet distance" in best, best
        assert "training images 20.0500 [19.41" in best, best
        assert "judge's" in _text(driver, "#sweep-figures")
        # The runs were finished without outputs or samples (no training here): those 409/404.
        missing = ("/compare/predictions?", "/samples?")
        assert not [e for e in browser_errors(driver) if not any(m in e for m in missing)]
