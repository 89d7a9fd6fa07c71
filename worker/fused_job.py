"""One delivery that may train a group: the run the message stands for (worker/job.py's
claim: a silent run to resume, or the fairest queued one), plus the queued runs of the same
account that can train fused with it (the seeds of an ablation's arm: same structure,
core.spec.group_key), up to TRAINLAB_MAX_FUSED_RUNS and, on the CPU, what the engine fuses at
once. They train in one worker.engine.run_training_group call.

Each member stays its own experiment: its own claim and attempt, Heartbeat (progress, loss
points, checkpoints, cancel flag), outcome and faults, through the same pieces as a single run.
A member that is cancelled stops alone; a member the reaper takes over is abandoned alone. If
the group raises, each member is trained again alone, so a fault fails only the run it belongs
to, never its siblings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlmodel import Session

from core.settings import Settings
from core.spec import ExperimentSpec
from core.store.scheduling import claim_siblings
from worker.claiming import ClaimedRun, claim_run, prepare_run, worker_name
from worker.heartbeat import Heartbeat
from worker.job import NOT_TAKEN, device_label, never, start_heartbeat, train
from worker.rungs import RungHold, rung_steps
from worker.settling import settle, settle_error
from worker.store_link import StoreGone, StoreLink

logger = logging.getLogger(__name__)


def run_delivery(
    experiment_id: str,
    engine: Any,
    settings: Settings,
    *,
    shutting_down: Callable[[], bool] = never,
) -> str:
    """Claim and train what one run message stands for; a word per run for the log."""
    if shutting_down():
        return NOT_TAKEN
    link = StoreLink(engine, patience_s=settings.store_patience_s)
    try:
        head = claim_run(link, experiment_id, settings)
    except StoreGone as exc:  # claimed runs go quiet: the reaper requeues them
        return f"left to the reaper: {exc}"
    if head is None:
        return "skipped: nothing to run (finished, cancelled, or running elsewhere)"
    try:
        members = [head, *claim_group(link, head, settings)]
    except StoreGone as exc:
        return f"left to the reaper: {exc}"
    except Exception:
        # The head is claimed: whatever went wrong while gathering its group, it trains (or
        # fails, saying why) alone through the run's own error handling, rather than going
        # quiet until the reaper counts it as a lost worker, attempt after attempt.
        logger.exception("gathering the group of %s failed; it runs alone", experiment_id)
        members = [head]
    heartbeats = [start_heartbeat(link, m, settings, shutting_down) for m in members]
    try:
        outcomes = train_and_settle(link, members, heartbeats, settings)
    finally:
        for heartbeat in heartbeats:
            heartbeat.stop()
    if len(members) == 1:
        return outcomes[0]
    return "; ".join(f"{m.experiment_id[:8]}: {o}" for m, o in zip(members, outcomes, strict=True))


def group_limit(spec: ExperimentSpec, settings: Settings) -> int:
    """How many runs of `spec`'s structure to take together on this worker."""
    from worker.engine.grouping import cpu_group_size
    from worker.engine.model import DeviceUnavailableError, resolve_device

    try:
        device = resolve_device(settings.device if spec.device == "auto" else spec.device)
    except DeviceUnavailableError:
        return 1  # the run fails alone when it trains, with the reason; no sibling with it
    if device.type == "cpu":
        return max(1, min(settings.max_fused_runs, cpu_group_size(spec)))
    return settings.max_fused_runs


def claim_group(link: StoreLink, head: ClaimedRun, settings: Settings) -> list[ClaimedRun]:
    """The queued runs that train fused with `head`, claimed in one transaction."""
    if not isinstance(head.spec, ExperimentSpec):
        # No spec: the head fails on its own. A GAN never trains fused (no group key).
        return []
    most = group_limit(head.spec, settings) - 1
    if most <= 0:
        return []
    me = worker_name()

    def take(session: Session) -> list[tuple[str, int]]:
        return claim_siblings(
            session,
            head.experiment_id,
            worker=me,
            stale_after_s=settings.heartbeat_timeout_s,
            most=most,
        )

    taken = link.run(f"the group of {head.experiment_id}", take)
    return [prepare_run(link, experiment_id, attempt) for experiment_id, attempt in taken]


def train_and_settle(
    link: StoreLink,
    members: Sequence[ClaimedRun],
    heartbeats: Sequence[Heartbeat],
    settings: Settings,
) -> list[str]:
    if len(members) == 1:
        return [_alone(link, members[0], heartbeats[0], settings)]
    try:
        results = train_group(members, heartbeats, settings)
    except Exception:
        logger.exception("a fused group of %d runs raised; training each alone", len(members))
        return [_alone(link, m, h, settings) for m, h in zip(members, heartbeats, strict=True)]
    return [
        settle(link, member, heartbeat, result, settings)
        for member, heartbeat, result in zip(members, heartbeats, results, strict=True)
    ]


def _alone(link: StoreLink, member: ClaimedRun, heartbeat: Heartbeat, settings: Settings) -> str:
    try:
        result = train(member, heartbeat, settings)
    except Exception as exc:
        return settle_error(link, member, heartbeat, exc)
    return settle(link, member, heartbeat, result, settings)


def train_group(
    members: Sequence[ClaimedRun], heartbeats: Sequence[Heartbeat], settings: Settings
) -> list[Any]:
    """One run_training_group call for the members; their results in order."""
    from worker.engine import RunCallbacks
    from worker.engine.model import resolve_device
    from worker.kinds import engine_for

    specs = [m.valid_spec() for m in members]
    # Members share their structure, device field included: one device for the group.
    device = settings.device if specs[0].device == "auto" else None
    chosen = resolve_device(device or specs[0].device)
    started = time.monotonic()
    for heartbeat in heartbeats:
        heartbeat.device = device_label(chosen)
        heartbeat.engine_started = started
    holds = [RungHold(h, rung_steps(s)) for h, s in zip(heartbeats, specs, strict=True)]
    return engine_for(specs[0]).run_group(
        specs,
        data_dir=settings.data_dir,
        allow_download=settings.allow_download,
        callbacks=[
            RunCallbacks(
                on_loss=h.write_loss,
                on_progress=h.set_progress,
                should_stop=hold.should_stop,
                on_checkpoint=h.write_checkpoint,
                on_rung=hold.on_rung,
            )
            for h, hold in zip(heartbeats, holds, strict=True)
        ],
        resume_from=[m.checkpoint[1] if m.checkpoint else None for m in members],
        device=device,
        threads=settings.torch_threads,
        flush_interval_s=settings.flush_interval_s,
        checkpoint_interval_s=settings.checkpoint_interval_s,
    )
