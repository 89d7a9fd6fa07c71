"""What guards every request: the security headers on every answer, the Host check (DNS
rebinding), control characters in the path, and POSTs that only a JSON-speaking client (not
another web site through a browser) can send."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from api.app import create_app
from api.http.headers import REDOC_CSP, STRICT_CSP
from api.middleware import host_allowed, host_name
from core.settings import Settings
from core.store import experiments
from core.store.session import session_scope
from tests.api.app_client import AppClient, app_client
from tests.conftest import make_settings
from tests.core.store.helpers import queued

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _secured(headers: dict[str, str] | object, csp: str = STRICT_CSP) -> None:
    assert isinstance(headers, dict) or hasattr(headers, "get")
    for name, value in SECURITY.items():
        assert headers.get(name) == value, (name, headers)  # type: ignore[union-attr]
    policy = headers.get("content-security-policy")  # type: ignore[union-attr]
    assert policy == csp and "unsafe-inline" not in STRICT_CSP
    assert "frame-ancestors 'none'" in policy


@pytest.fixture
def failing_client(settings: Settings) -> Iterator[AppClient]:
    app: FastAPI = create_app(settings, lifespan_hooks=[])

    def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", boom)
    with app_client(app) as api:
        yield api


def test_every_answer_carries_the_security_headers(
    client: AppClient, failing_client: AppClient
) -> None:
    answers = [
        client.get("/healthz"),  # 200 JSON
        client.get("/"),  # the dashboard
        client.get("/static/dashboard.js"),
        client.get("/docs"),
        client.get("/experiments/nopenope"),  # 404
        client.get("/experiments", params={"limit": 0}),  # 422
        client.request("PUT", "/experiments"),  # 405
        client.post("/experiments", content=b"{}", headers={"content-type": "text/plain"}),
        client.get("/healthz", headers={"host": "evil.example"}),  # 400
        client.get("/static/index.html%00.js"),  # 400
        failing_client.get("/boom"),  # 500
    ]
    assert [a.status_code for a in answers] == [
        200,
        200,
        200,
        200,
        404,
        422,
        405,
        415,
        400,
        400,
        500,
    ]
    for answer in answers:
        _secured(answer.headers)
    # ReDoc's page alone may use inline styles (styled-components) and a blob worker.
    _secured(client.get("/redoc").headers, REDOC_CSP)


def test_unknown_hosts_are_refused(settings: Settings) -> None:
    with app_client(create_app(settings, lifespan_hooks=[])) as api:
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
            refused = api.get("/healthz", headers={"host": host})
            assert refused.status_code == 400, host
            assert "host" in refused.json()["detail"] and "evil" not in refused.text
        assert api.get("/healthz").status_code == 200  # the test client's own name


def test_default_trusted_hosts_are_loopback_and_the_bind_host() -> None:
    assert make_settings().allowed_hosts == ["127.0.0.1", "localhost", "::1"]
    assert make_settings(host="0.0.0.0").allowed_hosts == ["127.0.0.1", "localhost", "::1"]
    assert make_settings(host="10.0.0.5").allowed_hosts[-1] == "10.0.0.5"
    assert make_settings(trusted_hosts="a.example, b.example").allowed_hosts == [
        "a.example",
        "b.example",
    ]
    loopback = make_settings().allowed_hosts
    for header in ("127.0.0.1:8000", "localhost", "LOCALHOST:1", "[::1]:8000"):
        assert host_allowed(host_name(header), loopback), header
    assert not host_allowed(host_name("attacker.example:8000"), loopback)
    assert host_allowed("api.example.org", ["*.example.org"])
    assert not host_allowed("example.org.evil", ["*.example.org"])
    assert host_allowed("anything", ["*"])


@pytest.mark.parametrize(
    "path",
    ["/static/index.html%00.js", "/experiments/a%0d%0ab", "/x%1b[31m", "/static/%7f"],
)
def test_control_characters_in_the_path_are_400(client: AppClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.json() == {"detail": "the URL path contains control characters"}


def test_posts_without_a_json_content_type_are_415_and_change_nothing(
    client: AppClient, engine: Engine
) -> None:
    experiment_id = queued(engine)
    # What a page on another site can make a browser send without asking first.
    simple = [
        {"content": b"", "headers": {"content-type": "text/plain"}},
        {"content": b"x=1", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        {"content": b"--b--", "headers": {"content-type": "multipart/form-data; boundary=b"}},
        {},  # no body, no content type
    ]
    for request in simple:
        response = client.post(f"/experiments/{experiment_id}/cancel", **request)
        assert response.status_code == 415, response.text
        assert "application/json" in response.json()["detail"]
        spec = b'{"preset": "seed-baseline"}'
        submit = client.post("/experiments", content=spec, headers=request.get("headers", {}))
        assert submit.status_code == 415
    with session_scope(engine) as session:
        found = experiments.get_experiment(session, experiment_id)
        assert found is not None and found.status == "queued" and not found.cancel_requested
        assert experiments.list_experiments(session, limit=10)[0] == [found]
    # With the JSON content type (which a cross-site page cannot send unasked), body or not.
    cancelled = client.post(
        f"/experiments/{experiment_id}/cancel", headers={"content-type": "application/json"}
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_a_method_a_path_does_not_take_is_405_naming_every_method_it_does(
    client: AppClient,
) -> None:
    for method, path, allowed in [
        ("PUT", "/experiments", {"GET", "POST"}),
        ("DELETE", "/ablations", {"GET", "POST"}),
        ("POST", "/experiments/abc", {"GET", "DELETE"}),  # a POST, not to a POST endpoint
    ]:
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert set(response.headers["allow"].split(", ")) - {"HEAD"} == allowed
