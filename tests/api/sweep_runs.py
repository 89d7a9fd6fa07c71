"""A sweep's runs finished by the test as a worker would finish them (rung figures, then the
end), for the tests that drive a sweep without training anything."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Engine
from sqlmodel import Session

from core.store import runs as run_store
from core.store import sweep_rungs
from core.store import sweeps as sweep_store
from core.store.models import Experiment, Status
from core.store.session import session_scope


class Sent:
    """Stands in for the driver's dispatcher: the test finishes the runs, not a worker."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def dispatch_all(self, ids: list[str]) -> None:
        self.ids += ids


def finish_runs(
    engine: Engine, sweep_id: str, accuracy: Mapping[float, float | Sequence[float]]
) -> int:
    """Finish every queued run of the sweep, its validation figures set by its lr: one figure
    plus a hundredth per seed, or a figure for each seed (so that seeds can disagree on which
    trial is better); the number finished."""
    done = 0
    with Session(engine) as session:
        for members in sweep_store.runs_with_experiments(session, sweep_id).values():
            for run, experiment in members:
                if experiment.status != "queued":
                    continue
                given = accuracy[experiment.spec["lr"]]
                good = given[run.seed] if isinstance(given, Sequence) else given + 0.01 * run.seed
                for k, step in enumerate((6, 17, 50)):
                    sweep_rungs.save_rung(session, experiment.id, {
                        "step": step, "fraction": step / 50,
                        "validation_accuracy": good - 0.1 * (2 - k), "validation_loss": 1 - good,
                    })  # fmt: skip
                row = session.get(Experiment, experiment.id)
                assert row is not None
                row.status, row.step, row.total_steps = "succeeded", 50, 50
                row.metrics = {"validation_accuracy": good, "validation_loss": 1 - good}
                session.add(row)
                done += 1
        session.commit()
    return done


def finish_gan_runs(engine: Engine, sweep_id: str, frechet: Mapping[float, float]) -> None:
    """Finish every queued run as a GAN worker would: the judge's figures at each rung (its
    Fréchet distance set by the trial's generator lr, a tenth more per seed), then the end."""
    with session_scope(engine) as session:
        for members in sweep_store.runs_with_experiments(session, sweep_id).values():
            for run, experiment in members:
                if experiment.status != "queued":
                    continue
                final = frechet[experiment.spec["generator"]["lr"]] + 0.1 * run.seed
                for k, step in enumerate((20, 60, 180)):
                    sweep_rungs.save_rung(session, experiment.id, {
                        "step": step, "fraction": step / 180, "frechet": final + 10 * (2 - k),
                        "entropy_bits": 2.5, "confidence": 0.9, "correlation": 0.4,
                    })  # fmt: skip
                attempt = run_store.claim(session, experiment.id, worker="test", stale_after_s=60)
                assert attempt is not None
                metrics = {"frechet": final, "entropy_bits": 2.5, "final_loss": 0.3}
                assert run_store.finish(
                    session, experiment.id, attempt, status=Status.succeeded, metrics=metrics,
                    step=180,
                )  # fmt: skip
