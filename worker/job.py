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

The pieces work on one ClaimedRun each: worker/claiming.py starts an attempt (the claim, the
spec validated once, the checkpoint), this module trains it (its heartbeat and the engine),
worker/settling.py writes how it ended; worker/fused_job.py puts them together for a
delivery, which trains one run or a fused group of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from core.settings import Settings
from core.store import artifacts
from worker.claiming import ClaimedRun
from worker.heartbeat import Heartbeat
from worker.rungs import RungHold, rung_steps
from worker.store_link import StoreLink

# What run_experiment_by_id answers when it would not take a run (the caller requeues the
# message): the worker is shutting down.
NOT_TAKEN = "not taken: the worker is shutting down"


def never() -> bool:
    return False


def read_model(link: StoreLink, experiment_id: str) -> bytes | None:
    """Another experiment's stored model file (a GAN's judge), read through the job's link."""
    return link.run(
        f"the model of {experiment_id}",
        lambda session: artifacts.read_model(session, experiment_id),
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
        total_steps=claimed.spec.total_steps if claimed.spec else 0,
        shutting_down=shutting_down,
    )
    # A resumed attempt beats at once, to show the step it resumes from.
    heartbeat.start(beat=claimed.attempt > 1)
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

    spec = claimed.valid_spec()
    # The worker's device setting decides only where the spec leaves it to the worker.
    device = settings.device if spec.device == "auto" else None
    chosen = resolve_device(device or spec.device)
    heartbeat.device = device_label(chosen)
    heartbeat.engine_started = time.monotonic()
    hold = RungHold(heartbeat, rung_steps(spec))
    return engine_for(spec).run(
        spec,
        data_dir=settings.data_dir,
        allow_download=settings.allow_download,
        callbacks=RunCallbacks(
            on_loss=heartbeat.write_loss,
            on_progress=heartbeat.set_progress,
            should_stop=hold.should_stop,
            on_checkpoint=heartbeat.write_checkpoint,
            on_rung=hold.on_rung,
            on_series=heartbeat.write_series,
            load_model=lambda experiment_id: read_model(heartbeat.link, experiment_id),
        ),
        resume_from=claimed.checkpoint[1] if claimed.checkpoint else None,
        device=device,
        threads=settings.torch_threads,
        flush_interval_s=settings.flush_interval_s,
        checkpoint_interval_s=settings.checkpoint_interval_s,
    )
