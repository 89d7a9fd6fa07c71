"""The dashboard, /docs and /redoc in headless Chromium, served by a real uvicorn with the
Content-Security-Policy on: each page renders, logs no error (a policy violation is one), and
asks nothing of any other host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.live_server import live_server
from tests.integration.browser import browser_errors, chromium, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

# What each page shows once it has rendered, found by a script in the page.
RENDERED = {
    "/": "return document.querySelector('#experiments tbody progress')?.getAttribute('max')",
    "/docs": "return document.querySelectorAll('#swagger-ui .opblock').length || null",
    "/redoc": "return document.querySelectorAll('redoc [data-section-id]').length || null",
}

# ReDoc's menu shows a "made by" logo from its makers' CDN: the policy refuses it (nothing is
# loaded from the internet), and the browser says so. That one refusal is expected.
REDOC_LOGO = "cdn.redoc.ly/redoc/logo-mini.svg"

# Every request the page made, from the browser's own record of them.
REQUESTED = "return performance.getEntriesByType('resource').map((e) => e.name)"


def test_pages_render_under_the_policy_and_load_only_from_this_server(tmp_path: Path) -> None:
    with live_server(tmp_path, max_stream_s="2") as server:
        created = httpx.post(
            f"{server.base_url}/experiments", json={"preset": "seed-baseline", "name": "one"}
        )
        assert created.status_code == 201
        with chromium() as driver:
            for page, rendered in RENDERED.items():
                driver.get(server.base_url + page)

                def shown(script: str = rendered) -> bool:
                    found: Any = driver.execute_script(script)
                    return bool(found)

                wait_until(shown, 60, f"{page} to render")
                errors = [e for e in browser_errors(driver) if REDOC_LOGO not in e]
                assert errors == [], page
                # The refused logo still has an entry (an attempt that got nothing).
                attempted: list[str] = driver.execute_script(REQUESTED)
                requested = [u for u in attempted if REDOC_LOGO not in u]
                assert requested and all(u.startswith(server.base_url) for u in requested), page
