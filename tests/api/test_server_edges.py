"""The request's edges that only the server sees, against a real `trainlab serve` (uvicorn):
request line and headers bounded while they arrive, and X-Forwarded-For believed only from
the proxies the settings name."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.live_server import live_server

pytestmark = pytest.mark.timeout(180)

_CHUNK = b"a" * 65_536


def _long_header(base_url: str, size: int, *, finish: bool) -> tuple[int, bytes]:
    """Sends a request whose one header is `size` bytes long (finished or not); returns how
    many of those bytes the server took before it closed, and what it answered."""
    address = urlsplit(base_url)
    sent = 0
    with socket.create_connection((address.hostname, address.port), timeout=20) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ")
        try:
            while sent < size:
                sock.sendall(_CHUNK)
                sent += len(_CHUNK)
            if finish:
                sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    return sent, answer


def test_headers_are_bounded_while_they_arrive(tmp_path: Path) -> None:
    with live_server(tmp_path, max_header_bytes="16384") as server:
        # An endless header: the server hangs up long before 64 MB (it used to keep reading,
        # and holding, all of it).
        sent, _ = _long_header(server.base_url, 64 * 1_048_576, finish=False)
        assert sent < 16 * 1_048_576
        # A finished header over the bound is refused, not answered.
        sent, answer = _long_header(server.base_url, 1_048_576, finish=True)
        assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200  # still serving


def _codes(base_url: str, count: int) -> list[int]:
    forged = {"X-Forwarded-For": "203.0.113.9"}
    return [httpx.get(f"{base_url}/presets", headers=forged).status_code for _ in range(count)]


def test_forwarded_addresses_are_believed_only_from_configured_proxies(tmp_path: Path) -> None:
    # From loopback, and not counted per address: a forged X-Forwarded-For must not make it
    # count as 203.0.113.9 (nor let any local process pick the address it is counted as).
    (tmp_path / "direct").mkdir()
    (tmp_path / "proxied").mkdir()
    with live_server(tmp_path / "direct", rate_limit_address="3/minute") as server:
        assert _codes(server.base_url, 5) == [200] * 5
    with live_server(
        tmp_path / "proxied", rate_limit_address="3/minute", trusted_proxies="127.0.0.1"
    ) as server:
        assert _codes(server.base_url, 5) == [200] * 3 + [429] * 2
