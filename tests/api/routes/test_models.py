"""GET /experiments/{id}/model and POST /experiments/{id}/predict on both backends: the file
downloads with its spec, and predictions from JSON pixels, a multipart PNG or a raw PNG body
equal the engine's stored outputs for the same test record."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load
from sqlalchemy import Engine, event

from api.services import predictors
from core.store import artifacts
from core.store.models import Status
from core.store.session import session_scope
from tests.api.app_client import AppClient
from tests.api.trained_runs import trained_run
from tests.core.store.helpers import finish, queued, running


def test_download_the_model_file_and_its_description(client: AppClient, engine: Engine) -> None:
    run = trained_run(engine, name="book / run 1")
    answer = client.get(f"/experiments/{run.id}/model")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/octet-stream"
    disposition = answer.headers["content-disposition"]
    assert disposition == f'attachment; filename="trainlab-book-run-1-{run.id[:8]}.safetensors"'
    assert answer.headers["x-trainlab-step"] == str(run.result.steps)
    tensors = load(answer.content)
    assert sorted(tensors) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert tensors["0.weight"].shape == (200, 784) and tensors["0.weight"].dtype == np.float32

    described = client.get(f"/experiments/{run.id}/model", params={"format": "json"}).json()
    assert described["spec"] == run.spec.model_dump(mode="json")
    assert described["step"] == run.result.steps and described["size"] == len(answer.content)
    assert answer.headers["etag"] == f'"{described["sha256"]}"'
    assert [t["name"] for t in described["tensors"]] == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert described["metadata"]["experiment_id"] == run.id
    bad = client.get(f"/experiments/{run.id}/model", params={"format": "onnx"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "format"


def test_no_model_yet_or_none_at_all(client: AppClient, engine: Engine) -> None:
    waiting = queued(engine)
    assert client.get(f"/experiments/{waiting}/model").status_code == 409
    answer = client.post(f"/experiments/{waiting}/predict", json={"pixels": [0.0] * 784})
    assert answer.status_code == 409 and "when the run ends" in answer.json()["detail"]
    busy, attempt = running(engine, seed=1)

    assert finish(engine, busy, attempt, status=Status.failed, error="x")
    gone = client.get(f"/experiments/{busy}/model")
    assert gone.status_code == 404 and "without a trained model" in gone.json()["detail"]
    assert client.get("/experiments/nopenope/model").status_code == 404
    assert (
        client.post("/experiments/nopenope/predict", json={"pixels": [0.0] * 784}).status_code
        == 404
    )


@pytest.mark.parametrize("record", [0, 19, 57])
def test_predict_equals_the_stored_outputs(client: AppClient, engine: Engine, record: int) -> None:
    run = trained_run(engine)
    pixels = run.test_x[record]
    stored = client.get(f"/experiments/{run.id}/predictions", params={"records": record}).json()
    expected = stored["records"][0]

    as_json = client.post(f"/experiments/{run.id}/predict", json={"pixels": pixels.tolist()})
    assert as_json.status_code == 200, as_json.text
    body = as_json.json()
    assert set(body) == {"experiment_id", "outputs", "predicted"}
    assert body["experiment_id"] == run.id and body["predicted"] == expected["predicted"]
    np.testing.assert_allclose(body["outputs"], expected["outputs"], rtol=0, atol=1e-6)
    rows = pixels.reshape(28, 28).tolist()
    assert client.post(f"/experiments/{run.id}/predict", json={"pixels": rows}).json() == body

    # The same record as a PNG: MNIST's uint8 pixels, exactly.
    image = Image.fromarray(np.rint(pixels * 255).astype(np.uint8).reshape(28, 28), mode="L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    upload = client.post(
        f"/experiments/{run.id}/predict",
        files={"image": ("digit.png", buffer.getvalue(), "image/png")},
    )
    assert upload.status_code == 200, upload.text
    np.testing.assert_allclose(upload.json()["outputs"], expected["outputs"], rtol=0, atol=1e-6)
    raw = client.post(
        f"/experiments/{run.id}/predict",
        content=buffer.getvalue(),
        headers={"content-type": "image/png"},
    )
    assert raw.json() == upload.json()


def test_predict_with_a_logits_network_reports_probabilities(
    client: AppClient, engine: Engine
) -> None:
    run = trained_run(engine, **{"model.output": "none", "loss": "cross_entropy"})
    answer = client.post(
        f"/experiments/{run.id}/predict", json={"pixels": run.test_x[3].tolist()}
    ).json()
    assert abs(sum(answer["outputs"]) - 1.0) < 1e-5
    np.testing.assert_allclose(
        answer["outputs"], run.result.predictions.outputs[3], rtol=0, atol=1e-6
    )


def test_bad_images_are_refused_with_the_field(client: AppClient, engine: Engine) -> None:
    run = trained_run(engine)
    url = f"/experiments/{run.id}/predict"

    def error(answer: object) -> dict[str, str]:
        assert answer.status_code == 422, answer.text  # type: ignore[attr-defined]
        first: dict[str, str] = answer.json()["errors"][0]  # type: ignore[attr-defined]
        return first

    assert error(client.post(url, json={"pixels": [2.0] * 784}))["field"] == "pixels[0]"
    assert error(client.post(url, json={"pixels": [0.0] * 100}))["field"] == "pixels"
    not_json = client.post(url, content=b"{", headers={"content-type": "application/json"})
    assert error(not_json)["field"] == "body"
    big = io.BytesIO()
    Image.new("L", (32, 32)).save(big, format="PNG")
    wrong_size = error(client.post(url, files={"image": ("d.png", big.getvalue(), "image/png")}))
    assert wrong_size["field"] == "image" and "got 32x32" in wrong_size["reason"]
    text = error(client.post(url, files={"image": ("d.txt", b"hello", "text/plain")}))
    assert "not a PNG" in text["reason"]
    assert (
        error(client.post(url, files={"other": ("d.png", b"x", "image/png")}))["field"] == "image"
    )
    unsupported = client.post(url, content=b"x", headers={"content-type": "text/plain"})
    assert unsupported.status_code == 415 and "application/json" in unsupported.json()["detail"]


def test_openapi_documents_download_and_predict(client: AppClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    model = paths["/experiments/{experiment_id}/model"]["get"]
    assert {"200", "404", "409"} <= set(model["responses"])
    predict = paths["/experiments/{experiment_id}/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {
        "application/json",
        "multipart/form-data",
        "image/png",
    }
    assert {"200", "404", "409", "415", "422"} <= set(predict["responses"])
    json_schema = predict["requestBody"]["content"]["application/json"]["schema"]
    assert json.dumps(json_schema).count("pixels") >= 1


def test_a_download_streams_the_file_in_bounded_chunks(
    client: AppClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = trained_run(engine)
    whole = client.get(f"/experiments/{run.id}/model").content
    chunk = 4096
    monkeypatch.setattr(artifacts, "MODEL_CHUNK_BYTES", chunk)
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "experiment_models" in statement and "substr" in statement.lower():
            reads.append(statement)

    event.listen(Engine, "before_cursor_execute", count)  # the app's engine too
    try:
        answer = client.get(f"/experiments/{run.id}/model")
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert answer.status_code == 200 and answer.content == whole
    assert answer.headers["content-length"] == str(len(whole))
    # One read of at most `chunk` bytes per chunk, never the whole blob at once.
    assert len(reads) == -(-len(whole) // chunk) > 1
    with session_scope(engine) as session:
        info = artifacts.model_info(session, run.id)
    assert info is not None
    parts = list(artifacts.iter_model(engine, info, chunk))
    assert all(len(part) <= chunk for part in parts) and b"".join(parts) == whole


def test_the_model_cache_is_bounded_by_bytes_and_forgets_deleted_runs(
    client: AppClient, engine: Engine
) -> None:
    first, second = trained_run(engine), trained_run(engine, seed=2)
    before = predictors.cached_bytes()
    sizes = []
    for run in (first, second):
        answer = client.post(f"/experiments/{run.id}/predict", json={"pixels": [0.0] * 784})
        assert answer.status_code == 200
        with session_scope(engine) as session:
            info = artifacts.model_info(session, run.id)
        assert info is not None
        sizes.append(info.size)
    assert predictors.cached_bytes() == before + sum(sizes) <= predictors.MODEL_CACHE_BYTES
    assert client.delete(f"/experiments/{first.id}").status_code == 200
    assert predictors.cached_bytes() == before + sizes[1]
