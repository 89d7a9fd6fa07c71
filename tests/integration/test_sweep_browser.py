"""The dashboard's sweep views in headless Chromium against a live uvicorn server, under the
strict Content-Security-Policy: a real sweep (asked by the API's own driver, its runs finished
in the store as a worker finishes them, tests/api/sweep_runs.py) is followed live from queued
to succeeded; the list shows it, the parallel-coordinates SVG draws one line per trial, the
trials table shows the pruned trial's rung, the best-so-far and importance charts are drawn,
the reads are conditional (304s while nothing changes); the form shows the server's 422 next
to the field; "confirm" starts an ablation, and its link shows it.

tests/integration/test_sweep_live.py runs a sweep with a real worker; this one needs no
training, so it checks what the page draws of every state a sweep goes through."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from api.app import create_app
from api.background.sweeps import SweepDriver
from tests.api.live_server import serving
from tests.api.sweep_runs import Sent, finish_runs
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
    embedded_store,
    js,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

SWEEP: dict[str, Any] = {
    "name": "lr search",
    "preset": "seed-baseline",
    "overrides": {"train_limit": 500, "test_limit": 100, "epochs": 1, "batch_size": 10},
    "validation_records": 200,
    "space": {"lr": {"type": "choice", "values": [0.5, 0.05, 0.0001]}},
    "sampler": "grid",
    "pruner": "paired",
    "seeds": 3,
    "max_trials": 3,
    "parallel": 3,
    "prune_after": 2,  # three trials: the band is the best one
}
# Per seed: 0.5 and 0.05 trade places seed by seed (neither is surely worse: both complete);
# 0.0001 is worse on every seed, so the paired pruner stops it at its first rung.
ACCURACY = {0.5: [0.80, 0.82, 0.78], 0.05: [0.83, 0.76, 0.80], 0.0001: [0.30, 0.31, 0.32]}


@dataclass
class Served:
    url: str
    sweep_id: str
    engine: Engine
    driver: SweepDriver

    def finish(self) -> None:
        """Run the sweep to its end (again: a no-op once it has ended)."""
        finish_runs(self.engine, self.sweep_id, ACCURACY)
        for _ in range(3):
            self.driver.drive(self.sweep_id)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Iterator[Served]:
    require_chromium()
    root: Path = tmp_path_factory.mktemp("sweep-page")
    # MNIST: the record card beside the sweep's shows a test image.
    settings, engine = embedded_store(root, mnist_dir)
    # No background pass: the test drives the sweep, so it knows what the page should show.
    app = StrictCsp(create_app(settings, lifespan_hooks=[]))
    try:
        with serving(app, settings.port, graceful_shutdown_s=2) as url:
            created = httpx.post(f"{url}/sweeps", json=SWEEP)
            assert created.status_code == 201, created.text
            driver = SweepDriver(engine, Sent(), settings)  # type: ignore[arg-type]
            driver.drive(created.json()["id"])  # its three trials asked, their runs queued
            yield Served(url, created.json()["id"], engine, driver)
    finally:
        engine.dispose()


def _errors(driver: Any) -> list[str]:
    """The console's errors, but for the record card asking for the outputs of the ticked runs:
    these runs were finished without any (no training here), so that answer is a 409."""
    return [e for e in browser_errors(driver) if "/compare/predictions?" not in e]


def _text(driver: Any, selector: str) -> str:
    found: str = js(driver, f"return document.querySelector({selector!r})?.textContent ?? ''")
    return found


def _count(driver: Any, selector: str) -> int:
    found: int = js(driver, f"return document.querySelectorAll({selector!r}).length")
    return found


def test_the_sweep_page_follows_a_running_sweep_to_its_end(served: Served) -> None:
    with chromium() as driver:
        driver.set_window_size(1280, 1400)
        driver.get(f"{served.url}/#sweep={served.sweep_id}")
        row = f'#sweeps tr[data-id="{served.sweep_id}"]'
        wait_until(lambda: _count(driver, row) == 1, 30, "the sweep in the list")
        assert "lr search" in _text(driver, row) and "running" in _text(driver, row)
        assert _text(driver, f"{row} .trials") == "3 / 3"  # all three asked, none ended
        assert _text(driver, f"{row} .best") == "\u2013"  # no best yet
        # Queued trials: a line each across the field's axis, none reaching the objective's.
        wait_until(lambda: _count(driver, "#sweep-parallel path.trial.queued") == 3, 30, "3 lines")
        assert _count(driver, "#sweep-trials tbody tr[data-state=queued]") == 3
        importance = "return document.querySelector('#sweep-importance').dataset.drawn"
        wait_until(lambda: js(driver, importance) == "0", 10, "no importances yet")
        # Nothing changes for a while: the polls are answered 304, and nothing is drawn again.
        wait_until(lambda: js(driver, "return window.trainlab.notModified") >= 2, 20, "304s")
        renders = js(driver, "return window.trainlab.sweepRenders")
        seen = js(driver, "return window.trainlab.notModified")
        wait_until(lambda: js(driver, "return window.trainlab.notModified") >= seen + 2, 20, "")
        assert js(driver, "return window.trainlab.sweepRenders") == renders

        served.finish()
        wait_until(lambda: "succeeded" in _text(driver, row), 30, "the list to say succeeded")
        wait_until(lambda: "succeeded" in _text(driver, "#sweep-status"), 30, "the card to follow")
        assert _text(driver, f"{row} .trials") == "3 / 3"
        # The best so far with its interval over the three seeds, in the list and on the card.
        assert _text(driver, f"{row} .best").startswith("80.00 [")
        assert "trial" in _text(driver, "#sweep-best-text") and "lr=0.5" in _text(
            driver, "#sweep-best-text"
        )
        # One line per trial: two complete ones and the pruned one, dashed apart.
        assert js(driver, "return document.querySelector('#sweep-parallel').dataset.trials") == "3"
        assert _count(driver, "#sweep-parallel path.trial") == 3
        assert _count(driver, "#sweep-parallel path.trial.complete") == 2
        pruned = "#sweep-parallel path.trial.pruned"
        assert _count(driver, pruned) == 1
        assert "pruned at rung 1" in _text(driver, f"{pruned} title")
        # A pruned line still reaches the objective's axis (its figure at the rung it stopped).
        assert (
            js(driver, f"return document.querySelector({pruned!r}).getAttribute('d')").count("L")
            == 1
        )
        # The table: the pruned trial's rung, its share of the budget and the pruner's reason,
        # its seeds' figures at that rung, and a link to each seed's experiment.
        cells = "#sweep-trials tbody tr[data-state=pruned] td"
        state = js(driver, f"return document.querySelectorAll({cells!r})[2].textContent")
        assert "pruned at rung 1" in state and "(1/9 of its budget)" in state, state
        first_rung = js(driver, f"return document.querySelectorAll({cells!r})[4].textContent")
        assert first_rung == "10.00 · 11.00 · 12.00", first_rung
        links = js(
            driver,
            "return [...document.querySelectorAll('#sweep-trials a[data-experiment]')]"
            ".map(a => a.getAttribute('href'))",
        )
        view = httpx.get(f"{served.url}/sweeps/{served.sweep_id}").json()
        runs = [r["experiment_id"] for t in view["trials"] for r in t["runs"]]
        assert sorted(links) == sorted(f"/experiments/{i}" for i in runs)
        # A trial's "curves" overlays its seeds' runs on the loss-curve card.
        js(driver, "document.querySelector('#sweep-trials tr[data-state=pruned] button').click()")
        pruned_runs = next(t for t in view["trials"] if t["state"] == "pruned")["runs"]
        wait_until(
            lambda: (
                sorted(js(driver, "return [...window.trainlab.selected]"))
                == sorted(r["experiment_id"] for r in pruned_runs)
            ),
            10,
            "the pruned trial's runs overlaid",
        )
        # A seed's link: that run's curve alone.
        js(driver, f"document.querySelector('a[data-experiment=\"{runs[0]}\"]').click()")
        wait_until(
            lambda: js(driver, "return [...window.trainlab.selected]") == [runs[0]], 10, "one run"
        )
        # Which numbers are validation and which are test.
        assert "validation figure" in _text(driver, "#sweep-figures")
        assert "test figures" in _text(driver, "#sweep-figures")
        # Best so far (line, band, dots) and the importances (one field: one bar).
        assert ink(driver, "#sweep-best") > 1500
        wait_until(lambda: js(driver, importance) == "1", 15, "the importance bar")
        assert charts_without_axis_titles(driver, "#sweep-card") == []
        assert _text(driver, "#sweep-csv") == "trials CSV"
        csv = httpx.get(js(driver, "return document.querySelector('#sweep-csv').href"))
        assert csv.status_code == 200 and csv.text.count("\n") == 4
        assert js(driver, "return document.scrollingElement.scrollWidth") <= 1280
        js(driver, "document.querySelector('#sweep-card').scrollIntoView()")
        screenshot(driver, "sweep.png")
        assert not _errors(driver)


def _fill(driver: Any, selector: str, text: str) -> None:
    element = driver.find_element("css selector", selector)
    element.clear()
    element.send_keys(text)


def test_the_form_shows_the_servers_422_by_the_field_and_starts_a_sweep(served: Served) -> None:
    with chromium() as driver:
        driver.get(f"{served.url}/")
        wait_until(lambda: js(driver, "return document.body.dataset.sweepFormReady"), 20, "form")
        driver.find_element("css selector", "#tab-sweep").click()
        row = "#swp-space .space-row"
        driver.find_element("css selector", f"{row} .sp-type option[value=uniform]").click()
        _fill(driver, f"{row} .sp-low", "0.1")
        _fill(driver, f"{row} .sp-high", "0.01")  # an empty range: only the server says so
        _fill(driver, "[id='swp-train_limit']", "300")
        _fill(driver, "[id='swp-max_trials']", "4")
        _fill(driver, "#swp-name", "from the form")
        driver.find_element("css selector", "#swp-submit").click()
        spot = f"{row} .field-error"
        wait_until(lambda: bool(_text(driver, spot)), 10, "the 422 by the row")
        assert _text(driver, spot) == "empty range: low (0.1) must be below high (0.01)"
        assert js(driver, f"return document.querySelector({spot!r}).dataset.errorFor") == "space.lr"
        assert "space.lr: empty range" in _text(driver, "#swp-result")
        assert _count(driver, "#swp-space .space-row.invalid") == 1
        screenshot(driver, "sweep-form-422.png")
        before = httpx.get(f"{served.url}/sweeps").json()["items"]

        _fill(driver, f"{row} .sp-high", "0.5")
        driver.find_element("css selector", "#swp-submit").click()
        wait_until(lambda: "started sweep" in _text(driver, "#swp-result"), 10, "the sweep made")
        assert _text(driver, spot) == "" and _count(driver, ".invalid") == 0
        after = httpx.get(f"{served.url}/sweeps").json()["items"]
        assert len(after) == len(before) + 1
        made = httpx.get(f"{served.url}/sweeps/{after[0]['id']}").json()
        assert made["name"] == "from the form" and made["max_trials"] == 4
        assert made["space"] == {"lr": {"type": "uniform", "low": 0.1, "high": 0.5}}
        assert made["base"]["train_limit"] == 300 and made["seeds"] == [0, 1, 2]
        wait_until(lambda: js(driver, "return window.trainlab.sweep") == made["id"], 10, "shown")
        # Nothing drives this one (no background pass here): cancel it from its card.
        cancel = "#sweep-cancel"
        wait_until(lambda: js(driver, f"return !document.querySelector({cancel!r}).hidden"), 10, "")
        driver.find_element("css selector", cancel).click()
        wait_until(lambda: "cancelling" in _text(driver, "#sweep-status"), 10, "cancelling")
        assert httpx.get(f"{served.url}/sweeps/{made['id']}").json()["status"] == "cancelling"
        assert js(driver, f"return document.querySelector({cancel!r}).hidden")
        screenshot(driver, "sweep-form.png")
        # The 422 itself is logged by the browser as a failed request.
        assert not [e for e in _errors(driver) if "/sweeps - Failed to load" not in e]


def test_confirm_starts_an_ablation_on_fresh_seeds_and_links_to_it(served: Served) -> None:
    served.finish()
    with chromium() as driver:
        driver.set_window_size(1280, 800)
        driver.get(f"{served.url}/#sweep={served.sweep_id}")
        button = "#sweep-confirm"
        wait_until(
            lambda: js(driver, f"return !document.querySelector({button!r}).disabled"), 30, ""
        )
        _fill(driver, "#confirm-top", "2")
        _fill(driver, "#confirm-seeds", "2")
        driver.find_element("css selector", button).click()
        wait_until(lambda: "Started" in _text(driver, "#sweep-result"), 15, "the confirmation")
        assert "on the test set" in _text(driver, "#sweep-result")
        ablation_id = httpx.get(f"{served.url}/sweeps/{served.sweep_id}").json()[
            "confirm_ablation_id"
        ]
        assert ablation_id
        ablation = httpx.get(f"{served.url}/ablations/{ablation_id}").json()
        view = httpx.get(f"{served.url}/sweeps/{served.sweep_id}").json()
        complete = sorted(
            (t for t in view["trials"] if t["state"] == "complete"), key=lambda t: -t["value"]
        )
        expected = ["base"] + [f"trial {t['number']}" for t in complete]
        assert [a["label"] for a in ablation["arms"]] == expected and len(expected) == 3
        assert ablation["seeds"] == [3, 4]  # seeds the sweep never used
        link = "#sweep-ablation-link"
        wait_until(lambda: _count(driver, link) == 1, 15, "the link to the ablation")
        wait_until(lambda: _count(driver, f'#ablations tr[data-id="{ablation_id}"]') == 1, 15, "")
        assert js(driver, "return window.trainlab.ablation") == ablation_id
        # The link, at the foot of the sweep card, brings the ablation card (above) into view.
        on_screen = (
            "const r = document.querySelector('#summary').getBoundingClientRect();"
            "return r.top >= 0 && r.top < window.innerHeight;"
        )
        js(driver, f"document.querySelector({link!r}).scrollIntoView({{block: 'center'}})")
        assert not js(driver, on_screen)
        driver.find_element("css selector", link).click()
        wait_until(lambda: js(driver, on_screen), 10, "the ablation card in view")
        screenshot(driver, "sweep-confirmed.png")
        assert not _errors(driver)
