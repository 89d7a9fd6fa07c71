"""Log lines never carry raw control characters from a request: not ours, not uvicorn's
access log (a `%0d%0a` in a path would otherwise start a forged line)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx

from api.log_safety import escape_controls, escape_record
from tests.api.live_server import live_server


def test_escapes_every_control_character() -> None:
    assert escape_controls("a\r\nb\x00c\x1b[31m\u2028\t") == "a\\r\\nb\\x00c\\x1b[31m\\u2028\\t"
    assert escape_controls("plain text, ünïcode") == "plain text, ünïcode"


def test_records_keep_their_numbers_and_lose_their_controls() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/x\r\nforged", "1.1", 404), None,
    )  # fmt: skip
    escape_record(record)
    assert record.getMessage() == '127.0.0.1:1 - "GET /x\\r\\nforged HTTP/1.1" 404'
    assert isinstance(record.args, tuple) and record.args[-1] == 404


def test_uvicorns_access_log_gets_no_forged_line(tmp_path: Path) -> None:
    with live_server(tmp_path, log_level="info") as server:
        for path in ("/x%0d%0aforged-line", "/experiments/a%0aforged-two", "/%1b%5b31mred"):
            response = httpx.get(server.base_url + path)
            assert response.status_code == 400
        log = server.log_text()
    lines = log.splitlines()
    assert not [line for line in lines if line.startswith("forged")], log[-3000:]
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", log), log[-3000:]
    assert "forged-line" in log and "31mred" in log  # the requests are there, escaped
