"""The replay test's requests, in the order they are made (tests/api/test_replay.py).

Paths name the store's experiments and ablations by label (`{adam-a}`, replay_fixture.py);
a value computed from an earlier answer (a cursor, an ETag, the id a POST made) is a function
of the answers so far. Reads come first, then the writes, each followed by the reads that
show what it changed. Every route of the OpenAPI document is called, or listed in
test_replay.SKIPPED with the reason.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from PIL import Image

Answers = Mapping[str, httpx.Response]
Value = str | Callable[[Answers], str]

SUBSET = {"epochs": 1, "train_limit": 200, "test_limit": 50}
MISSING = "0" * 32
SWEEP = {
    "preset": "seed-adam",
    "overrides": SUBSET,
    "space": {
        "lr": {"type": "log_uniform", "low": 1e-4, "high": 0.1},
        "model.activation": {"type": "choice", "values": ["sigmoid", "leaky_relu"]},
    },
    "seeds": 2,
    "max_trials": 4,
    "validation_records": 100,
}


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    params: dict[str, Value] = field(default_factory=dict)
    headers: dict[str, Value] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    # Whose key the request carries (replay_fixture builds ops: admin, alice: member,
    # bob: viewer); None sends none.
    caller: str | None = "ops"
    # Store the answer's JSON `field` as the label `as_label`, for the paths after it.
    remember: tuple[str, str] | None = None


def _bar() -> np.ndarray:
    """A white vertical bar on black: rows 3..24 of columns 12..15, so row bands 0 and 9
    (replay_weights) stay dark."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[3:25, 12:16] = 255
    return image


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image, mode="L").save(out, format="PNG")
    return out.getvalue()


BAR_PIXELS = [int(v) for v in (_bar().reshape(-1) // 255)]
BAR_ROWS = [[int(v) for v in row] for row in _bar() // 255]
TOP_HALF = np.zeros((28, 28), dtype=np.uint8)
TOP_HALF[:14] = 255


def _etag(name: str) -> Callable[[Answers], str]:
    return lambda answers: answers[name].headers["etag"]


def _cursor(name: str) -> Callable[[Answers], str]:
    return lambda answers: str(answers[name].json()["next_cursor"])


def _get(name: str, path: str, **kwargs: Any) -> Call:
    return Call(name, "GET", path, **kwargs)


READS = [
    _get("healthz", "/healthz", caller=None),
    _get("readyz", "/readyz", caller=None),
    _get("dashboard", "/", caller=None),
    _get("docs", "/docs", caller=None),
    _get("redoc", "/redoc", caller=None),
    _get("openapi", "/openapi.json", caller=None),
    _get("presets", "/presets"),
    _get("me-admin", "/me"),
    _get("me-viewer", "/me", caller="bob"),
    _get("me-no-key", "/me", caller=None),
    _get("me-bad-key", "/me", caller=None, headers={"Authorization": "Bearer tlk_nope"}),
    _get("keys", "/keys"),
    _get("keys-with-revoked", "/keys", params={"include_revoked": "true"}),
    _get("keys-as-member", "/keys", caller="alice"),
    _get("changes", "/changes"),
    _get("metrics", "/metrics"),
    # Listing, filters, sorts, paging.
    _get("list", "/experiments"),
    _get("list-page-1", "/experiments", params={"status": "succeeded", "limit": "5"}),
    _get(
        "list-page-2",
        "/experiments",
        params={"status": "succeeded", "limit": "5", "cursor": _cursor("list-page-1")},
    ),
    _get("list-tag", "/experiments", params={"tag": "replay"}),
    _get("list-preset", "/experiments", params={"preset": "seed-adam", "sort": "-test_accuracy"}),
    _get("list-name", "/experiments", params={"q": "ADAM", "sort": "final_loss"}),
    _get(
        "list-dataset",
        "/experiments",
        params={"dataset": "mnist", "sort": "test_loss", "limit": "3"},
    ),
    _get("list-bad-sort", "/experiments", params={"sort": "accuracy"}),
    _get("list-bad-limit", "/experiments", params={"limit": "0"}),
    _get("list-bad-cursor", "/experiments", params={"cursor": "not-a-cursor"}),
    _get("list-bad-status", "/experiments", params={"status": "sleeping"}),
    # One experiment.
    _get("detail", "/experiments/{adam-a}"),
    _get("detail-unchanged", "/experiments/{adam-a}", headers={"If-None-Match": _etag("detail")}),
    _get("detail-other-etag", "/experiments/{adam-a}", headers={"If-None-Match": '"stale"'}),
    _get("detail-running", "/experiments/{live}"),
    _get("detail-queued", "/experiments/{waiting}"),
    _get("detail-failed", "/experiments/{broken}"),
    _get("detail-cancelled", "/experiments/{dropped}"),
    _get("detail-model", "/experiments/{bands}", caller="bob"),
    _get("detail-missing", f"/experiments/{MISSING}"),
    _get("detail-bad-id", "/experiments/bad id!"),
    _get("loss", "/experiments/{adam-a}/loss"),
    _get("loss-unchanged", "/experiments/{adam-a}/loss", headers={"If-None-Match": _etag("loss")}),
    _get("loss-few", "/experiments/{adam-a}/loss", params={"max_points": "10"}),
    _get("loss-since", "/experiments/{adam-a}/loss", params={"since_step": "120"}),
    _get("loss-running", "/experiments/{live}/loss"),
    _get("loss-queued", "/experiments/{waiting}/loss"),
    _get("loss-bad-points", "/experiments/{adam-a}/loss", params={"max_points": "1"}),
    _get("loss-csv", "/experiments/{adam-a}/loss.csv"),
    _get("loss-csv-few", "/experiments/{live}/loss.csv", params={"max_points": "10"}),
    _get("loss-csv-missing", f"/experiments/{MISSING}/loss.csv"),
    _get("predictions", "/experiments/{adam-b}/predictions"),
    _get("predictions-records", "/experiments/{adam-b}/predictions", params={"records": "0,3,49"}),
    _get(
        "predictions-wrong",
        "/experiments/{adam-b}/predictions",
        params={"misclassified": "true", "limit": "3", "offset": "2"},
    ),
    _get(
        "predictions-page",
        "/experiments/{adam-a}/predictions",
        params={"offset": "45", "limit": "10"},
    ),
    _get("predictions-running", "/experiments/{live}/predictions"),
    _get("predictions-failed", "/experiments/{broken}/predictions"),
    _get("predictions-out-of-range", "/experiments/{adam-a}/predictions", params={"records": "50"}),
    _get("model", "/experiments/{bands}/model"),
    _get("model-json", "/experiments/{bands}/model", params={"format": "json"}),
    _get("model-none", "/experiments/{adam-a}/model"),
    _get("model-running", "/experiments/{live}/model"),
    _get("model-bad-format", "/experiments/{bands}/model", params={"format": "onnx"}),
    _get("events-finished", "/experiments/{adam-a}/events"),
    _get("events-since", "/experiments/{adam-a}/events", params={"since_step": "150"}),
    _get("events-last-id", "/experiments/{adam-a}/events", headers={"Last-Event-ID": "190"}),
    # A running run's stream: its first chunk, then it closes (max_stream_s is tiny here).
    _get("events-running", "/experiments/{live}/events"),
    _get("events-missing", f"/experiments/{MISSING}/events"),
    _get("events-bad-id", "/experiments/{adam-a}/events", headers={"Last-Event-ID": "x1"}),
    # Comparisons.
    _get("compare-loss", "/compare/loss", params={"experiments": "{adam-a},{adam-b},{live}"}),
    _get(
        "compare-loss-smooth",
        "/compare/loss",
        params={"experiments": "{adam-a},{baseline-a}", "smoothing": "0.6", "max_points": "10"},
    ),
    _get("compare-loss-csv", "/compare/loss.csv", params={"experiments": "{adam-a},{live}"}),
    _get(
        "compare-loss-csv-smooth",
        "/compare/loss.csv",
        params={"experiments": "{adam-b},{baseline-a}", "smoothing": "0.9", "max_points": "10"},
    ),
    _get("compare-loss-missing", "/compare/loss", params={"experiments": f"{{adam-a}},{MISSING}"}),
    _get(
        "compare-loss-bad", "/compare/loss", params={"experiments": "{adam-a}", "smoothing": "1.5"}
    ),
    _get(
        "compare-predictions",
        "/compare/predictions",
        params={"experiments": "{adam-a},{adam-b},{baseline-a}"},
    ),
    _get(
        "compare-predictions-records",
        "/compare/predictions",
        params={
            "experiments": "{adam-b},{adam-a}",
            "records": "0,1,2,9",
            "disagreements_limit": "3",
        },
    ),
    _get(
        "compare-predictions-running",
        "/compare/predictions",
        params={"experiments": "{adam-a},{live}"},
    ),
    # Ablations.
    _get("ablations", "/ablations"),
    _get("ablations-page-1", "/ablations", params={"limit": "1"}),
    _get(
        "ablations-page-2",
        "/ablations",
        params={"limit": "1", "cursor": _cursor("ablations-page-1")},
    ),
    _get("ablation-book", "/ablations/{book}"),
    _get("ablation-grid", "/ablations/{grid}", caller="bob"),
    _get("ablation-missing", f"/ablations/{MISSING}"),
    _get("summary", "/ablations/{book}/summary"),
    _get("summary-successive", "/ablations/{book}/summary", params={"compare": "successive"}),
    _get("summary-reference", "/ablations/{book}/summary", params={"reference": "2"}),
    _get("summary-grid", "/ablations/{grid}/summary"),
    _get("summary-bad", "/ablations/{book}/summary", params={"compare": "sideways"}),
    _get("summary-bad-reference", "/ablations/{book}/summary", params={"reference": "9"}),
    _get("summary-csv", "/ablations/{book}/summary.csv"),
    _get(
        "summary-csv-successive", "/ablations/{book}/summary.csv", params={"compare": "successive"}
    ),
    _get("summary-csv-grid", "/ablations/{grid}/summary.csv", params={"reference": "1"}),
    _get("curves", "/ablations/{book}/curves"),
    _get(
        "curves-smooth", "/ablations/{book}/curves", params={"max_points": "10", "smoothing": "0.5"}
    ),
    _get("curves-grid", "/ablations/{grid}/curves"),
    _get("curves-csv", "/ablations/{book}/curves.csv", params={"max_points": "10"}),
    _get("curves-csv-grid", "/ablations/{grid}/curves.csv", params={"smoothing": "0.3"}),
    _get("curves-missing", f"/ablations/{MISSING}/curves"),
    # Test records.
    _get("record", "/datasets/mnist/records/7"),
    _get("record-png", "/datasets/mnist/records/7/image.png"),
    _get("record-out-of-range", "/datasets/mnist/records/10000"),
    _get("record-unknown-dataset", "/datasets/cifar/records/0"),
    # Anything else.
    _get("unknown-path", "/nowhere"),
    Call("wrong-method", "DELETE", "/presets"),
]

PREDICTS = [
    Call("predict", "POST", "/experiments/{bands}/predict", json={"pixels": BAR_PIXELS}),
    Call(
        "predict-rows",
        "POST",
        "/experiments/{bands}/predict",
        json={"pixels": BAR_ROWS},
        caller="bob",
    ),
    Call(
        "predict-png",
        "POST",
        "/experiments/{bands}/predict",
        content=_png(TOP_HALF),
        headers={"Content-Type": "image/png"},
    ),
    Call(
        "predict-form",
        "POST",
        "/experiments/{bands}/predict",
        files={"image": ("digit.png", _png(_bar()), "image/png")},
    ),
    Call("predict-bad-pixel", "POST", "/experiments/{bands}/predict", json={"pixels": [2] * 784}),
    Call("predict-short", "POST", "/experiments/{bands}/predict", json={"pixels": [0] * 10}),
    Call(
        "predict-text",
        "POST",
        "/experiments/{bands}/predict",
        content=b"hello",
        headers={"Content-Type": "text/plain"},
    ),
    Call("predict-no-model", "POST", "/experiments/{adam-a}/predict", json={"pixels": BAR_PIXELS}),
    Call("predict-running", "POST", "/experiments/{live}/predict", json={"pixels": BAR_PIXELS}),
]

_POSTED = {"preset": "seed-bce", "overrides": SUBSET, "name": "posted", "tags": ["new"]}
WRITES = [
    Call(
        "submit",
        "POST",
        "/experiments",
        json=_POSTED,
        caller="alice",
        headers={"Idempotency-Key": "replay-1"},
        remember=("posted", "id"),
    ),
    Call(
        "submit-again",
        "POST",
        "/experiments",
        json=_POSTED,
        caller="alice",
        headers={"Idempotency-Key": "replay-1"},
    ),
    Call(
        "submit-key-reused",
        "POST",
        "/experiments",
        json={**_POSTED, "name": "other"},
        caller="alice",
        headers={"Idempotency-Key": "replay-1"},
    ),
    Call(
        "submit-spec",
        "POST",
        "/experiments",
        caller="alice",
        json={
            "dataset": "fashion-mnist",
            "model": {"hidden": [32, 16]},
            "epochs": 1,
            "train_limit": 100,
            "test_limit": 20,
            "seed": 3,
        },
    ),
    Call(
        "submit-invalid",
        "POST",
        "/experiments",
        json={"preset": "seed-bce", "overrides": {"epochs": 0}},
    ),
    Call("submit-unknown-preset", "POST", "/experiments", json={"preset": "seed-gpt"}),
    Call("submit-as-viewer", "POST", "/experiments", json=_POSTED, caller="bob"),
    Call("submit-no-key", "POST", "/experiments", json=_POSTED, caller=None),
    _get("detail-posted", "/experiments/{posted}"),
    Call("cancel-queued", "POST", "/experiments/{posted}/cancel", json={}, caller="alice"),
    Call("cancel-running", "POST", "/experiments/{live}/cancel", json={}),
    Call("cancel-finished", "POST", "/experiments/{adam-a}/cancel", json={}),
    Call("cancel-as-viewer", "POST", "/experiments/{waiting}/cancel", json={}, caller="bob"),
    Call("cancel-missing", "POST", f"/experiments/{MISSING}/cancel", json={}),
    Call(
        "ablate-again",
        "POST",
        "/ablations",
        caller="alice",
        remember=("grid-again", "id"),
        json={
            "name": "act-grid",
            "preset": "seed-bce",
            "overrides": SUBSET,
            "factors": {"model.activation": ["sigmoid", "leaky_relu"]},
            "seeds": [4],
        },
    ),
    Call(
        "ablate-new",
        "POST",
        "/ablations",
        caller="alice",
        remember=("grid-new", "id"),
        json={
            "preset": "seed-baseline",
            "overrides": SUBSET,
            "factors": {"batch_size": [1, 4]},
            "seeds": 2,
        },
    ),
    Call(
        "ablate-invalid",
        "POST",
        "/ablations",
        json={"design": "grid", "preset": "seed-bce", "factors": {"model.nope": [1, 2]}},
    ),
    # The same runs as act-grid, asked as the base and one variant: reused, not run again.
    Call(
        "ablate-variants",
        "POST",
        "/ablations",
        caller="alice",
        json={
            "design": "variants",
            "preset": "seed-bce",
            "overrides": SUBSET,
            "variants": [{"label": "leaky", "overrides": {"model.activation": "leaky_relu"}}],
            "seeds": [4],
        },
    ),
    Call(
        "ablate-variants-invalid",
        "POST",
        "/ablations",
        json={"design": "variants", "preset": "seed-bce", "variants": [{"overrides": {}}]},
    ),
    Call("ablate-cancel", "POST", "/ablations/{grid-new}/cancel", json={}, caller="alice"),
    Call("ablate-cancel-missing", "POST", f"/ablations/{MISSING}/cancel", json={}),
    _get("ablation-cancelled", "/ablations/{grid-new}"),
    # A GAN's samples and generator, asked of a classifier and of nothing.
    _get("samples-of-classifier", "/experiments/{adam-a}/samples"),
    _get("samples-missing", f"/experiments/{MISSING}/samples"),
    Call("generate-classifier", "POST", "/experiments/{adam-a}/generate", json={"seed": [0.5]}),
    Call("generate-missing", "POST", f"/experiments/{MISSING}/generate", json={"seed": [0.5]}),
    # Sweeps: no background pass runs here, so a sweep stays as it was created (no trials).
    Call(
        "sweep-create",
        "POST",
        "/sweeps",
        caller="alice",
        remember=("sweep", "id"),
        headers={"Idempotency-Key": "replay-sweep"},
        json=SWEEP,
    ),
    # The same key again: the same sweep (Idempotent-Replayed); with another body, 409.
    Call(
        "sweep-create-retried",
        "POST",
        "/sweeps",
        caller="alice",
        headers={"Idempotency-Key": "replay-sweep"},
        json=SWEEP,
    ),
    Call(
        "sweep-key-reused",
        "POST",
        "/sweeps",
        caller="alice",
        headers={"Idempotency-Key": "replay-sweep"},
        json={**SWEEP, "max_trials": 5},
    ),
    Call(
        "sweep-empty-range",
        "POST",
        "/sweeps",
        json={"preset": "seed-adam", "space": {"lr": {"type": "uniform", "low": 1, "high": 1}}},
    ),
    _get("sweeps", "/sweeps"),
    _get("sweep", "/sweeps/{sweep}"),
    _get("sweep-unchanged", "/sweeps/{sweep}", headers={"If-None-Match": _etag("sweep")}),
    _get("sweeps-unchanged", "/sweeps", headers={"If-None-Match": _etag("sweeps")}),
    _get("sweep-missing", f"/sweeps/{MISSING}"),
    _get("sweep-importance", "/sweeps/{sweep}/importance"),
    _get("sweep-trials-csv", "/sweeps/{sweep}/trials.csv"),
    Call("sweep-confirm-early", "POST", "/sweeps/{sweep}/confirm", json={}, caller="alice"),
    Call("sweep-cancel", "POST", "/sweeps/{sweep}/cancel", json={}, caller="alice"),
    Call("sweep-delete", "DELETE", "/sweeps/{sweep}", caller="alice"),
    Call("delete-failed", "DELETE", "/experiments/{broken}"),
    Call("delete-running", "DELETE", "/experiments/{live}"),
    Call("delete-running-cancel", "DELETE", "/experiments/{live}", params={"cancel": "true"}),
    Call("delete-member", "DELETE", "/experiments/{book-0-0}"),
    Call("delete-as-viewer", "DELETE", "/experiments/{adam-b}", caller="bob"),
    Call("delete-missing", "DELETE", f"/experiments/{MISSING}"),
    Call("delete-ablation", "DELETE", "/ablations/{grid-again}"),
    Call("delete-ablation-missing", "DELETE", f"/ablations/{MISSING}"),
    _get("ablations-after", "/ablations"),
    Call(
        "key-create",
        "POST",
        "/keys",
        json={"name": "dave", "role": "viewer"},
        remember=("dave", "prefix"),
    ),
    Call("key-create-invalid", "POST", "/keys", json={"name": "no spaces", "role": "root"}),
    Call("key-create-as-member", "POST", "/keys", json={"name": "eve"}, caller="alice"),
    Call("key-revoke", "DELETE", "/keys/{dave}"),
    Call("key-revoke-missing", "DELETE", "/keys/zzzzzzzz"),
    _get("keys-after", "/keys", params={"include_revoked": "true"}),
    _get("list-after", "/experiments"),
    _get("metrics-after", "/metrics"),
]

CALLS = [*READS, *PREDICTS, *WRITES]
