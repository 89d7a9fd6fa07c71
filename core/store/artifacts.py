"""What a finished run leaves besides its curve: the outputs for every test record (float32
blobs, 10,000 x 10 = 400 kB, not 100,000 rows), the checkpoint a lost run resumes from, and
the final weights (a safetensors file the worker writes, the API downloads and predicts with).

The checkpoint is torch's format with the optimizer state (1.9 MB for the book's Adam network)
and exists only to resume; the weights file is a third of that and needs no torch to read, so a
run that ends keeps the weights and, unless TRAINLAB_KEEP_CHECKPOINTS is set, drops the
checkpoint in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, Table, delete, func, insert, select
from sqlmodel import Session

from core.store.cache import LRU, cache_key
from core.store.clock import as_utc, utcnow
from core.store.models import ExperimentModel
from core.store.tables import CHECKPOINTS, PREDICTIONS, lock_if_owner

MODELS: Table = ExperimentModel.__table__  # type: ignore[attr-defined]

NUM_OUTPUTS = 10


@dataclass(frozen=True)
class PredictionsBlob:
    """Outputs for every evaluated test record, in record order (read-only arrays)."""

    outputs: npt.NDArray[np.float32]  # [records, 10]
    labels: npt.NDArray[np.uint8]  # [records]
    predicted: npt.NDArray[np.uint8]  # [records]

    @property
    def records(self) -> int:
        return int(self.labels.shape[0])


def _predictions_bytes(blob: PredictionsBlob) -> int:
    return int(blob.outputs.nbytes + blob.labels.nbytes + blob.predicted.nbytes)


# Bounded by bytes: a full test set's outputs are 420 kB, so 16 MiB holds about forty runs'.
PREDICTIONS_CACHE_BYTES = 16 * 1_048_576
_predictions_cache: LRU[tuple[str, str], PredictionsBlob] = LRU(
    PREDICTIONS_CACHE_BYTES, _predictions_bytes, per_run=True
)


def save_predictions(
    session: Session, experiment_id: str, outputs: Any, labels: Any, predicted: Any
) -> None:
    row = predictions_row(experiment_id, outputs, labels, predicted)
    session.execute(delete(PREDICTIONS).where(PREDICTIONS.c.experiment_id == experiment_id))
    session.execute(insert(PREDICTIONS).values(**row))


def predictions_row(
    experiment_id: str, outputs: Any, labels: Any, predicted: Any
) -> dict[str, Any]:
    """The ExperimentPredictions row: outputs float32 [N, 10], labels and predicted uint8
    [N]. The one place that format is written (bulk loaders use it too)."""
    out = np.ascontiguousarray(outputs, dtype="<f4")
    lab = np.ascontiguousarray(labels, dtype=np.uint8)
    pred = np.ascontiguousarray(predicted, dtype=np.uint8)
    if out.ndim != 2 or out.shape[1] != NUM_OUTPUTS or not (out.shape[0] == lab.size == pred.size):
        raise ValueError(
            f"predictions must be outputs [N, {NUM_OUTPUTS}], labels [N], predicted [N]; got "
            f"{out.shape}, {lab.shape}, {pred.shape}"
        )
    return {
        "experiment_id": experiment_id,
        "records": int(lab.size),
        "outputs": out.tobytes(),
        "labels": lab.tobytes(),
        "predicted": pred.tobytes(),
    }


def read_predictions(session: Session, experiment_id: str) -> PredictionsBlob | None:
    key = cache_key(session, experiment_id)
    cached = _predictions_cache.get(key)
    if cached is not None:
        return cached
    row = session.execute(
        select(
            PREDICTIONS.c.records,
            PREDICTIONS.c.outputs,
            PREDICTIONS.c.labels,
            PREDICTIONS.c.predicted,
        ).where(PREDICTIONS.c.experiment_id == experiment_id)
    ).first()
    if row is None:
        return None
    # frombuffer over immutable bytes gives read-only arrays: safe to share from the cache.
    blob = PredictionsBlob(
        outputs=np.frombuffer(row.outputs, dtype="<f4").reshape(row.records, NUM_OUTPUTS),
        labels=np.frombuffer(row.labels, dtype=np.uint8),
        predicted=np.frombuffer(row.predicted, dtype=np.uint8),
    )
    _predictions_cache.put(key, blob)
    return blob


def save_checkpoint(
    session: Session, experiment_id: str, attempt: int, step: int, data: bytes
) -> bool:
    """Replace the experiment's checkpoint; False when the attempt is no longer current."""
    if not lock_if_owner(session, experiment_id, attempt):
        return False
    session.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.experiment_id == experiment_id))
    session.execute(
        insert(CHECKPOINTS).values(
            experiment_id=experiment_id, step=step, created_at=utcnow(), data=data
        )
    )
    return True


def get_checkpoint(session: Session, experiment_id: str) -> tuple[int, bytes] | None:
    row = session.execute(
        select(CHECKPOINTS.c.step, CHECKPOINTS.c.data).where(
            CHECKPOINTS.c.experiment_id == experiment_id
        )
    ).first()
    return None if row is None else (int(row.step), bytes(row.data))


# Final weights -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """What is stored about a run's final weights, without the bytes."""

    experiment_id: str
    step: int
    size: int
    sha256: str
    created_at: datetime


def save_model(
    session: Session,
    experiment_id: str,
    attempt: int,
    *,
    step: int,
    data: bytes | None,
    keep_checkpoint: bool,
) -> bool:
    """Store the run's final weights (a safetensors file; None: the run has no usable model)
    and, unless `keep_checkpoint`, drop its checkpoint: a run that has ended is never resumed.
    Call it in the transaction that finishes the run, before `finish` (it needs the attempt
    to still be the running one). False, writing nothing, when the attempt isn't current."""
    if not lock_if_owner(session, experiment_id, attempt):
        return False
    session.execute(delete(MODELS).where(MODELS.c.experiment_id == experiment_id))
    if data is not None:
        session.execute(
            insert(MODELS).values(
                experiment_id=experiment_id,
                step=step,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                created_at=utcnow(),
                data=data,
            )
        )
    if not keep_checkpoint:
        session.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.experiment_id == experiment_id))
    return True


def model_info(session: Session, experiment_id: str) -> ModelInfo | None:
    """The stored weights' step, size and hash: one small read, no blob."""
    c = MODELS.c
    row = session.execute(
        select(c.step, c.size, c.sha256, c.created_at).where(c.experiment_id == experiment_id)
    ).first()
    if row is None:
        return None
    created = as_utc(row.created_at) or row.created_at
    return ModelInfo(experiment_id, int(row.step), int(row.size), str(row.sha256), created)


# A download reads the weights this many bytes at a time: the API holds one chunk per
# download, not the whole file (up to hundreds of megabytes).
MODEL_CHUNK_BYTES = 1_048_576


class ModelChanged(Exception):
    """The weights being streamed were deleted or replaced between two chunks."""


def iter_model(engine: Engine, info: ModelInfo, chunk_bytes: int | None = None) -> Iterator[bytes]:
    """The weights file `info` describes, `chunk_bytes` at a time: each chunk one indexed read
    of a slice of the blob (substr on SQLite and PostgreSQL alike), in a short session of its
    own, so no transaction or connection is held between chunks. Each read names the file's
    hash; if the run was deleted or its file replaced meanwhile, ModelChanged ends the stream
    (a client then sees a truncated download, never a mix of two files)."""
    c = MODELS.c
    chunk_bytes = chunk_bytes or MODEL_CHUNK_BYTES
    for offset in range(0, info.size, chunk_bytes):
        with Session(engine) as session:
            chunk = session.execute(
                select(func.substr(c.data, offset + 1, chunk_bytes)).where(
                    c.experiment_id == info.experiment_id, c.sha256 == info.sha256
                )
            ).scalar_one_or_none()
        if chunk is None:
            raise ModelChanged(f"the model of experiment {info.experiment_id} changed")
        yield bytes(chunk)


def read_model(session: Session, experiment_id: str) -> bytes | None:
    """The final weights as the safetensors file's bytes."""
    data = session.execute(
        select(MODELS.c.data).where(MODELS.c.experiment_id == experiment_id)
    ).scalar_one_or_none()
    return None if data is None else bytes(data)
