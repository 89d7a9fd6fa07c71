"""Each kind of job's torch half, by kind name (core/kinds declares the kinds): the engine
entry that trains its runs, alone or as a fused group.

The job (worker/job.py, worker/fused_job.py) finds a spec's entry here instead of calling the
classifier's engine by name, so a new kind registers its training entry beside the
classifier's and nothing else in the job changes. Importing this module imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from core import kinds
from worker.artifacts import final_weights as classifier_weights
from worker.engine import RunCallbacks, RunResult, run_training, run_training_group
from worker.gan import run_gan, run_gan_group
from worker.gan.artifacts import final_weights as gan_weights


class RunOne(Protocol):
    """Train one spec (worker.engine.run_training's arguments, which every entry takes)."""

    def __call__(
        self,
        spec: Any,
        *,
        data_dir: Path,
        allow_download: bool = ...,
        callbacks: RunCallbacks | None = ...,
        resume_from: bytes | None = ...,
        device: str | None = ...,
        threads: int | None = ...,
        flush_interval_s: float = ...,
        checkpoint_interval_s: float | None = ...,
    ) -> RunResult: ...


class RunGroup(Protocol):
    """Train specs of one structure together (worker.engine.run_training_group's arguments)."""

    def __call__(
        self,
        specs: Sequence[Any],
        *,
        data_dir: Path,
        allow_download: bool = ...,
        callbacks: Sequence[RunCallbacks] | None = ...,
        resume_from: Sequence[bytes | None] | None = ...,
        device: str | None = ...,
        threads: int | None = ...,
        flush_interval_s: float = ...,
        checkpoint_interval_s: float | None = ...,
    ) -> list[RunResult]: ...


class FinalWeights(Protocol):
    """The model file (safetensors bytes) of a finished run; None when it has none."""

    def __call__(self, spec: Any, result: RunResult, *, experiment_id: str) -> bytes | None: ...


@dataclass(frozen=True)
class EngineEntry:
    run: RunOne
    run_group: RunGroup
    final_weights: FinalWeights = classifier_weights


_ENGINES: dict[str, EngineEntry] = {
    kinds.CLASSIFIER.name: EngineEntry(run=run_training, run_group=run_training_group),
    kinds.GAN.name: EngineEntry(run=run_gan, run_group=run_gan_group, final_weights=gan_weights),
}


@contextmanager
def registered(kind: str, entry: EngineEntry) -> Iterator[EngineEntry]:
    """`entry` trains `kind` for the duration of a with-block (tests add fake kinds this way)."""
    if kind in _ENGINES:
        raise ValueError(f"kind {kind!r} has an engine entry already")
    _ENGINES[kind] = entry
    try:
        yield entry
    finally:
        del _ENGINES[kind]


def engine_names() -> tuple[str, ...]:
    return tuple(_ENGINES)


def engine_for(spec: BaseModel) -> EngineEntry:
    """The entry that trains `spec`'s kind; UnknownKindError when its kind has none here."""
    name = kinds.kind_of(spec).name
    entry = _ENGINES.get(name)
    if entry is None:
        raise kinds.UnknownKindError(
            f"kind {name!r} has no engine entry on this worker (worker/kinds.py)"
        )
    return entry
