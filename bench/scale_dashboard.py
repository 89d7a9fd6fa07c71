"""The dashboard in headless Chromium on a live store of the scale benchmark.

Debian's chromium and chromedriver through selenium (tests/integration/browser.py's flags).
For each of a few page loads (the first one cold, the browser's cache empty):
- usable_s: from navigating to the dashboard to its experiments list showing its first page
  (rows drawn, the pager set: the list answers clicks from then on);
- sort_s: from choosing "best accuracy" to that sort's first page drawn;
- next_page_s: from clicking "next page" after that sort to the second page drawn.
Each is timed in the page itself (performance.now() at the action, and at the list's draw,
which the dashboard records in window.trainlab.listDrawnAt), so the driver's polling does not
count. A page load counts from the navigation's start.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.scale_hooks import LiveStore

LOADS = 3
TIMEOUT_S = 60.0

# The time (performance.now(), ms from the navigation's start) the list last drew `page` with
# rows in it, or null: the dashboard records each draw in window.trainlab.listDrawnAt.
DRAWN = """
const [page, since] = arguments;
const at = window.trainlab && window.trainlab.listDrawnAt;
const label = document.querySelector('#exp-page');
const rows = document.querySelectorAll('#experiments tbody tr[data-id]').length;
return at !== null && at !== undefined && at > since && rows > 0
  && label && label.textContent === `page ${page}` ? at : null;
"""
SORT = """
const sort = document.querySelector('#sort');
sort.value = arguments[0];
const at = performance.now();
sort.dispatchEvent(new Event('change'));
return at;
"""
NEXT = "const at = performance.now(); document.querySelector('#exp-next').click(); return at;"


def _drawn(driver: Any, page: int, since: float) -> float:
    """performance.now() of the list's draw of `page` after `since`, polled for."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        at = driver.execute_script(DRAWN, page, since)
        if at is not None:
            return float(at)
        time.sleep(0.02)
    raise AssertionError(f"the dashboard's list did not draw page {page} in {TIMEOUT_S:.0f} s")


def _load(driver: Any, url: str) -> float:
    """Seconds from the navigation's start to the list's first page."""
    driver.get(url)
    return _drawn(driver, 1, -1.0) / 1000


def _after(driver: Any, script: str, page: int, *arguments: Any) -> float:
    """Seconds from the action `script` takes (it returns performance.now() at the action) to
    the list's draw of `page`."""
    at = float(driver.execute_script(script, *arguments))
    return (_drawn(driver, page, at) - at) / 1000


def measure(base_url: str, loads: int = LOADS) -> dict[str, Any]:
    from tests.integration.browser import chromium

    usable: list[float] = []
    sort: list[float] = []
    following: list[float] = []
    with chromium() as driver:
        driver.set_script_timeout(TIMEOUT_S)
        for _ in range(loads):
            usable.append(_load(driver, f"{base_url}/"))
            sort.append(_after(driver, SORT, 1, "-test_accuracy"))
            following.append(_after(driver, NEXT, 2))
            rows = driver.execute_script(
                "return document.querySelectorAll('#experiments tbody tr[data-id]').length"
            )
            if rows > 50:  # a page, never the whole list
                raise AssertionError(f"the list drew {rows} rows on one page")
    return {
        "usable_s": round(statistics.median(usable), 3),
        "usable_cold_s": round(usable[0], 3),
        "sort_s": round(statistics.median(sort), 3),
        "next_page_s": round(statistics.median(following), 3),
        "loads": loads,
    }


def dashboard(live: LiveStore) -> dict[str, Any]:
    print(f"[{time.strftime('%H:%M:%S')}] dashboard in headless Chromium", flush=True)
    figures = measure(live.base_url)
    print(f"  dashboard: {figures}", flush=True)
    return figures
