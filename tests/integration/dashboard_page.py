"""What the dashboard browser tests read off the page, and the strict Content-Security-Policy
they serve it under (so an inline script, style attribute or eval shows up as a console
error, which the tests assert there are none of)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from sqlalchemy import Engine

from core.settings import Settings
from core.store.migrate import upgrade_to_head
from core.store.session import make_engine
from tests.conftest import free_port, make_settings

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def embedded_store(root: Path, data_dir: Path, **extra: Any) -> tuple[Settings, Engine]:
    """Settings of a page's test server on a free port, with its store and broker in SQLite
    files under `root` (the schema brought to head), and an engine on that store."""
    settings = make_settings(
        database_url=f"sqlite:///{root / 'trainlab.db'}",
        broker_url=f"sqla+sqlite:///{root / 'broker.db'}",
        state_dir=root / "state",
        data_dir=data_dir,
        port=free_port(),
        **extra,
    )
    upgrade_to_head(settings.effective_database_url)
    return settings, make_engine(settings.effective_database_url)


class StrictCsp:
    """ASGI wrapper adding the CSP header to every response (the test server's app)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def with_header(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"content-security-policy", CSP.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_header if scope["type"] == "http" else send)


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


LAYOUT = """
const page = document.scrollingElement;
const head = [...document.querySelectorAll('#experiments th')]
  .find(t => t.textContent === 'accuracy');
const box = head.getBoundingClientRect();
const table = document.querySelector('#experiments');
return {
  scrollWidth: page.scrollWidth, innerWidth: window.innerWidth,
  accuracyRight: box.right, accuracyWidth: box.width,
  tableOverflow: table.scrollWidth - table.clientWidth,
  cutHeaders: [...document.querySelectorAll('#experiments th, #summary th')]
    .filter(t => t.scrollWidth > t.clientWidth + 1).map(t => t.textContent),
  accuracies: [...document.querySelectorAll('#experiments td.accuracy')]
    .filter(t => t.textContent && t.scrollWidth <= t.clientWidth
      && t.getBoundingClientRect().right <= window.innerWidth).map(t => t.textContent),
};
"""


def layout(driver: Any) -> dict[str, Any]:
    found: dict[str, Any] = js(driver, LAYOUT)
    return found


def charts_without_axis_titles(driver: Any, within: str = "body") -> list[str]:
    """Ids of drawn charts (canvases with data-drawn) inside `within` that lack an x or y axis
    title; the forest plot's rows name themselves, so it needs only its x title, and images (a
    digit, a GAN's samples and walk) are no charts."""
    missing: list[str] = js(
        driver,
        # A canvas with nothing to show (data-drawn="0": no data yet) draws no axes either.
        "return [...document.querySelectorAll(arguments[0] + ' canvas[data-drawn]')]"
        ".filter(c => c.dataset.drawn !== '0')"
        ".filter(c => !['digit', 'pad-preview', 'gan-samples', 'gan-walk'].includes(c.id))"
        ".filter(c => !c.dataset.xTitle || (!c.dataset.yTitle && c.id !== 'forest'))"
        ".map(c => c.id);",
        within,
    )
    return missing


def draw_stroke(driver: Any, selector: str, points: list[tuple[int, int]]) -> None:
    """Press, move through `points` (offsets from the element's centre), release."""
    element = driver.find_element("css selector", selector)
    # Pointer moves must land in the viewport: cards above it (a GAN's, a sweep's) push it down.
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    actions = ActionChains(driver)
    actions.move_to_element_with_offset(element, *points[0]).click_and_hold()
    for x, y in points[1:]:
        actions.move_to_element_with_offset(element, x, y)
    actions.release().perform()


def pad_pixels(driver: Any) -> list[float]:
    pixels: list[float] = js(driver, "return window.trainlab.pad.pixels")
    return pixels
