"""What POST /experiments/{id}/predict runs, by the kind of job the stored model file holds
(core/kinds declares the kinds): each kind's numpy half, so the API stays free of torch.

A model file carries its spec in its metadata; the spec's `kind` (none: a classifier) picks
the predictor, which decodes the file once (kept in an LRU keyed by database URL, experiment
id and sha256, so a second prediction costs one indexed read of the hash) and answers for one
image. The LRU is bounded by bytes (MODEL_CACHE_BYTES, each model counted at its file's size,
which its decoded arrays take), not by entries: models range from kilobytes to hundreds of
megabytes. A deleted run's models are dropped from it (`forget`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from api.services import gan_inference, inference
from api.services.digits import Pixels
from core import kinds
from core.store.cache import LRU


@dataclass(frozen=True)
class Predictor:
    decode: Callable[[bytes], Any]  # the model file's bytes -> a model ready to answer
    # One image -> the outputs and the predicted class (the answer's `outputs`, `predicted`).
    predict: Callable[[Any, Pixels], tuple[list[float], int]]


_PREDICTORS: dict[str, Predictor] = {
    kinds.CLASSIFIER.name: Predictor(decode=inference.decode, predict=inference.predict),
    # A GAN answers /predict with its discriminator (P(real)); /generate with its generator.
    kinds.GAN.name: Predictor(decode=gan_inference.decode, predict=gan_inference.predict),
}


@contextmanager
def registered(kind: str, predictor: Predictor) -> Iterator[Predictor]:
    """`predictor` answers for `kind` during a with-block (tests add fake kinds this way)."""
    if kind in _PREDICTORS:
        raise ValueError(f"kind {kind!r} has a predictor already")
    _PREDICTORS[kind] = predictor
    try:
        yield predictor
    finally:
        del _PREDICTORS[kind]


def predictor_names() -> tuple[str, ...]:
    return tuple(_PREDICTORS)


def predictor_for(kind: str) -> Predictor:
    kinds.get(kind)  # a kind core does not know is refused with core's message
    predictor = _PREDICTORS.get(kind)
    if predictor is None:
        raise kinds.UnknownKindError(
            f"kind {kind!r} has no predictor in the API (api/services/predictors.py)"
        )
    return predictor


@dataclass(frozen=True)
class LoadedModel:
    kind: str
    model: Any  # what the kind's predictor decoded
    nbytes: int = 0  # the model file's size: what the decoded arrays take, about


def file_kind(data: bytes) -> str:
    """The kind of job whose model file `data` is, from the spec in its metadata."""
    spec = inference.read_metadata(data).get("spec")
    try:
        raw = json.loads(spec) if spec is not None else None
    except ValueError:
        raw = None
    # A file without a readable spec goes to the classifier's decode, which names the fault
    # as it always has.
    return kinds.kind_name(raw) if isinstance(raw, dict) else kinds.DEFAULT_KIND


def load(data: bytes) -> LoadedModel:
    """Decode a model file with its kind's predictor (ModelFileError if it cannot be)."""
    try:
        kind = file_kind(data)
        predictor = predictor_for(kind)
    except kinds.UnknownKindError as exc:
        raise inference.ModelFileError(f"unreadable model file: {exc}") from exc
    return LoadedModel(kind, predictor.decode(data), len(data))


# A few of the largest models a run may keep, or hundreds of the book's (600 kB each). A model
# larger than this is decoded for each prediction and not kept.
MODEL_CACHE_BYTES = 256 * 1_048_576
_models: LRU[tuple[str, str, str], LoadedModel] = LRU(
    MODEL_CACHE_BYTES, lambda m: m.nbytes, per_run=True
)


def cached_bytes() -> int:
    """What the decoded models kept in this process take, in bytes."""
    return _models.total


def forget(database_url: str, experiment_ids: Collection[str]) -> None:
    """Drop the decoded models of deleted runs from this process's cache."""
    gone = set(experiment_ids)
    _models.discard_where(lambda key: key[0] == database_url and key[1] in gone)


def cached_model(key: tuple[str, str, str], data: Callable[[], bytes]) -> LoadedModel:
    """The decoded model for (database URL, experiment id, sha256); `data` reads the file's
    bytes only on a miss."""
    loaded = _models.get(key)
    if loaded is None:
        loaded = load(data())
        _models.put(key, loaded)
    return loaded


def predict(loaded: LoadedModel, pixels: Pixels) -> tuple[list[float], int]:
    return predictor_for(loaded.kind).predict(loaded.model, pixels)
