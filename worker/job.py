"""One delivery of an experiment: claim it, run the engine, write the outcome.

Idempotent by construction: the claim is one atomic UPDATE that only a queued experiment (or a
running one whose worker went silent) passes, and every write names the attempt it belongs to,
so a duplicate delivery or a zombie worker finds nothing to do. Loss points are keyed by step
and a restart first drops points after the checkpoint it resumes from, so the stored series
stays exact whichever attempt writes it.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from sqlalchemy import Engine

from core import store
from core.settings import Settings
from core.spec import ExperimentSpec, spec_total_steps
from core.store.models import Status
from worker.heartbeat import Heartbeat

logger = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_experiment_by_id(experiment_id: str, engine: Engine, settings: Settings) -> str:
    """Run one delivery of the experiment; returns a word for the log (the outcome)."""
    with store.session_scope(engine) as session:
        attempt = store.claim(
            session, experiment_id, worker=worker_name(), stale_after_s=settings.heartbeat_timeout_s
        )
    if attempt is None:
        return "skipped: not claimable (finished, cancelled, or running elsewhere)"

    with store.session_scope(engine) as session:
        experiment = store.get_experiment(session, experiment_id)
        assert experiment is not None  # claimed a moment ago; experiments are never deleted
        raw_spec = dict(experiment.spec)
        checkpoint = store.get_checkpoint(session, experiment_id)
        resume_step = checkpoint[0] if checkpoint else 0
        # Points after the checkpoint came from a lost attempt; this one writes them again.
        store.truncate_loss_after(session, experiment_id, resume_step)

    heartbeat = Heartbeat(
        engine,
        experiment_id,
        attempt,
        settings.flush_interval_s,
        step=resume_step,
        total_steps=spec_total_steps(raw_spec),
    )
    heartbeat.start()
    try:
        return _train_and_store(
            engine, experiment_id, attempt, raw_spec, checkpoint, heartbeat, settings
        )
    finally:
        heartbeat.stop()


def _gpu_name(device: Any) -> str:
    import torch

    return f"{device.type}:{device.index or 0} {torch.cuda.get_device_name(device)}"[:64]


def _train_and_store(
    engine: Engine,
    experiment_id: str,
    attempt: int,
    raw_spec: dict[str, Any],
    checkpoint: tuple[int, bytes] | None,
    heartbeat: Heartbeat,
    settings: Settings,
) -> str:
    from worker.artifacts import final_weights
    from worker.engine import RunCallbacks, run_training
    from worker.engine.model import resolve_device

    callbacks = RunCallbacks(
        on_loss=heartbeat.write_loss,
        on_progress=heartbeat.set_progress,
        should_stop=heartbeat.should_stop,
        on_checkpoint=heartbeat.write_checkpoint,
    )
    try:
        spec = ExperimentSpec.model_validate(raw_spec)
        # The worker's device setting decides only where the spec leaves it to the worker.
        device = settings.device if spec.device == "auto" else None
        chosen = resolve_device(device or spec.device)
        heartbeat.device = str(chosen) if chosen.type == "cpu" else _gpu_name(chosen)
        result = run_training(
            spec,
            data_dir=settings.data_dir,
            allow_download=settings.allow_download,
            callbacks=callbacks,
            resume_from=checkpoint[1] if checkpoint else None,
            device=device,
            threads=settings.torch_threads,
            flush_interval_s=settings.flush_interval_s,
            checkpoint_interval_s=settings.checkpoint_interval_s,
        )
    except Exception as exc:  # any failure of the run ends the experiment, with its reason
        logger.exception("experiment %s failed", experiment_id)
        with store.session_scope(engine) as session:
            store.finish(
                session,
                experiment_id,
                attempt,
                status=Status.failed,
                error=f"{type(exc).__name__}: {exc}"[:2000],
            )
        return "failed"

    if heartbeat.lost:
        return "abandoned: another attempt owns the experiment now"
    status = Status.succeeded if result.status == "completed" else Status.cancelled
    with store.session_scope(engine) as session:
        store.save_checkpoint(session, experiment_id, attempt, result.steps, result.checkpoint)
        # The final weights (safetensors) beside the outcome; drops the checkpoint unless kept.
        store.save_model(
            session,
            experiment_id,
            attempt,
            step=result.steps,
            data=final_weights(spec, result, experiment_id=experiment_id),
            keep_checkpoint=settings.keep_checkpoints,
        )
        store.finish(
            session,
            experiment_id,
            attempt,
            status=status,
            metrics=result.metrics,
            fingerprint=result.fingerprint,
            outputs=result.predictions.outputs,
            labels=result.predictions.labels,
            predicted=result.predictions.predicted,
            step=result.steps,
        )
    return status.value
