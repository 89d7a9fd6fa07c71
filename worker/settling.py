"""The end of an attempt: write how a claimed run ended, once its queued writes have drained.

Whose fault ends a run decides how it ends (worker/job.py says which): the run's own fails
it; the store's, transient, leaves it `running` for the reaper; the store's, permanent, fails
it at once; a shutdown hands it back to the queue with its checkpoint.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlmodel import Session

from core.settings import Settings
from core.store import artifacts, runs, samples
from core.store.faults import is_transient
from core.store.models import Status
from worker.claiming import ClaimedRun
from worker.heartbeat import Heartbeat, Interruption
from worker.store_link import StoreGone, StoreLink, StoreRefused

logger = logging.getLogger(__name__)


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
    spec = claimed.valid_spec()
    weights = engine_for(spec).final_weights(spec, result, experiment_id=claimed.experiment_id)
    images = result.extra.get("samples")  # a GAN's images of its fixed seeds
    # A kind without per-record outputs (the GAN) stores none.
    outputs = result.predictions.outputs if len(result.predictions.outputs) else None

    def write(session: Session) -> bool:
        metrics = dict(result.metrics)
        eid, attempt = claimed.experiment_id, claimed.attempt
        # The final checkpoint is written only where it is kept: otherwise save_model would
        # drop it again in this same transaction, and its bytes (a few MB with an optimizer's
        # state) were most of a tiny run's outcome write. Either call checks the attempt.
        if settings.keep_checkpoints and not artifacts.save_checkpoint(
            session, eid, attempt, result.steps, result.checkpoint
        ):
            return False
        # The final weights (safetensors) beside the outcome; drops the checkpoint unless kept.
        if not artifacts.save_model(
            session,
            eid,
            attempt,
            step=result.steps,
            data=weights,
            keep_checkpoint=settings.keep_checkpoints,
        ):
            return False
        # Up to here: what the outcome's own transaction (outputs, metrics, commit) adds is
        # the one part of writing these figures can't include.
        if images is not None:
            samples.save_samples(session, eid, images)
        metrics["phases"] = phases(claimed, heartbeat, result, settling)
        return runs.finish(
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
    weights file and the outcome's transaction up to its last statement; held_s the part of
    train_s this run waited at rungs for its sweep's verdicts (worker/rungs.py; a fused
    group's loop waits for each member's in turn)."""
    timings = result.timings
    started = heartbeat.engine_started
    figures = {
        "load_s": timings.get("load_s", 0.0),
        "train_s": timings.get("train_s", 0.0),
        "evaluate_s": timings.get("evaluate_s", 0.0),
        "write_s": timings.get("save_s", 0.0) + time.monotonic() - settling,
        "claim_s": started - claimed.claimed_at if started is not None else 0.0,
        "held_s": heartbeat.held_s,
    }
    return {name: round(max(value, 0.0), 4) for name, value in figures.items()}


def hand_back(link: StoreLink, claimed: ClaimedRun, result: Any) -> str:
    """Save the checkpoint at the step the run stopped and put the experiment back in the
    queue (its loss points stay: the next attempt resumes right after them)."""

    def write(session: Session) -> str:
        eid, attempt = claimed.experiment_id, claimed.attempt
        if not artifacts.save_checkpoint(session, eid, attempt, result.steps, result.checkpoint):
            return "abandoned: the attempt was superseded"
        if runs.requeue(session, eid, expected_attempt=attempt, handed_back=True):
            return f"handed back at step {result.steps}"
        # A cancel arrived meanwhile: the run ends here, cancelled, with what it has.
        runs.finish(session, eid, attempt, status=Status.cancelled, step=result.steps)
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
            lambda session: runs.finish(
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
