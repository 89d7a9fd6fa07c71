"""A GAN run's samples: the images of its fixed seeds at each sample step, one row each
(uint8 pixels, and the requested labels of a conditional GAN), written with the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, insert, select
from sqlmodel import Session, SQLModel

import core.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)

SAMPLES = SQLModel.metadata.tables["experiment_samples"]
PIXELS = 784


@dataclass(frozen=True)
class Samples:
    step: int
    pixels: npt.NDArray[np.uint8]  # [count, 784]
    labels: list[int] | None  # the requested digit of each image (conditional GAN)


def save_samples(session: Session, experiment_id: str, samples: Sequence[dict[str, Any]]) -> None:
    """Replace the experiment's samples with `samples` (dicts: step, pixels, labels)."""
    session.execute(delete(SAMPLES).where(SAMPLES.c.experiment_id == experiment_id))
    rows = []
    for sample in samples:
        pixels = np.asarray(sample["pixels"], dtype=np.uint8).reshape(-1, PIXELS)
        labels = sample.get("labels")
        rows.append(
            {
                "experiment_id": experiment_id,
                "step": int(sample["step"]),
                "count": int(pixels.shape[0]),
                "labels": bytes(np.asarray(labels or [], dtype=np.uint8).tobytes()),
                "pixels": pixels.tobytes(),
            }
        )
    if rows:
        session.execute(insert(SAMPLES), rows)


def sample_steps(session: Session, experiment_id: str) -> list[int]:
    query = select(SAMPLES.c.step).where(SAMPLES.c.experiment_id == experiment_id)
    return [int(step) for step in session.execute(query.order_by(SAMPLES.c.step)).scalars()]


def read_samples(session: Session, experiment_id: str, step: int | None = None) -> Samples | None:
    """The samples at `step` (None: the last step sampled); None when there are none."""
    query = select(SAMPLES.c.step, SAMPLES.c.count, SAMPLES.c.labels, SAMPLES.c.pixels).where(
        SAMPLES.c.experiment_id == experiment_id
    )
    if step is not None:
        query = query.where(SAMPLES.c.step == step)
    row = session.execute(query.order_by(SAMPLES.c.step.desc()).limit(1)).first()
    if row is None:
        return None
    pixels = np.frombuffer(row[3], dtype=np.uint8).reshape(int(row[1]), PIXELS)
    labels = np.frombuffer(row[2], dtype=np.uint8).tolist() if row[2] else None
    return Samples(step=int(row[0]), pixels=pixels, labels=labels)
