"""The dashboard in headless Chromium against a live uvicorn server: finished experiments, a
book ablation made of them, and a run whose points keep arriving while the page is open.
Checks that curves, the digit, the output bars, the forest plot and the confusion heatmap are
really drawn (canvas pixels) with axis titles, that the summary table is filled, that live
updates redraw, that the page fits a 1280 px window, that the forms create what they say and
that the drawing pad makes an MNIST-like input; saves screenshots to test-artifacts/. The
page is served under a strict Content-Security-Policy, and no test may see a console error.

Runs are written through the store as a worker writes them, so no training is needed here;
tests/integration/test_dashboard_live.py creates and runs an ablation with a real worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from api.app import create_app
from api.services.datasets import load_test_split
from core.presets import BOOK_CHAIN, build_spec
from tests.api.live_server import serving
from tests.api.recorded_runs import RecordedRuns
from tests.integration.browser import (
    browser_errors,
    chromium,
    ink,
    require_chromium,
    screenshot,
    wait_until,
)
from tests.integration.dashboard_page import (
    StrictCsp,
    charts_without_axis_titles,
    draw_stroke,
    embedded_store,
    js,
    layout,
    pad_pixels,
)

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
            truth = labels[: spec.test_records].astype(np.int64)
            confusion = np.bincount(truth * 10 + predicted, minlength=100).reshape(10, 10)
            runs.finished_run(
                spec,
                accuracy=0.8 + 0.03 * arm + 0.01 * seed,
                final_loss=0.3 - 0.05 * arm,
                series=(steps, _curve(len(steps), 1.0 - 0.15 * arm, rng)),
                predicted=predicted,
                labels=labels,
                name=f"{preset}/{seed}",
                metrics={"confusion_matrix": confusion.tolist()},
            )


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Iterator[LiveServer]:
    require_chromium()
    root = tmp_path_factory.mktemp("dashboard")
    settings, engine = embedded_store(root, mnist_dir)
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
        # The forest plot: one row per successive comparison; the heatmap of a ticked run.
        wait_until(lambda: ink(driver, "#forest") > 500, 30, "the forest plot")
        # At least a mean mark per comparison (4 successive ones) and per-record intervals.
        marks = _js(driver, "return Number(document.querySelector('#forest').dataset.drawn)")
        assert isinstance(marks, int) and marks >= 8
        wait_until(lambda: ink(driver, "#confusion") > 2000, 30, "the confusion heatmap")
        assert _js(driver, "return document.querySelector('#confusion').dataset.xTitle") == (
            "predicted label"
        )
        assert charts_without_axis_titles(driver) == []
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
            lambda: int(_js(driver, "return window.trainlab.changeEvents || 0")) >= 1,  # type: ignore[call-overload]
            15,
            "the change feed's first event",
        )
        time.sleep(2.5)  # the refresh that first event asked for is done
        _js(driver, "performance.clearResourceTimings(); return 0")
        time.sleep(6.5)  # three refreshes on the old 2 s timer
        assert _js(driver, LIST_FETCHES) == 0
        made = httpx.post(
            f"{live_server.url}/experiments",
            json={"preset": "seed-adam", "overrides": SUBSET, "name": "made elsewhere"},
        )
        assert made.status_code == 201, made.text
        row = f"return !!document.querySelector('tr[data-id=\"{made.json()['id']}\"]')"
        wait_until(lambda: bool(_js(driver, row)), 10, "the new run in the list")
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
