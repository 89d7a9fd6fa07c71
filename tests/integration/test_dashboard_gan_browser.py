"""A GAN run's card in headless Chromium, against the live embedded stack: a tiny judge
classifier and a tiny GAN train for real, then the page must draw both loss curves, the fixed
seeds' images at the last sample step and, through the slider, at the first, the judge's label
histogram, and a walk of images between two seeds that the server's generator draws (and draws
anew for new seeds), without a console error. A classifier-only page shows no GAN card."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.browser import browser_errors, chromium, ink, screenshot, wait_until
from tests.integration.dashboard_page import charts_without_axis_titles, js
from tests.integration.stack import Stack
from tests.integration.test_gan_live import TINY_GAN

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


def _data(driver: Any, selector: str, key: str) -> str | None:
    found: str | None = js(driver, f"return document.querySelector('{selector}').dataset.{key};")
    return found


def _walk_pixels(driver: Any) -> str:
    found: str = js(driver, "return document.querySelector('#gan-walk').toDataURL();")
    return found


def test_the_gan_card_draws_curves_samples_histogram_and_a_walk(embedded_stack: Stack) -> None:
    stack = embedded_stack
    judge = stack.submit(
        {"preset": "seed-layernorm", "overrides": {"epochs": 1, "train_limit": 500}}
    )
    assert stack.wait_terminal(judge["id"])["status"] == "succeeded"
    with chromium() as driver:
        driver.set_window_size(1280, 1400)
        driver.get(stack.base_url + "/")
        wait_until(lambda: ink(driver, "#curves") > 0, 20, "the classifier's curve")
        assert js(driver, "return document.querySelector('#gan-card').hidden;") is True

        gan = stack.submit({"preset": "gan-mnist", "overrides": TINY_GAN})
        assert stack.wait_terminal(gan["id"])["status"] == "succeeded"
        wait_until(
            lambda: _data(driver, "#gan-walk", "images") == "8", 30, "the walk between two seeds"
        )
        assert js(driver, "return document.querySelector('#gan-card').hidden;") is False
        assert ink(driver, "#gan-curves") > 0
        legend = js(driver, "return document.querySelector('#gan-curves-legend').textContent;")
        assert "discriminator" in legend and "generator" in legend
        assert _data(driver, "#gan-samples", "images") == "16"
        assert driver.find_element("css selector", "#gan-step-value").text == "step 200"
        assert int(_data(driver, "#gan-histogram", "drawn") or 0) > 0
        assert "entropy" in driver.find_element("css selector", "#gan-histogram-note").text

        # The slider goes back to the first sample step; its images are drawn again.
        js(
            driver,
            "const s = document.querySelector('#gan-step'); s.value = '0';"
            "s.dispatchEvent(new Event('input'));",
        )
        wait_until(
            lambda: driver.find_element("css selector", "#gan-step-value").text == "step 100",
            10,
            "the first sample step",
        )
        # New seeds: the server draws a different walk.
        before = _walk_pixels(driver)
        driver.find_element("css selector", "#gan-new-seeds").click()
        wait_until(lambda: _walk_pixels(driver) != before, 20, "a walk between new seeds")
        screenshot(driver, "dashboard-gan.png")
        assert charts_without_axis_titles(driver) == []
        assert browser_errors(driver) == []
