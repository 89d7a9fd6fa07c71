"""The OpenAPI document says what the server answers: every status, every error body as it is
sent, and the docs pages load nothing from the internet."""

from __future__ import annotations

import re

from api.schemas import ValidationErrorBody
from tests.api.app_client import AppClient


def _operations(schema: dict[str, object]) -> list[tuple[str, str, dict[str, object]]]:
    paths = schema["paths"]
    assert isinstance(paths, dict)
    return [(p, m, op) for p, item in paths.items() for m, op in item.items()]


def test_every_operation_documents_its_errors(client: AppClient) -> None:
    schema = client.get("/openapi.json").json()
    operations = _operations(schema)
    assert len(operations) >= 20
    for path, method, op in operations:
        responses = op["responses"]
        assert isinstance(responses, dict)
        assert "400" in responses, (method, path)
        if method == "post":
            assert {"413", "415", "422"} <= responses.keys(), path
        if "{" in path and not path.startswith("/datasets"):
            assert {"404", "422", "503"} <= responses.keys(), (method, path)
        for status, answer in responses.items():
            if status == "422":
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ValidationErrorBody")
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components
    assert set(components["ValidationErrorBody"]["required"]) == {"detail", "errors"}
    assert set(components["FieldError"]["required"]) == {"field", "in", "reason"}
    assert "/presets" in schema["paths"]  # the submit schema points there


def test_the_documented_422_is_the_422_sent(client: AppClient) -> None:
    for response in (
        client.post("/experiments", json={"epochs": 0}),
        client.get("/experiments", params={"limit": "x"}),
        client.get("/experiments/abcabcab/events", headers={"Last-Event-ID": "x"}),
        client.post("/ablations", json={"seeds": 0}),
    ):
        assert response.status_code == 422
        body = ValidationErrorBody.model_validate(response.json())
        assert body.errors and set(response.json()["errors"][0]) == {"field", "in", "reason"}


def test_the_docs_pages_load_only_from_this_server(client: AppClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "http://" not in html and "https://" not in html and "<script>" not in html
        urls = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html)
        assert urls
        for url in urls:
            if url.startswith("data:"):
                continue
            assert url.startswith("/"), url
            assert client.get(url).status_code == 200, url
    assert "validatorUrl: null" in client.get("/static/swagger-init.js").text
