"""The dashboard's forms and lists in headless Chromium against a live uvicorn server
(tests/integration/dashboard_server.py): the forms create the experiment and the ablations
they say (a grid, a GAN's variants) and refuse what the server refuses, and the lists follow
the change feed, fetching nothing while nothing changes. No test may see a console error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.browser import browser_errors, chromium, ink, screenshot, wait_until
from tests.integration.dashboard_page import js
from tests.integration.dashboard_server import SUBSET, LiveServer, book_dashboard

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Iterator[LiveServer]:
    with book_dashboard(tmp_path_factory.mktemp("dashboard"), mnist_dir) as server:
        yield server


def _fill(driver: object, selector: str, text: str) -> None:
    element = driver.find_element("css selector", selector)  # type: ignore[attr-defined]
    element.clear()
    element.send_keys(text)


def _start_ablation(driver: object) -> None:
    driver.find_element("css selector", "#abl-submit").click()  # type: ignore[attr-defined]
    wait_until(
        lambda: (
            "started ablation"
            in js(driver, "return document.querySelector('#abl-result').textContent")
        ),
        10,
        "the ablation started",
    )


def test_forms_create_an_experiment_and_a_grid_ablation(live_server: LiveServer) -> None:
    with chromium() as driver:
        driver.get(live_server.url + "/")
        wait_until(
            lambda: js(driver, "return document.body.dataset.formsReady") == "true", 20, "forms"
        )
        # Bounds come from the spec's schema: 1000 epochs is refused before anything is sent.
        _fill(driver, "[id='exp-epochs']", "1000")
        driver.find_element("css selector", "#exp-submit").click()
        result = js(driver, "return document.querySelector('#exp-result').textContent")
        assert "epochs: 1000 is out of bounds (1 ≤ epochs ≤ 100)" in result
        assert js(driver, "return document.querySelector('[id=\"exp-epochs\"]').className") == (
            "invalid"
        )
        before = httpx.get(f"{live_server.url}/experiments?limit=200").json()["items"]
        _fill(driver, "[id='exp-epochs']", "1")
        _fill(driver, "[id='exp-train_limit']", "300")
        _fill(driver, "#exp-name", "from the form")
        driver.find_element("css selector", "[id='exp-optimizer'] option[value=adam]").click()
        driver.find_element("css selector", "#exp-submit").click()
        wait_until(
            lambda: (
                "submitted experiment"
                in js(driver, "return document.querySelector('#exp-result').textContent")
            ),
            10,
            "the experiment submitted",
        )
        after = httpx.get(f"{live_server.url}/experiments", params={"q": "from the form"}).json()
        (made,) = after["items"]
        assert len(before) + 1 == len(
            httpx.get(f"{live_server.url}/experiments?limit=200").json()["items"]
        )
        assert (made["spec"]["optimizer"], made["spec"]["epochs"], made["spec"]["train_limit"]) == (
            "adam",
            1,
            300,
        )
        assert made["spec"]["lr"] == 0.001  # untouched knobs keep their defaults

        driver.find_element("css selector", "#tab-ablation").click()
        driver.find_element("css selector", "input[name=design][value=grid]").click()
        _fill(driver, "#abl-seeds", "1")
        _fill(driver, "#abl-name", "grid from the form")
        _fill(driver, "[id='abl-train_limit']", "200")
        driver.find_element("css selector", "input[data-vary=loss]").click()
        for level in ("mse", "bce"):
            driver.find_element("css selector", f"input[data-level=loss][value={level}]").click()
        driver.find_element("css selector", "input[data-vary=lr]").click()
        _fill(driver, "input[data-levels=lr]", "0.01, 0.1")
        _start_ablation(driver)
        ablations = httpx.get(f"{live_server.url}/ablations").json()["items"]
        grid = next(a for a in ablations if a["name"] == "grid from the form")
        labels = [a["label"] for a in grid["arms"]]
        assert labels == [
            "loss=mse, lr=0.01",
            "loss=mse, lr=0.1",
            "loss=bce, lr=0.01",
            "loss=bce, lr=0.1",
        ]
        detail = httpx.get(f"{live_server.url}/ablations/{grid['id']}").json()
        assert {a["spec"]["train_limit"] for a in detail["arms"]} == {200}
        # The new ablation is the one the page now shows.
        wait_until(
            lambda: js(driver, "return window.trainlab.ablation") == grid["id"], 10, "selected"
        )
        # A refusal from the server is shown field by field.
        driver.find_element("css selector", "input[data-level=loss][value=mse]").click()
        driver.find_element("css selector", "input[data-level=loss][value=cross_entropy]").click()
        driver.find_element("css selector", "#abl-submit").click()
        wait_until(
            lambda: (
                "model.output"
                in js(driver, "return document.querySelector('#abl-result').textContent")
            ),
            10,
            "the server's 422 shown",
        )
        screenshot(driver, "dashboard-forms.png")
        errors = [e for e in browser_errors(driver) if "/ablations - Failed to load" not in e]
        assert not errors  # the 422 itself is logged by the browser as a failed request


LIST_FETCHES = (
    "return performance.getEntriesByType('resource')"
    ".filter(e => e.name.includes('/experiments?')).length"
)


def test_lists_follow_the_change_feed_and_stay_quiet_while_nothing_changes(
    live_server: LiveServer,
) -> None:
    live_server.stop_writing.set()  # nothing changes now but what this test does
    with chromium() as driver:
        driver.get(live_server.url + "/")
        wait_until(lambda: ink(driver, "#curves") > 2000, 30, "loss curves")
        wait_until(
            lambda: int(js(driver, "return window.trainlab.changeEvents || 0")) >= 1,
            15,
            "the change feed's first event",
        )
        time.sleep(2.5)  # the refresh that first event asked for is done
        js(driver, "performance.clearResourceTimings(); return 0")
        time.sleep(6.5)  # three refreshes on the old 2 s timer
        assert js(driver, LIST_FETCHES) == 0
        made = httpx.post(
            f"{live_server.url}/experiments",
            json={"preset": "seed-adam", "overrides": SUBSET, "name": "made elsewhere"},
        )
        assert made.status_code == 201, made.text
        row = f"return !!document.querySelector('tr[data-id=\"{made.json()['id']}\"]')"
        wait_until(lambda: bool(js(driver, row)), 10, "the new run in the list")
        assert not browser_errors(driver)


def test_the_form_starts_a_variants_ablation_of_a_gan(live_server: LiveServer) -> None:
    """design=variants on the page: a GAN preset as the base, one arm per line in the CLI's
    --variant syntax (label, KEY=VALUE with JSON values); a line that is not KEY=VALUE is
    refused on the page before anything is sent."""
    with chromium() as driver:
        driver.get(live_server.url + "/")
        wait_until(
            lambda: js(driver, "return document.body.dataset.formsReady") == "true", 20, "forms"
        )
        driver.find_element("css selector", "#tab-ablation").click()
        driver.find_element("css selector", "input[name=design][value=variants]").click()
        assert driver.find_element("css selector", "#abl-variants").is_displayed()
        assert not driver.find_element("css selector", "#abl-grid").is_displayed()
        driver.find_element("css selector", "#abl-vbase option[value=gan-mnist]").click()
        _fill(driver, "#abl-seeds", "2")
        _fill(driver, "#abl-name", "gan variants from the form")
        _fill(driver, "[id='abl-train_limit']", "200")
        _fill(driver, "#abl-variant-lines", "rand1 latent=uniform latent_size\n")
        before = len(httpx.get(f"{live_server.url}/ablations").json()["items"])
        driver.find_element("css selector", "#abl-submit").click()
        shown = js(driver, "return document.querySelector('#abl-result').textContent")
        assert 'line 1: "latent_size" is not key=value' in shown
        assert len(httpx.get(f"{live_server.url}/ablations").json()["items"]) == before
        _fill(
            driver,
            "#abl-variant-lines",
            "rand1 latent=uniform latent_size=1 generator.widths=[1,200,784]\n\nloss=mse\n",
        )
        _start_ablation(driver)
        ablations = httpx.get(f"{live_server.url}/ablations").json()["items"]
        made = next(a for a in ablations if a["name"] == "gan variants from the form")
        detail = httpx.get(f"{live_server.url}/ablations/{made['id']}").json()
        assert [a["label"] for a in detail["arms"]] == ["base", "rand1", "loss=mse"]
        rand1 = detail["arms"][1]["spec"]
        assert (rand1["latent"], rand1["latent_size"], rand1["generator"]["widths"]) == (
            "uniform",
            1,
            [1, 200, 784],
        )
        assert detail["arms"][2]["spec"]["loss"] == "mse"
        assert {a["spec"]["train_limit"] for a in detail["arms"]} == {200}
        assert detail["design"] == "variants" and detail["seeds"] == [0, 1]
