"""What a caller can spend at the request's edges, through the app on both stores: JSON bodies
bounded by structure, NUL refused the same on SQLite and PostgreSQL, integers in one spelling,
one Host, a bounded number of headers, HEAD wherever GET, /predict checking the model before
it decodes, and the per-key rate limit counting only keys known valid."""

from __future__ import annotations

import struct
import zlib

import pytest
from sqlalchemy import Engine

from api.app import create_app
from core.keys import Role
from core.settings import Settings
from core.store import experiments, keys
from core.store.session import session_scope
from tests.api.app_client import AppClient, app_client
from tests.api.trained_runs import trained_run
from tests.core.store.helpers import queued


def _png(width: int, height: int, rest: bytes = b"") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + rest + chunk(b"IEND", b"")


def test_a_json_body_of_too_many_items_is_413_before_it_is_parsed(client: AppClient) -> None:
    # Within the test's 64 KiB body limit: thousands of keys, of values, of levels.
    keyed = b"{" + b",".join(b'"%d":1' % i for i in range(6_000)) + b"}"
    wide = b"[" + b"0," * 20_000 + b"0]"
    deep = b"[" * 30_000 + b"]" * 30_000
    for body in (keyed, wide, deep):
        for path in ("/experiments", "/ablations", "/experiments/xxxxxxxx/predict"):
            answer = client.post(path, content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 413, (path, answer.text)
            assert "TRAINLAB_MAX_JSON_ITEMS" in answer.json()["detail"]


@pytest.mark.parametrize("field", ["q", "name", "tag", "preset"])
def test_nul_in_a_query_parameter_is_422_naming_it(client: AppClient, field: str) -> None:
    answer = client.get(f"/experiments?{field}=a%00b")
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [
        {"field": field, "in": "query", "reason": "must not contain the NUL character (U+0000)"}
    ]


def test_nul_in_a_body_string_is_422_naming_it(client: AppClient, engine: Engine) -> None:
    answer = client.post(
        "/experiments", json={"preset": "seed-adam", "name": "a\x00b", "tags": ["ok", "x\x00"]}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "name"
    tags = client.post("/experiments", json={"preset": "seed-adam", "tags": ["ok", "x\x00"]})
    assert tags.status_code == 422 and tags.json()["errors"][0]["field"] == "tags[1]"
    with session_scope(engine) as session:
        assert experiments.list_experiments(session, limit=10)[0] == []


@pytest.mark.parametrize(
    "url",
    [
        "/experiments?limit=1_0",
        "/experiments?limit=+10",
        "/experiments?limit=010",
        "/experiments/xxxxxxxx/predictions?offset=0_1",
        "/datasets/mnist/records/1_0",
    ],
)
def test_integers_written_other_than_plainly_are_422(client: AppClient, url: str) -> None:
    answer = client.get(url)
    assert answer.status_code == 422, answer.text
    assert "plain digits" in answer.json()["errors"][0]["reason"]


def test_one_host_header_only(client: AppClient) -> None:
    twice = [("host", "evil.example"), ("host", "testserver")]
    answer = client.get("/experiments", headers=twice)
    assert answer.status_code == 400 and "more than one Host" in answer.json()["detail"]


def test_too_many_headers_are_431(client: AppClient) -> None:
    many = [(f"x-filler-{i}", "1") for i in range(150)]
    assert client.get("/experiments", headers=many).status_code == 431
    assert client.get("/experiments", headers=many[:50]).status_code == 200


@pytest.mark.timeout(30)
def test_head_is_answered_wherever_get_is(client: AppClient, engine: Engine) -> None:
    experiment_id = queued(engine)
    for path in ("/experiments", f"/experiments/{experiment_id}", "/presets", "/metrics"):
        get, head = client.get(path), client.request("HEAD", path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    assert client.request("HEAD", "/experiments/missing0").status_code == 404
    # An event stream answers its headers and ends, rather than streaming to nobody.
    stream = client.request("HEAD", f"/experiments/{experiment_id}/events")
    assert stream.status_code == 200 and stream.content == b""


def test_predict_looks_for_the_model_before_decoding(client: AppClient, engine: Engine) -> None:
    garbage = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    answer = client.post(
        "/experiments/missing0/predict", content=garbage, headers={"content-type": "image/png"}
    )
    assert answer.status_code == 404


def test_predict_refuses_bombs_and_corrupt_files_without_reprs(
    client: AppClient, engine: Engine
) -> None:
    run = trained_run(engine)
    url = f"/experiments/{run.id}/predict"
    png = {"content-type": "image/png"}
    bomb = client.post(url, content=_png(100_000, 100_000), headers=png)
    assert bomb.status_code == 422 and "100000x100000" in bomb.json()["errors"][0]["reason"]
    for corrupt in (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, _png(28, 28, b"\x00\x00\x00\x04IDATjunk")):
        answer = client.post(url, content=corrupt, headers=png)
        assert answer.status_code == 422, answer.text
        assert " at 0x" not in answer.text and "<_io" not in answer.text, answer.text


def _token(engine: Engine, name: str, role: Role = Role.member) -> str:
    with session_scope(engine) as session:
        _, token = keys.create_key(session, name, role)
    return token


def test_bad_requests_with_a_keys_prefix_do_not_lock_its_owner_out(
    settings: Settings, engine: Engine
) -> None:
    alice = _token(engine, "alice")
    forged = alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB")
    limited = settings.model_copy(update={"auth": "required", "rate_limit_key": "5/minute"})
    with app_client(create_app(limited, lifespan_hooks=[]), ("203.0.113.9", 4000)) as api:
        assert api.get("/experiments", headers={"Authorization": f"Bearer {alice}"}).is_success
        codes = [
            api.get("/experiments", headers={"Authorization": f"Bearer {forged}"}).status_code
            for _ in range(20)
        ]
        # Unverified tokens are counted at their address (Alice's first request was one),
        # and stopped there.
        assert codes == [401] * 4 + [429] * 16
        answer = api.get("/experiments", headers={"Authorization": f"Bearer {alice}"})
        assert answer.status_code == 200, answer.text


def test_metrics_is_rate_limited_and_its_labels_bounded(
    client: AppClient, settings: Settings, engine: Engine
) -> None:
    for i in range(30):
        client.request(f"FUZZ{i}", "/experiments")
    body = client.get("/metrics").text
    assert "FUZZ" not in body and 'method="OTHER"' in body
    viewer = {"Authorization": f"Bearer {_token(engine, 'watcher', Role.viewer)}"}
    limited = settings.model_copy(update={"auth": "required", "rate_limit_key": "5/minute"})
    with app_client(create_app(limited, lifespan_hooks=[])) as api:
        codes = [api.get("/metrics", headers=viewer).status_code for _ in range(10)]
    assert codes[:6] == [200] * 6 and set(codes[6:]) == {429}
