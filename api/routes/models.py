"""A run's trained model: download it (safetensors, the spec in its metadata) and ask it
about one 28x28 image. Both read the final weights the worker stored when the run ended; the
forward pass is numpy (api/services/inference.py), so the API process needs no torch."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import Session

from api.deps import EngineDep, SessionDep
from api.http.threads import run_in_threadpool
from api.routes.params import ExperimentId
from api.schemas import ERROR_RESPONSES
from api.services import gan_inference, inference, predictors
from api.services.digits import PIXELS, Pixels, pixels_from_json, pixels_from_png
from core.errors import invalid
from core.store import artifacts, experiments
from core.store.cache import cache_key
from core.store.errors import ExperimentNotFound
from core.store.models import TERMINAL

router = APIRouter(prefix="/experiments", tags=["models"])

# POSTs that change nothing and take images as well as JSON (see api/middleware.JsonPostsOnly).
UPLOAD_PATHS = (re.compile(r"^/experiments/[^/]+/predict$"),)

_SAFETENSORS = "application/octet-stream"


class Prediction(BaseModel):
    experiment_id: str
    outputs: list[float] = Field(description="The network's 10 outputs, one per class 0..9.")
    predicted: int = Field(description="The class with the largest output.")


class PixelsBody(BaseModel):
    pixels: list[float] | list[list[float]] = Field(
        description=f"{PIXELS} values in 0..1 (row-major 28x28, white digit on black), or 28 "
        "rows of 28."
    )


_NO_MODEL: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such experiment, or it ended without a model (failed)."},
    409: {"description": "The run has not ended yet: no final weights so far."},
}


def _require_model(session: Session, experiment_id: str) -> artifacts.ModelInfo:
    status = experiments.get_status(session, experiment_id)
    if status is None:
        raise ExperimentNotFound(experiment_id)
    info = artifacts.model_info(session, experiment_id)
    if info is not None:
        return info
    if status in TERMINAL:
        raise HTTPException(
            404,
            f"experiment {experiment_id} ended {status} without a trained model (a failed run, "
            "or one stopped before its first step, keeps none)",
        )
    raise HTTPException(
        409,
        f"experiment {experiment_id} is {status}: its weights are stored when the run ends",
    )


def _filename(name: str | None, experiment_id: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name or "").strip("-.")[:40]
    return f"trainlab-{slug + '-' if slug else ''}{experiment_id[:8]}.safetensors"


@router.get(
    "/{experiment_id}/model",
    response_class=Response,
    responses={
        200: {
            "description": "The final weights as a .safetensors file (tensor names are the "
            "engine's nn.Sequential keys; the metadata carries the spec), or with "
            "format=json the spec and a list of the tensors.",
            "content": {_SAFETENSORS: {}, "application/json": {}},
        },
        **_NO_MODEL,
        **ERROR_RESPONSES,
    },
)
def download_model(
    experiment_id: ExperimentId,
    session: SessionDep,
    engine: EngineDep,
    format: Annotated[
        Literal["safetensors", "json"],
        Query(description="`safetensors` (the file) or `json` (spec and tensor list)."),
    ] = "safetensors",
    network: Annotated[
        Literal["discriminator", "generator"] | None,
        Query(description="A GAN's one network as a file of its own; default both."),
    ] = None,
) -> Response:
    info = _require_model(session, experiment_id)
    if format == "json" or network is not None:
        data = artifacts.read_model(session, experiment_id)
        if data is None:  # deleted between the two reads
            raise ExperimentNotFound(experiment_id)
        if network is not None:
            if predictors.file_kind(data) != "gan":
                invalid("network", "only a GAN's model file holds networks to choose from")
            data = gan_inference.network_file(data, network)
        if format == "json":
            return Response(orjson.dumps(_describe(info, data)), media_type="application/json")
        return _network_download(session, info, network, data)
    experiment = experiments.require_experiment(session, experiment_id)
    filename = _filename(experiment.name, experiment_id)
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Content-Length": str(info.size),
        "ETag": f'"{info.sha256}"',
        "X-Trainlab-Step": str(info.step),
    }
    # Streamed from the store a chunk at a time (core/store/artifacts.iter_model): a download
    # the client reads slowly, or never, holds one chunk of the API's memory, not the file.
    return StreamingResponse(
        artifacts.iter_model(engine, info), media_type=_SAFETENSORS, headers=headers
    )


def _network_download(
    session: Session, info: artifacts.ModelInfo, network: str | None, data: bytes
) -> Response:
    """One network of a GAN's model file: cut from the whole file, so sent from memory (a
    network is at most a few MB) under an ETag of its own."""
    experiment = experiments.require_experiment(session, info.experiment_id)
    filename = _filename(experiment.name, info.experiment_id).replace(
        ".safetensors", f"-{network}.safetensors"
    )
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "ETag": f'"{info.sha256}-{network}"',
        "X-Trainlab-Step": str(info.step),
    }
    return Response(data, media_type=_SAFETENSORS, headers=headers)


def _describe(info: artifacts.ModelInfo, data: bytes) -> dict[str, Any]:
    metadata = inference.read_metadata(data)
    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_length])
    tensors = [
        {"name": name, "dtype": entry["dtype"], "shape": entry["shape"]}
        for name, entry in header.items()
        if name != "__metadata__"
    ]
    return {
        "experiment_id": info.experiment_id,
        "step": info.step,
        "size": info.size,
        "sha256": info.sha256,
        "created_at": info.created_at.isoformat(),
        "spec": json.loads(metadata.get("spec", "null")),
        "metadata": metadata,
        "tensors": sorted(tensors, key=lambda t: _layer_order(t["name"])),
    }


def _layer_order(name: str) -> tuple[int, str]:
    index, _, rest = name.partition(".")
    return (int(index), rest) if index.isdigit() else (1 << 30, name)


_PREDICT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": PixelsBody.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"image": {"type": "string", "format": "binary"}},
                "required": ["image"],
            }
        },
        "image/png": {"schema": {"type": "string", "format": "binary"}},
    },
}


@router.post(
    "/{experiment_id}/predict",
    response_model=Prediction,
    openapi_extra={"requestBody": _PREDICT_BODY},
    responses={
        415: {"description": "The body is not JSON, multipart/form-data or image/png."},
        **_NO_MODEL,
        **ERROR_RESPONSES,
    },
)
async def predict(experiment_id: ExperimentId, request: Request, engine: EngineDep) -> Prediction:
    """The trained network's 10 outputs for one 28x28 image: JSON `{"pixels": [784 values in
    0..1]}` (or 28 rows of 28), a PNG as the multipart field `image`, or a raw image/png body.
    The PNG must be 28x28; colour becomes gray (ITU-R 601-2 luma) and transparency black.
    Outputs read as GET /predictions' do (softmax probabilities for a logits network)."""
    # The cheap check first, and decoding off the event loop: a body costs nothing until the
    # experiment is known to have a model.
    await run_in_threadpool(_check_model, engine, experiment_id)
    pixels = await _read_pixels(request)
    outputs, predicted = await run_in_threadpool(_answer, engine, experiment_id, pixels)
    return Prediction(experiment_id=experiment_id, outputs=outputs, predicted=predicted)


async def _read_pixels(request: Request) -> Pixels:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return await run_in_threadpool(_pixels_from_json_body, await request.body())
    if kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=4) as form:
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                invalid("image", "required: a PNG file in the multipart field `image`", "body")
            return await run_in_threadpool(pixels_from_png, await upload.read())
    if kind == "image/png":
        return await run_in_threadpool(pixels_from_png, await request.body(), "body")
    raise HTTPException(
        415,
        f"unsupported content type {kind or '(none)'!r}: send application/json "
        '{"pixels": [...]}, a multipart/form-data field `image`, or an image/png body',
    )


def _pixels_from_json_body(body: bytes) -> Pixels:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        invalid("body", f"the body is not valid JSON ({exc})", "body")
    return pixels_from_json(parsed)


def _check_model(engine: Engine, experiment_id: str) -> None:
    with Session(engine) as session:
        _require_model(session, experiment_id)


def _answer(engine: Engine, experiment_id: str, pixels: Pixels) -> tuple[list[float], int]:
    with Session(engine) as session:
        info = _require_model(session, experiment_id)
        key = (*cache_key(session, experiment_id), info.sha256)

        def read() -> bytes:
            data = artifacts.read_model(session, experiment_id)
            if data is None:
                raise ExperimentNotFound(experiment_id)
            return data

        loaded = predictors.cached_model(key, read)
    return predictors.predict(loaded, pixels)
