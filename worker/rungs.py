"""Writing a run's validation figures at its rungs, and holding a sweep's run there for the
pruner's verdict.

Rungs are few (at most core.spec.MAX_VALIDATION_RUNGS a run), so each is written at once on
the training thread through the job's StoreLink, where a sweep's driver can read it while
the run goes on. A store that stays away loses the figure, not the run: the final metrics
carry every rung as well.

A sweep's run at a rung its pruner judges waits for the verdict before it trains on (the
engine asks `should_stop` right after the rung: RungHold.should_stop answers it): stopped at
once when its trial is pruned, not a driver pass, a heartbeat and a flush later, which on a
short run was most of the run (bench/sweep_bench.py measured pruned trials of 2,700 steps
judged at step 300 stopping at 2,025). The wait is the driver's pass interval at most, and
never more than VERDICT_WAIT_S: an API that is away costs a run that much per rung, no more.
Runs of no sweep, a sweep without a pruner, and the last rung (never judged) never wait; nor
does a run at a rung too few of its sweep's trials have reached for its pruner to stop any
there (core/sweeps/gate.py): one narrow read (core/store/sweep_rungs.py rung_gate) answers that, and
the verdict if there is one already, so the first trials of a sweep train on at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from core.kinds.gan_spec import GanSpec
from core.spec import ExperimentSpec
from core.store import sweep_rungs
from worker.heartbeat import Heartbeat
from worker.store_link import StoreGone, StoreLink, StoreRefused

logger = logging.getLogger(__name__)

# Above the driver's pass interval (api/background/sweeps.py runs one a second) with room
# for the pass itself on a busy machine.
VERDICT_WAIT_S = 3.0
# Polled while a run waits at a rung: a read of one row by key, for the driver's pass.
VERDICT_POLL_S = 0.005


def rung_writer(link: StoreLink, experiment_id: str) -> Callable[[int, dict[str, Any]], None]:
    def write(step: int, figures: dict[str, Any]) -> None:
        try:
            link.run(
                f"validation figures at step {step}",
                lambda session: sweep_rungs.save_rung(session, experiment_id, figures),
            )
        except (StoreGone, StoreRefused) as exc:
            logger.warning(
                "experiment %s: rung at step %d not stored: %s", experiment_id, step, exc
            )

    return write


def rung_steps(spec: ExperimentSpec | GanSpec) -> list[int]:
    """A spec's rung steps: a classifier's validation rungs, a GAN's judge rungs."""
    return spec.rung_steps


class RungHold:
    """A run's `on_rung` and `should_stop`: the rung written, then (for a sweep's judged
    rung) the verdict awaited by the next `should_stop`, which the engine asks right after
    the rungs of the whole group are written (so a trial's seeds trained fused all report
    before any of them waits)."""

    def __init__(
        self,
        heartbeat: Heartbeat,
        rung_steps: list[int],
        *,
        wait_s: float | None = None,
        poll_s: float = VERDICT_POLL_S,
    ) -> None:
        self.heartbeat, self.link = heartbeat, heartbeat.link
        self.experiment_id, self.rung_steps = heartbeat.experiment_id, rung_steps
        self.wait_s = VERDICT_WAIT_S if wait_s is None else wait_s
        self.poll_s = poll_s
        self._write = rung_writer(self.link, self.experiment_id)
        self._sweep: sweep_rungs.RunOfSweep | bool | None = False  # False: not looked up yet
        self._pending: int | None = None  # the rung whose verdict the next stop check awaits
        self.stopped_by_verdict = False
        self.passed: list[int] = []  # judged rungs gone past without waiting for a verdict

    def on_rung(self, step: int, figures: dict[str, Any]) -> None:
        self._write(step, figures)
        if step not in self.rung_steps:
            return
        index = self.rung_steps.index(step)  # by step: a resumed run skips the rungs it passed
        sweep = self._judging()
        if sweep is not None and index < sweep.judged:
            self._pending = index

    def should_stop(self) -> bool:
        if self._pending is not None:
            index, self._pending = self._pending, None
            if self._verdict(index):
                self.stopped_by_verdict = True
        return self.stopped_by_verdict or self.heartbeat.should_stop()

    def _judging(self) -> sweep_rungs.RunOfSweep | None:
        if self._sweep is False:
            try:
                self._sweep = self.link.run(
                    "the run's sweep", lambda s: sweep_rungs.judged_rungs(s, self.experiment_id)
                )
            except (StoreGone, StoreRefused):
                self._sweep = None  # no verdict to wait for that can be read
        return self._sweep if isinstance(self._sweep, sweep_rungs.RunOfSweep) else None

    def _verdict(self, index: int) -> bool:
        """True to stop at rung `index`: the verdict already there, no wait where no verdict
        can stop the run yet, else the wait for it."""
        sweep = self._judging()
        assert sweep is not None
        try:
            found = self.link.run(
                f"the gate at rung {index}",
                lambda s: sweep_rungs.rung_gate(s, sweep, index, self.experiment_id),
            )
        except (StoreGone, StoreRefused):
            return False  # the heartbeat decides what a store that is away means
        if found is None:
            return self._await(index)
        if not found:
            self.passed.append(index)
        return found

    def _await(self, index: int) -> bool:
        """True when the verdict says stop; False to go on (also when none came in time)."""
        sweep = self._judging()
        assert sweep is not None
        started = time.monotonic()
        try:
            while True:
                verdict = self.link.run(
                    f"the verdict at rung {index}",
                    lambda s: sweep_rungs.rung_verdict(
                        s, sweep.sweep_id, sweep.number, index, self.experiment_id
                    ),
                )
                if verdict is not None:
                    return verdict
                if time.monotonic() - started >= self.wait_s:
                    return False
                time.sleep(self.poll_s)
        except (StoreGone, StoreRefused):
            return False  # the heartbeat decides what a store that is away means
        finally:
            self.heartbeat.held_s += time.monotonic() - started
