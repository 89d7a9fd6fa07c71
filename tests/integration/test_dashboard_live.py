"""The dashboard against a real stack (`trainlab serve` with its embedded worker, SQLite): an
ablation is created from the page's form and really trains; the page then shows its forest
plot (one seed: per-record intervals), a confusion heatmap, fits 1280 px, and the drawing pad
asks the trained models about a digit drawn with the mouse. Screenshots go to test-artifacts/.

The pad's last step needs POST /experiments/{id}/predict, which comes from another branch:
until the server has it, that test skips, saying so."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.browser import (
    browser_errors,
    chromium,
    click,
    ink,
    screenshot,
    wait_until,
)
from tests.integration.dashboard_page import (
    charts_without_axis_titles,
    draw_stroke,
    js,
    layout,
    pad_pixels,
)
from tests.integration.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

PREDICT = "/experiments/{experiment_id}/predict"
NAME = "book from the form"
ROW_STATUS = (
    'const row = document.querySelector(`#ablations tr[data-id="${arguments[0]}"]`);'
    "return row ? row.querySelector('.status').textContent : '';"
)


def _fill(driver: Any, selector: str, text: str) -> None:
    element = driver.find_element("css selector", selector)
    element.clear()
    element.send_keys(text)


@pytest.fixture(scope="module")
def ablation(embedded_stack: Stack) -> dict[str, Any]:
    """The book ablation, started from the form (1 seed, tiny subsets), run to the end."""
    with chromium() as driver:
        driver.get(embedded_stack.base_url + "/")
        wait_until(
            lambda: js(driver, "return document.body.dataset.formsReady") == "true", 30, "forms"
        )
        driver.find_element("css selector", "#tab-ablation").click()
        _fill(driver, "#abl-seeds", "1")
        _fill(driver, "#abl-name", NAME)
        for knob, value in (("epochs", "1"), ("train_limit", "300"), ("test_limit", "200")):
            _fill(driver, f"[id='abl-{knob}']", value)
        driver.find_element("css selector", "#abl-submit").click()
        wait_until(
            lambda: (
                "started ablation"
                in js(driver, "return document.querySelector('#abl-result').textContent")
            ),
            20,
            "the ablation started",
        )
        ablation_id = js(driver, "return window.trainlab.ablation")
        # The page follows it while the worker runs it.
        wait_until(
            lambda: js(driver, ROW_STATUS, ablation_id) == "succeeded",
            600,
            "the ablation to finish on the page",
        )
        assert not browser_errors(driver)
    with embedded_stack.client() as client:
        found: dict[str, Any] = client.get(f"/ablations/{ablation_id}").json()
    return found


def test_an_ablation_made_on_the_page_runs_and_is_summarized(
    embedded_stack: Stack, ablation: dict[str, Any]
) -> None:
    assert ablation["name"] == NAME and ablation["status"] == "succeeded"
    assert [m["seed"] for m in ablation["members"]] == [0] * 5
    assert {a["spec"]["train_limit"] for a in ablation["arms"]} == {300}
    with chromium() as driver:
        driver.set_window_size(1280, 800)
        driver.get(embedded_stack.base_url + "/")
        wait_until(lambda: js(driver, ROW_STATUS, ablation["id"]) == "succeeded", 20, "the row")
        click(driver, f'#ablations tr[data-id="{ablation["id"]}"]')
        wait_until(
            lambda: js(driver, "return window.trainlab.ablation") == ablation["id"], 10, "pick"
        )
        wait_until(
            lambda: (
                js(driver, "return document.querySelectorAll('#summary tbody tr').length") == 5
                and int(js(driver, "return document.querySelector('#forest').dataset.drawn || 0"))
                >= 8
            ),
            30,
            "the summary and its forest plot",
        )
        # One seed: no interval over seeds, but one per-record interval per comparison.
        assert ink(driver, "#forest") > 1000
        notes = js(driver, "return document.querySelector('#summary-notes').textContent")
        assert "record by record" in notes
        wait_until(lambda: ink(driver, "#confusion") > 2000, 30, "a confusion heatmap")
        wait_until(lambda: ink(driver, "#arm-curves") > 1000, 30, "the arm curves")
        assert charts_without_axis_titles(driver) == []
        found = layout(driver)
        assert found["scrollWidth"] <= 1280 and found["accuracyRight"] <= 1280, found
        assert found["cutHeaders"] == [] and len(found["accuracies"]) >= 5, found
        screenshot(driver, "dashboard-live-1280.png")
        driver.set_window_size(1280, 2600)
        screenshot(driver, "dashboard-live-full.png")
        assert not browser_errors(driver)
    with embedded_stack.client() as client:
        summary = client.get(f"/ablations/{ablation['id']}/summary?compare=successive").json()
    for comparison in summary["comparisons"]:
        (record,) = comparison["records"]
        assert record["records"] == 200 and 0 <= record["mcnemar_p"] <= 1
        assert record["ci_low"] <= record["accuracy_diff"] <= record["ci_high"]


def _draw_a_one(driver: Any) -> None:
    """A "1", one vertical stroke down the middle of the pad, until the page has asked the
    ticked models. A stroke that left the pad empty missed it (the list above it redrew
    between the scroll into view and the pointer's moves, and moved it): it is drawn again;
    a drawn pad with no answer fails with what the page says."""
    for _ in range(3):
        draw_stroke(driver, "#pad", [(0, -100), (0, -40), (2, 20), (3, 100)])
        try:
            wait_until(lambda: js(driver, "return window.trainlab.pad.asked") >= 1, 15, "ask")
            return
        except AssertionError:
            if sum(pad_pixels(driver)) > 0:
                status = js(driver, "return document.querySelector('#pad-status').textContent")
                raise AssertionError(f"the pad was drawn but never asked: {status!r}") from None
    raise AssertionError("three strokes missed the pad")


def test_the_pad_asks_the_trained_models(embedded_stack: Stack, ablation: dict[str, Any]) -> None:
    paths = httpx.get(f"{embedded_stack.base_url}/openapi.json").json()["paths"]
    if PREDICT not in paths:
        pytest.skip(f"this server has no POST {PREDICT} yet (it comes from another branch)")
    ids = [m["experiment_id"] for m in ablation["members"]]
    with chromium() as driver:
        driver.get(embedded_stack.base_url + "/")
        wait_until(lambda: js(driver, "return window.trainlab.experiments.length") > 0, 20, "lists")
        for experiment_id in ids[:2]:  # tick two of the trained models
            if not js(driver, f"return window.trainlab.selected.has('{experiment_id}')"):
                click(driver, f'tr[data-id="{experiment_id}"] input')
        ticked = js(
            driver,
            "return window.trainlab.experiments.filter(e => window.trainlab.selected.has(e.id)"
            " && e.status === 'succeeded').length",
        )
        assert ticked >= 1, "no finished model ticked"
        _draw_a_one(driver)
        wait_until(lambda: ink(driver, "#pad-bars-0") > 200, 10, "output bars")
        captions = js(driver, "return [...document.querySelectorAll('#pad-bars figcaption')]"
                      ".map(f => f.textContent)")  # fmt: skip
        assert len(captions) == ticked and all(" says " in c for c in captions), captions
        screenshot(driver, "dashboard-pad.png")
        assert not browser_errors(driver)
