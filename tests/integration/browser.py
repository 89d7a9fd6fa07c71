"""Headless Chromium for the dashboard tests: Debian's `chromium` and `chromium-driver`
driven by selenium. Missing browser: the test fails in CI (CI=true) and skips elsewhere.

Install (as .ci/run does): apt-get update && apt-get install -y chromium chromium-driver
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

CHROMIUM = os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = REPO / "test-artifacts"
# The machine has no internet: without these, Chromium spends its start on refused lookups.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--window-size=1400,1700",
]

# JavaScript: how many pixels of a canvas are not transparent (something was drawn there).
INK = """
const canvas = document.querySelector(arguments[0]);
if (!canvas) { return -1; }
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let n = 0;
for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { n += 1; } }
return n;
"""


def require_chromium() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if not missing:
        return
    message = f"{', '.join(missing)} not found: apt-get install -y chromium chromium-driver"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Any]:
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="trainlab-chromium-")
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    except BaseException:
        # What the page looked like and logged when the test failed, to read in CI artifacts.
        screenshot(driver, "failure.png")
        print("browser console:", *browser_log(driver), sep="\n  ")
        raise
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def ink(driver: Any, selector: str) -> int:
    count: int = driver.execute_script(INK, selector)
    return count


def click(driver: Any, selector: str, timeout: float = 10.0) -> None:
    """Click the element `selector` names, found again if the page redrew it between the
    find and the click (the dashboard's lists redraw their rows as the change feed moves)."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            driver.find_element("css selector", selector).click()
            return
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def browser_log(driver: Any) -> list[dict[str, Any]]:
    """The page's console messages since the last call (Chromium's log, read once)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")
    return entries


def browser_errors(driver: Any) -> list[str]:
    """Severe console messages (script errors, failed requests) the page logged."""
    return [e["message"] for e in browser_log(driver) if e.get("level") == "SEVERE"]
