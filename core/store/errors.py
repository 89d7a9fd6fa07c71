"""The store's refusals. Each is a plain exception carrying a sentence for a person, and a
NotFound or a Conflict of core/errors.py where it is one: the API maps those to one HTTP status
each (api/errors.py), the CLI prints the sentence."""

from __future__ import annotations

from typing import Any

from core.errors import Conflict, NotFound


class StoreError(Exception):
    """Base of the store's refusals."""


class ExperimentNotFound(StoreError, NotFound):
    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"no experiment with id {experiment_id!r}")
        self.experiment_id = experiment_id


class AblationNotFound(StoreError, NotFound):
    def __init__(self, ablation_id: str) -> None:
        super().__init__(f"no ablation with id {ablation_id!r}")
        self.ablation_id = ablation_id


class AlreadyFinished(StoreError, Conflict):
    def __init__(self, experiment: Any) -> None:
        super().__init__(f"experiment {experiment.id} has already finished ({experiment.status})")
        self.experiment = experiment


class IdempotencyConflict(StoreError, Conflict):
    def __init__(self, key: str, existing_id: str, kind: str = "experiment") -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for {kind} {existing_id} with a "
            f"different request body; use a new key for a different {kind}"
        )
        self.key = key
        self.existing_id = existing_id


class InvalidCursor(StoreError):
    def __init__(self) -> None:
        super().__init__("cursor is not one this server handed out")


class AmbiguousId(StoreError, Conflict):
    """A short id that starts more than one id."""

    def __init__(self, kind: str, prefix: str, candidates: list[str], *, more: bool) -> None:
        listed = ", ".join(candidates) + (", ..." if more else "")
        super().__init__(
            f"{prefix!r} starts more than one {kind} id: {listed}; give more characters"
        )
        self.prefix = prefix
        self.candidates = candidates
