"""What Client and AsyncClient share besides the Calls: the retry rule for 429s, the ablation
request body, the stream's timeouts, and where a downloaded model goes."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from trainlab.errors import retry_after_of

POLL_S = 1.0
# After a stream that could not be had, poll this long before trying it again.
STREAM_RETRY_S = 30.0
# The server sends a keep-alive every 15 s: a stream silent for much longer is dead.
STREAM_READ_TIMEOUT_S = 45.0
# Reconnects in a row without an event before follow() gives up.
RECONNECTS = 5


@dataclass(frozen=True)
class RetryPolicy:
    """429s are retried after their Retry-After, at most `max_retries` times, and only while
    the wait asked for is at most `max_wait_s` (else the RateLimited error is raised at once,
    with its retry_after)."""

    max_retries: int = 3
    max_wait_s: float = 60.0

    def delay(self, response: httpx.Response, attempt: int) -> float | None:
        if response.status_code != 429 or attempt >= self.max_retries:
            return None
        wait = retry_after_of(response)
        wait = float(2**attempt) if wait is None else wait
        return wait if wait <= self.max_wait_s else None


def ablation_body(
    *,
    design: str,
    preset: str | None,
    factors: Mapping[str, Sequence[Any]] | None,
    overrides: Mapping[str, Any] | None,
    seeds: int | Sequence[int] | None,
    name: str | None,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {"design": design, **extra}
    if preset is not None:
        body["preset"] = preset
    if factors:
        body["factors"] = {k: list(v) for k, v in factors.items()}
    if overrides:
        body["overrides"] = dict(overrides)
    if seeds is not None:
        body["seeds"] = seeds if isinstance(seeds, int) else list(seeds)
    if name is not None:
        body["name"] = name
    return body


def remaining(deadline: float | None) -> float | None:
    """Seconds left until a time.monotonic() deadline (0 once past); None: no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def stream_timeout(timeout: float, left: float | None) -> httpx.Timeout:
    """A stream's read timeout: what the keep-alives allow, cut to the time left."""
    read = STREAM_READ_TIMEOUT_S if left is None else min(STREAM_READ_TIMEOUT_S, left)
    return httpx.Timeout(timeout, read=max(read, 0.01))


def stream_headers(last: int | None) -> dict[str, str]:
    headers = {"Accept": "text/event-stream"}
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    return headers


def download_target(path: str | Path, response: httpx.Response) -> Path:
    """`path` itself, or inside it (a folder) the file name the server gave."""
    target = Path(path)
    if target.is_dir():
        found = re.search(r'filename="([^"/\\]+)"', response.headers.get("content-disposition", ""))
        target = target / (found.group(1) if found else "model.safetensors")
    return target
