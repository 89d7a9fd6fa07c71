"""The dashboard in headless Chromium against a live uvicorn server (tests/integration/
dashboard_server.py: finished experiments, a book ablation made of them, and a run whose
points keep arriving while the page is open). Checks that curves, the digit, the output
bars, the forest plot and the confusion heatmap are really drawn (canvas pixels) with axis
titles, that the summary table is filled, that live updates redraw, that the page fits a
1280 px window and that the drawing pad makes an MNIST-like input; saves screenshots to
test-artifacts/. The page is served under a strict Content-Security-Policy, and no test may
see a console error. The forms and the lists: test_dashboard_forms_browser.py;
tests/integration/test_dashboard_live.py creates and runs an ablation with a real worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.presets import BOOK_CHAIN
from tests.integration.browser import browser_errors, chromium, ink, screenshot, wait_until
from tests.integration.dashboard_page import (
    charts_without_axis_titles,
    draw_stroke,
    js,
    layout,
    pad_pixels,
)
from tests.integration.dashboard_server import LiveServer, book_dashboard

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Iterator[LiveServer]:
    with book_dashboard(tmp_path_factory.mktemp("dashboard"), mnist_dir) as server:
        yield server


def test_dashboard_draws_curves_record_bars_and_summary(live_server: LiveServer) -> None:
    with chromium() as driver:
        driver.get(live_server.url + "/")
        wait_until(lambda: ink(driver, "#curves") > 2000, 30, "overlaid loss curves")
        wait_until(lambda: ink(driver, "#arm-curves") > 2000, 30, "ablation arm curves")
        wait_until(lambda: ink(driver, "#digit") > 2000, 30, "the digit of record 19")
        wait_until(lambda: ink(driver, "#bars-0") > 200, 30, "output bars")
        assert js(driver, "return document.querySelector('#digit-label').textContent") == (
            "record 19: a 4"
        )
        bars = js(driver, "return document.querySelectorAll('#bars canvas').length")
        assert isinstance(bars, int) and bars >= 1
        summary_rows = js(driver, "return document.querySelectorAll('#summary tbody tr').length")
        assert summary_rows == len(BOOK_CHAIN)
        # The forest plot: one row per successive comparison; the heatmap of a ticked run.
        wait_until(lambda: ink(driver, "#forest") > 500, 30, "the forest plot")
        # At least a mean mark per comparison (4 successive ones) and per-record intervals.
        marks = js(driver, "return Number(document.querySelector('#forest').dataset.drawn)")
        assert isinstance(marks, int) and marks >= 8
        wait_until(lambda: ink(driver, "#confusion") > 2000, 30, "the confusion heatmap")
        assert js(driver, "return document.querySelector('#confusion').dataset.xTitle") == (
            "predicted label"
        )
        assert charts_without_axis_titles(driver) == []
        first_row = js(driver, "return document.querySelector('#summary tbody tr').textContent")
        assert isinstance(first_row, str) and "seed-baseline" in first_row and "[" in first_row
        status = js(
            driver,
            f'return document.querySelector(\'tr[data-id="{live_server.running_id}"] '
            ".status').textContent",
        )
        assert status == "running"
        # The running experiment is among the overlaid curves and streams its points.
        selected = js(driver, "return [...window.trainlab.selected]")
        assert isinstance(selected, list) and live_server.running_id in selected
        wait_until(lambda: js(driver, "return window.trainlab.streams.size") == 1, 15, "SSE")
        renders = js(driver, "return window.trainlab.renders")
        assert isinstance(renders, int)
        wait_until(
            lambda: int(js(driver, "return window.trainlab.renders")) >= renders + 2,
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
        renders = int(js(driver, "return window.trainlab.renders"))
        js(
            driver,
            "const s = document.querySelector('#smoothing'); s.value = '0';"
            "s.dispatchEvent(new Event('input'));",
        )
        wait_until(
            lambda: int(js(driver, "return window.trainlab.renders")) > renders,
            10,
            "a redraw after moving the slider",
        )
        assert js(driver, "return document.querySelector('#smoothing-value').textContent") == "0.00"
        # Unsmoothed noisy curves cover more pixels than smoothed ones.
        assert ink(driver, "#curves") > before
        rows = js(driver, "return document.querySelectorAll('#experiments tbody tr').length")
        assert isinstance(rows, int) and rows >= 11
        # Untick everything but one: the overlay shrinks to that one curve.
        for experiment_id in list(js(driver, "return [...window.trainlab.selected]"))[1:]:
            driver.find_element("css selector", f'tr[data-id="{experiment_id}"] input').click()
        wait_until(
            lambda: js(driver, "return window.trainlab.selected.size") == 1, 10, "one selected"
        )
        legend = js(driver, "return document.querySelectorAll('#curves-legend span').length")
        wait_until(
            lambda: (
                js(driver, "return document.querySelectorAll('#curves-legend span').length") == 1
            ),
            10,
            f"a one-curve legend (was {legend})",
        )
        screenshot(driver, "dashboard-one-curve.png")


def test_layout_fits_1280_pixels(live_server: LiveServer) -> None:
    with chromium() as driver:
        driver.set_window_size(1280, 800)
        driver.get(live_server.url + "/")
        wait_until(lambda: ink(driver, "#forest") > 500, 30, "the page filled in")
        found = layout(driver)
        assert found["innerWidth"] == 1280, found
        assert found["scrollWidth"] <= 1280, found  # no horizontal scrolling
        # The accuracy column is on screen, whole, and its table does not scroll sideways.
        assert found["accuracyRight"] <= 1280 and found["accuracyWidth"] >= 60, found
        assert found["tableOverflow"] <= 0 and found["cutHeaders"] == [], found
        # Every finished run's accuracy is shown whole, on screen ("93.00%").
        assert len(found["accuracies"]) == 10, found
        assert all(a.endswith("%") for a in found["accuracies"]), found
        screenshot(driver, "dashboard-1280.png")
        assert not browser_errors(driver)


def test_compare_toggle_redraws_the_forest_and_charts_export_as_png(
    live_server: LiveServer,
) -> None:
    with chromium() as driver:
        driver.get(live_server.url + "/")
        wait_until(lambda: ink(driver, "#forest") > 500, 30, "the forest plot")
        assert js(driver, "return document.querySelector('#summary-vs').textContent") == (
            "vs arm before"
        )
        assert "compare=successive" in js(
            driver, "return document.querySelector('#summary-csv').href"
        )
        driver.find_element("css selector", "input[name=compare][value=reference]").click()
        wait_until(
            lambda: (
                js(driver, "return document.querySelector('#summary-vs').textContent") == "vs arm 0"
            ),
            15,
            "the reference comparison",
        )
        assert "compare=reference" in js(
            driver, "return document.querySelector('#summary-csv').href"
        )
        driver.find_element("css selector", "#forest-png").click()
        wait_until(lambda: js(driver, "return window.trainlab.lastExport") is not None, 10, "PNG")
        saved = js(driver, "return window.trainlab.lastExport")
        assert saved["type"] == "image/png" and saved["size"] > 2000
        assert saved["name"].startswith("forest-") and saved["name"].endswith("-reference.png")
        screenshot(driver, "dashboard-reference.png")
        assert not browser_errors(driver)


def test_drawing_pad_makes_an_mnist_like_input(live_server: LiveServer) -> None:
    with chromium() as driver:
        driver.get(live_server.url + "/")
        wait_until(lambda: js(driver, "return !!window.trainlab.pad"), 15, "the pad")
        # The lists drawn first, and the pad in the middle of the view: on a loaded machine a
        # list arriving mid-stroke moved the page under the pointer.
        wait_until(lambda: js(driver, "return window.trainlab.experiments.length > 0"), 20, "lists")
        js(driver, "document.querySelector('#pad').scrollIntoView({block: 'center'})")
        # A vertical bar, drawn off-centre in the upper left of the pad.
        draw_stroke(driver, "#pad", [(-60, -100), (-60, -60), (-58, -20), (-56, 10)])
        wait_until(lambda: sum(pad_pixels(driver)) > 5, 20, "the stroke sampled")
        pixels = np.array(pad_pixels(driver)).reshape(28, 28)
        assert pixels.min() >= 0.0 and pixels.max() <= 1.0 and pixels.max() > 0.9
        rows, cols = np.nonzero(pixels > 0.05)
        # Scaled so the longer side is 20 px, and moved so its centre of mass is the centre.
        assert rows.max() - rows.min() + 1 == 20 and cols.max() - cols.min() + 1 < 20
        mass = pixels.sum()
        centre = ((pixels.sum(axis=1) * (np.arange(28) + 0.5)).sum() / mass,
                  (pixels.sum(axis=0) * (np.arange(28) + 0.5)).sum() / mass)  # fmt: skip
        assert abs(centre[0] - 14) <= 1 and abs(centre[1] - 14) <= 1, centre
        assert ink(driver, "#pad-preview") > 1000
        driver.find_element("css selector", "#pad-clear").click()
        assert sum(pad_pixels(driver)) == 0
        # These runs were written without a model, so no predict call can succeed here
        # (test_dashboard_live.py asks real models); the pad itself must log nothing else.
        assert [e for e in browser_errors(driver) if "/predict - " not in e] == []
