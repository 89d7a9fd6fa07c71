"""One delivery of an experiment: claim it, run the engine, write the outcome.

Idempotent by construction: the claim is one atomic UPDATE that only a queued experiment (or a
running one whose worker went silent) passes, and every write names the attempt it belongs to,
so a duplicate delivery or a zombie worker finds nothing to do. Loss points are keyed by step
and a restart first drops points after the checkpoint it resumes from, so the stored series
stays exact whichever attempt writes it.

Whose fault ends a run decides how it ends:
- the run's own (a spec the engine refuses, a dataset that isn't there, out of memory): it is
  marked `failed` with the reason.
- the store's, transient (connection lost, server restarting): every write waits and is made
  again (worker/store_link.py), so the run pauses and goes on; past the patience, the job stops
  writing and leaves the run to the reaper, which resumes it from its checkpoint. Never
  `failed` for that.
- the store's, permanent (it refuses the result, e.g. a value too big to hold): `failed` at
  once with that reason, and not tried again, since it would be refused again.
- the worker shutting down: the run stops at the next flush, its checkpoint is saved and the
  experiment goes back to `queued` for another worker to resume.

The pieces (claim_run, train, settle) work on one ClaimedRun each; worker/fused_job.py puts
them together for a delivery, which trains one run or a fused group of them.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from core import kinds, store
from core.settings import Settings
from core.spec import spec_total_steps
from core.store.clock import utcnow
from core.store.faults import is_transient
from core.store.models import Status
from core.store.samples import save_samples
from core.store.scheduling import claim_next
from worker.heartbeat import Heartbeat, Interruption
from worker.store_link import StoreGone, StoreLink, StoreRefused

logger = logging.getLogger(__name__)

# What run_experiment_by_id answers when it would not take a run (the caller requeues the
# message): the worker is shutting down.
NOT_TAKEN = "not taken: the worker is shutting down"


def never() -> bool:
    return False


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ClaimedRun:
    """One attempt of one experiment, owned by this process, and what it resumes from."""

    experiment_id: str
    attempt: int
    raw_spec: dict[str, Any]
    checkpoint: tuple[int, bytes] | None
    # time.monotonic() when the claim was read back, for the run's claim_s phase.
    claimed_at: float = field(default_factory=time.monotonic, compare=False)

    @property
    def resume_step(self) -> int:
        return self.checkpoint[0] if self.checkpoint else 0


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
            picked = store.claimed_by_since(session, me, started)
        return picked

    picked = link.run(f"a claim for {experiment_id}", take)
    if picked is None:
        return None
    return prepare_run(link, *picked)


def prepare_run(link: StoreLink, experiment_id: str, attempt: int) -> ClaimedRun:
    """Read what a claimed attempt resumes from, and drop the points a lost attempt wrote
    after that checkpoint (this attempt writes them again)."""

    def prepare(session: Session) -> ClaimedRun:
        experiment = store.require_experiment(session, experiment_id)
        checkpoint = store.get_checkpoint(session, experiment_id)
        store.truncate_loss_after(session, experiment_id, checkpoint[0] if checkpoint else 0)
        return ClaimedRun(experiment_id, attempt, dict(experiment.spec), checkpoint)

    return link.run(f"the start of attempt {attempt} of {experiment_id}", prepare)


def read_model(link: StoreLink, experiment_id: str) -> bytes | None:
    """Another experiment's stored model file (a GAN's judge), read through the job's link."""
    return link.run(
        f"the model of {experiment_id}", lambda session: store.read_model(session, experiment_id)
    )


def start_heartbeat(
    link: StoreLink,
    claimed: ClaimedRun,
    settings: Settings,
    shutting_down: Callable[[], bool] = never,
) -> Heartbeat:
    heartbeat = Heartbeat(
        link,
        claimed.experiment_id,
        claimed.attempt,
        settings.flush_interval_s,
        step=claimed.resume_step,
        total_steps=spec_total_steps(claimed.raw_spec),
        shutting_down=shutting_down,
    )
    heartbeat.start()
    return heartbeat


def device_label(device: Any) -> str:
    """Where a run trains, as the experiment shows it: `cpu`, or `cuda:0 <GPU name>`."""
    if device.type == "cpu":
        return str(device)
    import torch

    return f"{device.type}:{device.index or 0} {torch.cuda.get_device_name(device)}"[:64]


def train(claimed: ClaimedRun, heartbeat: Heartbeat, settings: Settings) -> Any:
    """Run the engine for the claimed attempt, its progress going out through `heartbeat`;
    returns the engine's RunResult, raises what the run raised."""
    from worker.engine import RunCallbacks
    from worker.engine.model import resolve_device
    from worker.kinds import engine_for

    spec = kinds.parse(claimed.raw_spec)
    assert isinstance(spec, kinds.AnySpec)
    # The worker's device setting decides only where the spec leaves it to the worker.
    device = settings.device if spec.device == "auto" else None
    chosen = resolve_device(device or spec.device)
    heartbeat.device = device_label(chosen)
    heartbeat.engine_started = time.monotonic()
    return engine_for(spec).run(
        spec,
        data_dir=settings.data_dir,
        allow_download=settings.allow_download,
        callbacks=RunCallbacks(
            on_loss=heartbeat.write_loss,
            on_progress=heartbeat.set_progress,
            should_stop=heartbeat.should_stop,
            on_checkpoint=heartbeat.write_checkpoint,
            on_series=heartbeat.write_series,
            load_model=lambda experiment_id: read_model(heartbeat.link, experiment_id),
        ),
        resume_from=claimed.checkpoint[1] if claimed.checkpoint else None,
        device=device,
        threads=settings.torch_threads,
        flush_interval_s=settings.flush_interval_s,
        checkpoint_interval_s=settings.checkpoint_interval_s,
    )


# Settling the attempt ----------------------------------------------------------------------


def settle_error(link: StoreLink, claimed: ClaimedRun, heartbeat: Heartbeat, exc: Exception) -> str:
    """The run raised: the store's fault leaves it to the reaper; its own fault fails it."""
    heartbeat.drain()  # the queued writes first: their fate decides how the run ends
    if heartbeat.lost:
        return f"abandoned: {Interruption.lost.value}"
    if heartbeat.interruption is Interruption.store_gone or is_transient(exc):
        logger.warning(
            "experiment %s: store unavailable; left to the reaper", claimed.experiment_id
        )
        return "left to the reaper: the store is unavailable"
    if isinstance(exc, StoreRefused):
        return fail(link, claimed, str(exc))
    logger.exception("experiment %s failed", claimed.experiment_id)
    return fail(link, claimed, f"{type(exc).__name__}: {exc}"[:2000])


def settle(
    link: StoreLink,
    claimed: ClaimedRun,
    heartbeat: Heartbeat,
    result: Any,
    settings: Settings,
) -> str:
    """Write the outcome of a run that returned: finished, cancelled, or handed back."""
    settling = time.monotonic()
    heartbeat.drain()  # every queued point and checkpoint before the outcome
    interruption = heartbeat.interruption
    if interruption is Interruption.lost:
        return f"abandoned: {interruption.value}"
    if interruption is Interruption.store_gone:
        return f"left to the reaper: {heartbeat.store_error}"
    if interruption is Interruption.refused:
        return fail(link, claimed, str(heartbeat.store_error))
    if result.status == "stopped" and interruption is Interruption.handed_back:
        return hand_back(link, claimed, result)
    from worker.kinds import engine_for  # torch: only where a run has trained

    status = Status.succeeded if result.status == "completed" else Status.cancelled
    spec = kinds.parse(claimed.raw_spec)
    weights = engine_for(spec).final_weights(spec, result, experiment_id=claimed.experiment_id)
    samples = result.extra.get("samples")  # a GAN's images of its fixed seeds
    outputs = result.predictions.outputs if len(result.predictions.outputs) else None

    def write(session: Session) -> bool:
        metrics = dict(result.metrics)
        eid, attempt = claimed.experiment_id, claimed.attempt
        if not store.save_checkpoint(session, eid, attempt, result.steps, result.checkpoint):
            return False
        # The final weights (safetensors) beside the outcome; drops the checkpoint unless kept.
        store.save_model(
            session,
            eid,
            attempt,
            step=result.steps,
            data=weights,
            keep_checkpoint=settings.keep_checkpoints,
        )
        # Up to here: what the outcome's own transaction (outputs, metrics, commit) adds is
        # the one part of writing these figures can't include.
        if samples is not None:
            save_samples(session, eid, samples)
        metrics["phases"] = phases(claimed, heartbeat, result, settling)
        return store.finish(
            session,
            eid,
            attempt,
            status=status,
            metrics=metrics,
            fingerprint=result.fingerprint,
            outputs=outputs,
            labels=result.predictions.labels,
            predicted=result.predictions.predicted,
            step=result.steps,
        )

    try:
        written = link.run(f"the outcome of attempt {claimed.attempt}", write)
    except StoreGone as exc:
        return f"left to the reaper: {exc}"
    except StoreRefused as exc:  # the result can't be stored: trying again changes nothing
        logger.error("experiment %s: %s", claimed.experiment_id, exc)
        return fail(link, claimed, str(exc))
    return status.value if written else "abandoned: the attempt was superseded"


def phases(
    claimed: ClaimedRun, heartbeat: Heartbeat, result: Any, settling: float
) -> dict[str, float]:
    """Where this attempt's time went, in seconds (GET /experiments/{id} shows them in
    metrics["phases"]): claim_s from the claim to the engine's start, load_s preparing data
    and model, train_s the training loop (a fused group's), evaluate_s the test set and its
    outputs, write_s the final checkpoint's bytes, the queued writes still to drain, the
    weights file and the outcome's transaction up to its last statement."""
    timings = result.timings
    started = heartbeat.engine_started
    figures = {
        "load_s": timings.get("load_s", 0.0),
        "train_s": timings.get("train_s", 0.0),
        "evaluate_s": timings.get("evaluate_s", 0.0),
        "write_s": timings.get("save_s", 0.0) + time.monotonic() - settling,
        "claim_s": started - claimed.claimed_at if started is not None else 0.0,
    }
    return {name: round(max(value, 0.0), 4) for name, value in figures.items()}


def hand_back(link: StoreLink, claimed: ClaimedRun, result: Any) -> str:
    """Save the checkpoint at the step the run stopped and put the experiment back in the
    queue (its loss points stay: the next attempt resumes right after them)."""

    def write(session: Session) -> str:
        eid, attempt = claimed.experiment_id, claimed.attempt
        if not store.save_checkpoint(session, eid, attempt, result.steps, result.checkpoint):
            return "abandoned: the attempt was superseded"
        if store.requeue(session, eid, expected_attempt=attempt, handed_back=True):
            return f"handed back at step {result.steps}"
        # A cancel arrived meanwhile: the run ends here, cancelled, with what it has.
        store.finish(session, eid, attempt, status=Status.cancelled, step=result.steps)
        return Status.cancelled.value

    try:
        return link.run(f"the hand-back of attempt {claimed.attempt}", write)
    except (StoreGone, StoreRefused) as exc:
        return f"left to the reaper: {exc}"


def fail(link: StoreLink, claimed: ClaimedRun, error: str) -> str:
    """Mark the attempt's run failed with `error`."""
    try:
        link.run(
            f"the failure of attempt {claimed.attempt}",
            lambda session: store.finish(
                session,
                claimed.experiment_id,
                claimed.attempt,
                status=Status.failed,
                error=error,
            ),
        )
    except (StoreGone, StoreRefused) as exc:
        logger.error("experiment %s: could not record its failure: %s", claimed.experiment_id, exc)
        return f"left to the reaper: {exc}"
    return "failed"
