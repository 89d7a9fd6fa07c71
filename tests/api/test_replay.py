"""Every route answers today's bytes: a recorded set of requests against a fixed store.

The store (replay_fixture.py) and the requests (replay_calls.py) are the same on every run, so
each answer's status, the headers listed in KEPT_HEADERS (content type and ETag among them)
and its body must equal the recording in tests/api/replay/answers.json byte for byte. A
change of any public answer fails here, naming the request and the first difference.

When an answer is meant to change, record again and review the diff of the recording:
    REPLAY_RECORD=1 TEST_DATA_DIR=... pytest tests/api/test_replay.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.store.migrate import upgrade_to_head
from core.store.session import make_engine
from tests.api.app_client import AppClient, app_client
from tests.api.conftest import TEST_HOST
from tests.api.replay_calls import CALLS, Call, Value
from tests.api.replay_fixture import START, PinnedClock, ReplayStore, build, pin
from tests.conftest import make_settings, require_mnist

RECORDING = Path(__file__).parent / "replay" / "answers.json"
RECORD = os.environ.get("REPLAY_RECORD") == "1"
KEPT_HEADERS = (
    "content-type", "etag", "content-disposition", "location", "cache-control",
    "www-authenticate", "allow", "retry-after", "idempotent-replayed", "x-trainlab-step",
)  # fmt: skip
WHOLE_BODY = 3000  # bytes; a longer body is kept as its size, sha256 and first HEAD characters
HEAD = 2000

# Routes of the OpenAPI document that no recorded request calls, and why. None so far: a new
# route must be added to replay_calls.py (and recorded), or here with its reason.
SKIPPED: dict[tuple[str, str], str] = {}


def _normalized(call: Call, body: bytes) -> bytes:
    """/metrics without what this process's timing decides: latency buckets and sums, and the
    `_created` stamps (when a counter was made). Counts of requests by route stay."""
    if call.path != "/metrics":
        return body
    timed = re.compile(rb"^trainlab_\w+(_bucket|_sum|_created)[{ ]")
    lines = body.split(b"\n")
    return b"\n".join(line for line in lines if not timed.match(line))


def _value(value: Value, made: ReplayStore, answers: dict[str, httpx.Response]) -> str:
    text = value(answers) if callable(value) else value
    return text.format(**made.ids)


def _send(
    client: AppClient, call: Call, made: ReplayStore, answers: dict[str, httpx.Response]
) -> tuple[str, httpx.Response]:
    params = {k: _value(v, made, answers) for k, v in call.params.items()}
    headers = {k: _value(v, made, answers) for k, v in call.headers.items()}
    if call.caller is not None:
        headers["Authorization"] = f"Bearer {made.tokens[call.caller]}"
    path = call.path.format(**made.ids)
    response = client.request(
        call.method, path, params=params, headers=headers, json=call.json,
        content=call.content, files=call.files,
    )  # fmt: skip
    if call.remember is not None:
        label, field = call.remember
        made.ids[label] = response.json()[field]
    line = f"{call.method} {response.request.url.raw_path.decode()} as {call.caller or 'nobody'}"
    return line, response


def _answer(call: Call, line: str, response: httpx.Response) -> dict[str, Any]:
    body = _normalized(call, response.content)
    kept = {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers}
    if call.path == "/":
        # A file's ETag is made of its mtime and size, and the mtime is the checkout's: the
        # page's bytes are compared, its ETag can't be.
        kept.pop("etag", None)
    answer: dict[str, Any] = {"request": line, "status": response.status_code, "headers": kept}
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if len(body) <= WHOLE_BODY:
        if text is not None:
            answer["body"] = text
        else:
            answer["body_base64"] = base64.b64encode(body).decode()
        return answer
    answer["body_size"] = len(body)
    answer["body_sha256"] = hashlib.sha256(body).hexdigest()
    if text is not None:
        answer["body_head"] = text[:HEAD]
    else:
        answer["body_head_base64"] = base64.b64encode(body[: HEAD * 3 // 4]).decode()
    return answer


def _difference(name: str, recorded: dict[str, Any], actual: dict[str, Any]) -> str:
    lines = [f"{name}: {actual['request']}"]
    for key in sorted(set(recorded) | set(actual)):
        before, after = recorded.get(key), actual.get(key)
        if before == after:
            continue
        if isinstance(before, str) and isinstance(after, str):
            pairs = zip(before, after, strict=False)
            at = next(
                (i for i, (a, b) in enumerate(pairs) if a != b), min(map(len, (before, after)))
            )
            lines.append(
                f"  {key} differs at character {at}:\n"
                f"    recorded: {before[max(at - 80, 0) : at + 160]!r}\n"
                f"    now:      {after[max(at - 80, 0) : at + 160]!r}"
            )
        else:
            lines.append(f"  {key}: recorded {before!r}, now {after!r}")
    return "\n".join(lines)


@pytest.fixture
def replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[AppClient, ReplayStore]]:
    # The test records' routes read MNIST (and /metrics counts their requests): without the
    # files this skips, or fails in CI, as the other tests that need them do.
    data_dir = require_mnist()
    clock = PinnedClock(START)
    pin(monkeypatch, clock)
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    upgrade_to_head(url)
    settings = make_settings(
        database_url=url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        state_dir=tmp_path / "state",
        data_dir=data_dir,
        allow_download=False,
        trusted_hosts=[TEST_HOST],
        auth="required",
        # An event stream sends what there is, then closes at once: a running run's stream
        # is its first chunk, not whatever a poll half a second later happens to see.
        max_stream_s=0.001,
    )
    engine = make_engine(url)
    try:
        # No lifespan hooks: the reaper and the retention pass would change the store.
        app = create_app(settings, lifespan_hooks=[])
        with app_client(app) as client:
            made = build(engine, clock, client)
            # Whether a key's first use at ASKED_AT reaches the store (and moves its
            # last_used_at) must not hang on how long building took against the cache's
            # seconds: every key is looked up afresh.
            app.state.key_cache.clear()
            yield client, made
    finally:
        engine.dispose()


def test_every_answer_is_the_recorded_one(replay: tuple[AppClient, ReplayStore]) -> None:
    client, made = replay
    recorded: dict[str, Any] = {} if RECORD else json.loads(RECORDING.read_text())["answers"]
    answers: dict[str, httpx.Response] = {}
    actual: dict[str, Any] = {}
    for call in CALLS:
        line, response = _send(client, call, made, answers)
        answers[call.name] = response
        actual[call.name] = _answer(call, line, response)
    if RECORD:
        RECORDING.parent.mkdir(exist_ok=True)
        document = {"note": "Written by REPLAY_RECORD=1 (tests/api/test_replay.py).",
                    "answers": actual}  # fmt: skip
        RECORDING.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        return
    unrecorded = sorted(set(actual) - set(recorded))
    assert not unrecorded, f"requests without a recording (run with REPLAY_RECORD=1): {unrecorded}"
    gone = sorted(set(recorded) - set(actual))
    assert not gone, f"recorded answers no request asks for any more: {gone}"
    changed = [
        _difference(name, recorded[name], answer)
        for name, answer in actual.items()
        if recorded[name] != answer
    ]
    assert not changed, f"{len(changed)} answers changed:\n" + "\n".join(changed)


def test_the_calls_have_unique_names() -> None:
    names = [call.name for call in CALLS]
    assert len(names) == len(set(names))


def test_every_route_of_the_openapi_document_is_replayed() -> None:
    """A new endpoint must be called by a recorded request, or skipped here with a reason."""
    app = create_app(make_settings(database_url="sqlite://", broker_url="memory://"))
    templates = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]

    def matches(template: str, call: Call) -> bool:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        return re.fullmatch(pattern, re.sub(r"\{[^/}]+\}", "x", call.path)) is not None

    uncovered = [
        (method, path)
        for method, path in templates
        if (method, path) not in SKIPPED
        and not any(call.method == method and matches(path, call) for call in CALLS)
    ]
    assert not uncovered, f"routes no replayed request calls: {uncovered}"
    stale = [route for route in SKIPPED if route not in templates]
    assert not stale, f"skipped routes that no longer exist: {stale}"
