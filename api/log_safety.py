"""Log lines carry no raw control characters from requests.

A request path may hold `%0d%0a`, which the server decodes to CR LF; written raw, it starts a
new log line that says whatever the client wants (a forged entry), and NUL or ESC can hide text
or drive a terminal. Every log record made in the API process has the control characters of
its message and arguments escaped (`\\n`, `\\r`, `\\x00`, ...), whoever logs it: our code,
Starlette, or uvicorn's access log (whose formatter reads the arguments directly, so escaping
the arguments, not only the final text, is what covers it).

Installed once per process as a log record factory: it sees every record before any handler
or formatter does, whatever logging configuration uvicorn applies after the app is built.
"""

from __future__ import annotations

import logging
import numbers
import re
from collections.abc import Mapping
from typing import Any

# C0 and C1 controls with DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def escape_controls(text: str) -> str:
    """`text` with every control character written as an escape sequence."""
    return _CONTROL.sub(_escaped, text)


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return escape_controls(value)
    # Numbers keep their type (a %d or %.3f must still format them); bytes print as their repr.
    if value is None or isinstance(value, (numbers.Number, bytes)):
        return value
    return escape_controls(str(value))


def escape_record(record: logging.LogRecord) -> None:
    if isinstance(record.msg, str):
        record.msg = escape_controls(record.msg)
    if isinstance(record.args, Mapping):
        record.args = {key: _safe(value) for key, value in record.args.items()}
    elif isinstance(record.args, tuple):
        record.args = tuple(_safe(value) for value in record.args)


def install_log_escaping() -> None:
    """Escape control characters in every log record of this process from now on (once)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "escapes_controls", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        escape_record(record)
        return record

    factory.escapes_controls = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
