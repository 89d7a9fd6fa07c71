"""The start of an attempt: claim a run for a delivery and read what it resumes from.

The stored spec is validated here, once per claimed run, and travels with the claim
(ClaimedRun.spec): the heartbeat, the engine, the group and the final weights all use that one
object, so a run's spec is never validated again on its way through the worker.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

from sqlmodel import Session

from core import kinds
from core.settings import Settings
from core.store import artifacts, experiments, runs, series_points
from core.store.clock import utcnow
from core.store.scheduling import claim_next
from worker.store_link import StoreLink


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ClaimedRun:
    """One attempt of one experiment, owned by this process, its validated spec (None with the
    reason when the stored spec no longer validates: the run then fails with that reason) and
    what it resumes from."""

    experiment_id: str
    attempt: int
    spec: kinds.AnySpec | None
    checkpoint: tuple[int, bytes] | None
    # pydantic's ValidationError, or UnknownKindError for a kind this worker does not know.
    spec_problem: ValueError | None = field(default=None, compare=False)
    # time.monotonic() when the claim was read back, for the run's claim_s phase.
    claimed_at: float = field(default_factory=time.monotonic, compare=False)

    @property
    def resume_step(self) -> int:
        return self.checkpoint[0] if self.checkpoint else 0

    def valid_spec(self) -> kinds.AnySpec:
        """The spec to train; raises why the stored one does not validate."""
        if self.spec is None:
            assert self.spec_problem is not None
            raise self.spec_problem
        return self.spec


def claim_run(link: StoreLink, experiment_id: str, settings: Settings) -> ClaimedRun | None:
    """Claim a run for a message naming `experiment_id` (its silent run to resume, or the
    queued run fairest to take: core/store/scheduling.py) and read what it resumes from; None
    when there is nothing to run. Raises StoreGone when the store stays away past the patience."""
    me = worker_name()
    tries = 0
    started = utcnow()

    def take(session: Session) -> tuple[str, int] | None:
        nonlocal tries
        tries += 1
        picked = claim_next(
            session, experiment_id, worker=me, stale_after_s=settings.heartbeat_timeout_s
        )
        if picked is None and tries > 1:
            # The previous try may have committed before its connection dropped.
            picked = runs.claimed_by_since(session, me, started)
        return picked

    picked = link.run(f"a claim for {experiment_id}", take)
    if picked is None:
        return None
    return prepare_run(link, *picked)


def prepare_run(link: StoreLink, experiment_id: str, attempt: int) -> ClaimedRun:
    """Read what a claimed attempt resumes from, validate its spec (the one time the worker
    does), and drop the points a lost attempt wrote after that checkpoint (this attempt writes
    them again)."""

    def prepare(session: Session) -> tuple[dict[str, object], tuple[int, bytes] | None]:
        experiment = experiments.require_experiment(session, experiment_id)
        if attempt == 1:
            # A first attempt: no attempt before it can have written a checkpoint or points
            # (each write names its attempt, and the attempt only grows), so there is nothing
            # to read back or drop. Two statements fewer per run: a tiny run's claim is
            # mostly these round trips.
            return dict(experiment.spec), None
        checkpoint = artifacts.get_checkpoint(session, experiment_id)
        series_points.truncate_loss_after(
            session, experiment_id, checkpoint[0] if checkpoint else 0
        )
        return dict(experiment.spec), checkpoint

    raw, checkpoint = link.run(f"the start of attempt {attempt} of {experiment_id}", prepare)
    try:
        spec = kinds.parse(raw)  # by its kind's spec model: a classifier's or a GAN's
    except ValueError as problem:  # ValidationError, UnknownKindError
        return ClaimedRun(experiment_id, attempt, None, checkpoint, spec_problem=problem)
    assert isinstance(spec, kinds.AnySpec)
    return ClaimedRun(experiment_id, attempt, spec, checkpoint)
