"""A GAN run's images: the samples of its fixed seeds stored at each sample step (JSON pixels
or a PNG grid), and the generator run on a seed of the caller's (numpy on the stored weights,
api/services/gan_inference.py), so a client can walk between two seeds."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import Session

from api.deps import EngineDep, SessionDep
from api.http.threads import run_in_threadpool
from api.routes.models import _require_model
from api.routes.params import MAX_INT, ExperimentId
from api.schemas import ERROR_RESPONSES
from api.services import gan_inference, predictors
from core import kinds
from core.errors import Conflict, InvalidFields, NotFound, field_error
from core.kinds.gan_spec import MAX_LATENT
from core.store import artifacts, experiments
from core.store.cache import cache_key
from core.store.errors import ExperimentNotFound
from core.store.samples import read_samples, sample_steps

router = APIRouter(prefix="/experiments", tags=["gan"])
_PNG = "image/png"


class GenerateBody(BaseModel):
    seed: list[float] = Field(
        min_length=1, max_length=MAX_LATENT, description="The latent seed, latent_size values."
    )
    label: int | None = Field(
        default=None, ge=0, le=9, description="The digit asked for (a conditional GAN only)."
    )


class SamplesPublic(BaseModel):
    """GET /experiments/{id}/samples as JSON (documented here; the route writes the bytes
    itself, from the stored uint8 arrays, without building this model)."""

    experiment_id: str
    step: int = Field(description="The sample step these images were drawn at.")
    steps: list[int] = Field(description="Every sample step stored for the run.")
    count: int
    labels: list[int] | None = Field(description="The digit asked of each image (cGAN only).")
    pixels: list[list[int]] = Field(description="784 values 0..255 per image, row-major 28x28.")


class Generated(BaseModel):
    experiment_id: str
    pixels: list[float] = Field(description="784 values in 0..1, row-major 28x28.")


@router.get(
    "/{experiment_id}/samples",
    response_class=Response,
    responses={
        200: {"model": SamplesPublic, "content": {_PNG: {}}},
        409: {"description": "Not a GAN: only GAN runs draw samples."},
        **ERROR_RESPONSES,
    },
)
def get_samples(
    experiment_id: ExperimentId,
    session: SessionDep,
    request: Request,
    step: Annotated[
        int | None, Query(ge=0, le=MAX_INT, description="A sample step; default the last.")
    ] = None,
    format: Annotated[str | None, Query(pattern="^(json|png)$")] = None,
) -> Response:
    """The images of the run's fixed seeds at one sample step (stored when the run ends):
    JSON (uint8 pixels per image, the labels asked for in a conditional GAN, every step
    sampled), or a PNG grid with format=png or Accept: image/png."""
    experiment = experiments.get_experiment(session, experiment_id)
    if experiment is None:
        raise ExperimentNotFound(experiment_id)
    kind = kinds.kind_of_raw(experiment.spec)
    if "samples" not in kind.artifacts:
        raise Conflict(f"experiment {experiment_id} is a {kind.name}: only GAN runs draw samples")
    samples = read_samples(session, experiment_id, step)
    if samples is None:
        what = f"at step {step}" if step is not None else "yet"
        raise NotFound(f"experiment {experiment_id} has no samples {what}")
    wants_png = format == "png" or (format is None and _PNG in request.headers.get("accept", ""))
    if wants_png:
        return Response(gan_inference.png_grid(samples.pixels), media_type=_PNG)
    body: dict[str, Any] = {
        "experiment_id": experiment_id,
        "step": samples.step,
        "steps": sample_steps(session, experiment_id),
        "count": int(samples.pixels.shape[0]),
        "labels": samples.labels,
        "pixels": samples.pixels,
    }
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )


@router.post(
    "/{experiment_id}/generate",
    response_model=Generated,
    responses={409: {"description": "Not a GAN, or not ended yet."}, **ERROR_RESPONSES},
)
async def generate(experiment_id: ExperimentId, body: GenerateBody, engine: EngineDep) -> Generated:
    """The trained generator's image of `seed` (latent_size values; with `label` 0..9 for a
    conditional GAN), computed in numpy from the stored weights."""
    pixels = await run_in_threadpool(_generate, engine, experiment_id, body)
    return Generated(experiment_id=experiment_id, pixels=[float(v) for v in pixels])


def _generate(engine: Engine, experiment_id: str, body: GenerateBody) -> Any:
    with Session(engine) as session:
        info = _require_model(session, experiment_id)
        key = (*cache_key(session, experiment_id), info.sha256)

        def read() -> bytes:
            data = artifacts.read_model(session, experiment_id)
            if data is None:
                raise ExperimentNotFound(experiment_id)
            return data

        loaded = predictors.cached_model(key, read)
    if loaded.kind != "gan":
        raise Conflict(f"experiment {experiment_id} is a {loaded.kind}, not a GAN")
    model: gan_inference.GanModel = loaded.model
    size = model.spec.latent_size
    if len(body.seed) != size:
        raise _invalid("seed", f"{len(body.seed)} values; this generator takes {size}")
    if model.spec.conditional and body.label is None:
        raise _invalid("label", "a conditional GAN draws the digit it is asked for: give 0..9")
    seed = np.asarray(body.seed, dtype=np.float32)
    return gan_inference.generate(model, seed, body.label)


def _invalid(field: str, reason: str) -> Exception:
    return InvalidFields([field_error(field, reason, "body")])
