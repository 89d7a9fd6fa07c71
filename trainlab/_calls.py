"""Every request the client makes, as data: method, path, parameters, body, and how to read
the answer. Client and AsyncClient send the same Calls, so the two cannot disagree on a path
or a parameter; only the sending (and the iterators) is written twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

import trainlab.models as models

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

Compare = Literal["reference", "successive"]
# Resume after any step there can be: the event stream then sends status and progress only.
NO_POINTS = 2**31 - 1


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def request_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "params": {k: v for k, v in self.params.items() if v is not None},
            "headers": self.headers,
        }
        if self.content is not None:
            args["content"] = self.content
        elif self.json is not None:
            args["json"] = self.json
        return args


def _as(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def new_idempotency_key() -> str:
    return f"trainlab-{uuid.uuid4().hex}"


def _idempotent(key: str | None) -> dict[str, str]:
    """Every create carries an Idempotency-Key: a retry of the call (the client's own, after a
    429 or a dropped answer, or the caller's with the same key) makes one run, not two."""
    return {"Idempotency-Key": key or new_idempotency_key()}


# --- experiments ---------------------------------------------------------------------------


def create_experiment(
    *,
    preset: str | None,
    overrides: Mapping[str, Any] | None,
    spec: Mapping[str, Any] | None,
    name: str | None,
    tags: Sequence[str] | None,
    idempotency_key: str | None,
) -> Call[models.Experiment]:
    if spec is not None and (preset is not None or overrides):
        raise ValueError("give either spec, or preset (with overrides), not both")
    body: dict[str, Any] = dict(spec) if spec is not None else {"overrides": dict(overrides or {})}
    if preset is not None:
        body["preset"] = preset
    if name is not None:
        body["name"] = name
    if tags:
        body["tags"] = list(tags)
    return Call(
        "POST", "/experiments", _as(models.Experiment), json=body,
        headers=_idempotent(idempotency_key),
    )  # fmt: skip


def get_experiment(experiment_id: str) -> Call[models.Experiment]:
    return Call("GET", f"/experiments/{_seg(experiment_id)}", _as(models.Experiment))


def list_experiments(filters: Mapping[str, Any], cursor: str | None) -> Call[models.ExperimentPage]:
    return Call(
        "GET", "/experiments", _as(models.ExperimentPage), params={**filters, "cursor": cursor}
    )


def loss(
    experiment_id: str, max_points: int | None, since_step: int | None, series: str | None = None
) -> Call[models.LossSeries]:
    params = {"max_points": max_points, "since_step": since_step, "series": series}
    return Call(
        "GET", f"/experiments/{_seg(experiment_id)}/loss", _as(models.LossSeries), params=params
    )


def predictions(
    experiment_id: str,
    records: Sequence[int] | str | None,
    misclassified: bool,
    offset: int,
    limit: int,
) -> Call[models.PredictionsPage]:
    if records is not None and not isinstance(records, str):
        records = ",".join(str(int(r)) for r in records)
    params: dict[str, Any] = {"records": records}
    if records is None:
        params |= {"misclassified": "true" if misclassified else None, "offset": offset}
        params["limit"] = limit
    return Call(
        "GET",
        f"/experiments/{_seg(experiment_id)}/predictions",
        _as(models.PredictionsPage),
        params=params,
    )


def cancel_experiment(experiment_id: str) -> Call[models.Experiment]:
    # `{}`: the body a POST without fields carries (the server asks for JSON on every POST).
    path = f"/experiments/{_seg(experiment_id)}/cancel"
    return Call("POST", path, _as(models.Experiment), json={})


def delete_experiment(experiment_id: str, cancel: bool) -> Call[models.ExperimentDeleted]:
    params = {"cancel": "true" if cancel else None}
    path = f"/experiments/{_seg(experiment_id)}"
    return Call("DELETE", path, _as(models.ExperimentDeleted), params=params)


def predict(
    experiment_id: str,
    pixels: Sequence[float] | Sequence[Sequence[float]] | None,
    png: bytes | None,
) -> Call[models.Prediction]:
    path = f"/experiments/{_seg(experiment_id)}/predict"
    if (pixels is None) == (png is None):
        raise ValueError("give exactly one of pixels= or png=")
    if png is not None:
        headers = {"Content-Type": "image/png"}
        return Call("POST", path, _as(models.Prediction), content=png, headers=headers)
    rows = [list(r) if isinstance(r, Sequence) else r for r in pixels or []]
    return Call("POST", path, _as(models.Prediction), json={"pixels": rows})


def model_path(experiment_id: str) -> str:
    return f"/experiments/{_seg(experiment_id)}/model"


def events_path(experiment_id: str) -> str:
    return f"/experiments/{_seg(experiment_id)}/events"


# --- ablations -----------------------------------------------------------------------------


def create_ablation(body: dict[str, Any], idempotency_key: str | None) -> Call[models.Ablation]:
    body = {k: v for k, v in body.items() if v is not None}
    headers = _idempotent(idempotency_key)
    return Call("POST", "/ablations", _as(models.Ablation), json=body, headers=headers)


def get_ablation(ablation_id: str) -> Call[models.Ablation]:
    return Call("GET", f"/ablations/{_seg(ablation_id)}", _as(models.Ablation))


@dataclass(frozen=True)
class AblationPage:
    items: list[models.AblationListed]
    next_cursor: str | None


_ABLATIONS = TypeAdapter(list[models.AblationListed])


def _ablation_page(response: httpx.Response) -> AblationPage:
    body = response.json()
    return AblationPage(_ABLATIONS.validate_python(body["items"]), body.get("next_cursor"))


def list_ablations(limit: int, cursor: str | None) -> Call[AblationPage]:
    params = {"limit": limit, "cursor": cursor}
    return Call("GET", "/ablations", _ablation_page, params=params)


def summary(
    ablation_id: str, compare: Compare, reference: int | None
) -> Call[models.AblationSummary]:
    params = {"compare": compare, "reference": reference}
    path = f"/ablations/{_seg(ablation_id)}/summary"
    return Call("GET", path, _as(models.AblationSummary), params=params)


def curves(ablation_id: str, max_points: int, smoothing: float) -> Call[models.AblationCurves]:
    params = {"max_points": max_points, "smoothing": smoothing}
    path = f"/ablations/{_seg(ablation_id)}/curves"
    return Call("GET", path, _as(models.AblationCurves), params=params)


def cancel_ablation(ablation_id: str) -> Call[models.Ablation]:
    return Call("POST", f"/ablations/{_seg(ablation_id)}/cancel", _as(models.Ablation), json={})


def delete_ablation(ablation_id: str, cancel: bool) -> Call[models.AblationDeleted]:
    params = {"cancel": "true" if cancel else None}
    path = f"/ablations/{_seg(ablation_id)}"
    return Call("DELETE", path, _as(models.AblationDeleted), params=params)


# --- keys and the caller -------------------------------------------------------------------

_KEYS = TypeAdapter(list[models.Key])


def create_key(name: str, role: models.Role) -> Call[models.IssuedKey]:
    # No Idempotency-Key: the secret is shown once and never stored, so the server could not
    # answer a replay with it; a retried create makes a second key, which can be revoked.
    return Call("POST", "/keys", _as(models.IssuedKey), json={"name": name, "role": role})


def list_keys(include_revoked: bool) -> Call[list[models.Key]]:
    params = {"include_revoked": "true" if include_revoked else None}
    return Call("GET", "/keys", lambda r: _KEYS.validate_json(r.content), params=params)


def revoke_key(prefix: str) -> Call[models.Key]:
    return Call("DELETE", f"/keys/{_seg(prefix)}", _as(models.Key))


def me() -> Call[models.Caller]:
    return Call("GET", "/me", _as(models.Caller))
