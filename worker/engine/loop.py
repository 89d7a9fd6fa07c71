"""The training loop of a group of runs (one run alone is a group of one).

Batches go in record order, one optimizer step each for every run of the group. No persistence
and no host synchronisation per step: each run's loss of every `log_every`-th step is written
into a preallocated device tensor [points, runs], and about every `flush_interval_s` (a clock
read per step, no device sync) the new points of all runs move to the host in one transfer and
go to each run's callbacks, which may also stop that run. A stopped run leaves the group with
its series so far; the others go on in a group rebuilt without it. Records are read in order,
as the book does, so a run is a pure function of spec and seed, and a resumed run repeats the
uninterrupted one exactly. On CUDA the steps may be replayed from CUDA graphs (graphs.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
from torch import nn

from core.spec import ExperimentSpec
from worker.engine.batches import Batch
from worker.engine.callbacks import RunCallbacks
from worker.engine.checkpoint import LOSS_TAIL
from worker.engine.graphs import GraphPlan
from worker.engine.sparse import SparseBatch

Tensor = torch.Tensor


class GroupStep(Protocol):
    runs: int

    def step(
        self,
        x: Tensor,
        onehot: Tensor,
        labels: Tensor,
        sparse: SparseBatch | None,
        loss_out: Tensor | None,
    ) -> None:
        """One optimizer step of every run on one batch; losses (before it) into `loss_out`."""

    def sync(self) -> None:
        """Bring the runs' modules up to date with the step's working state."""


class AutogradStep:
    """The plain PyTorch step of one run (module forward, loss, backward, optimizer.step()).
    The engine runs the hand-written FastStep; this one is the yardstick tests hold it against."""

    runs = 1

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        class_targets: bool,
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.class_targets = class_targets

    def step(
        self,
        x: Tensor,
        onehot: Tensor,
        labels: Tensor,
        sparse: SparseBatch | None,
        loss_out: Tensor | None,
    ) -> None:
        loss = self.loss_fn(self.model(x), labels if self.class_targets else onehot)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if loss_out is not None:
            loss_out.copy_(loss.detach().view(1))

    def sync(self) -> None:
        return None


@dataclass
class RunState:
    """One run of the group as the loop sees it."""

    callbacks: RunCallbacks
    seconds_before: float
    tail: list[float]
    status: Literal["completed", "stopped"] = "completed"
    step: int = 0
    seconds: float = 0.0  # spent in this loop


# (run index, step, train seconds so far, loss tail) -> checkpoint bytes
MakeCheckpoint = Callable[[int, int, float, list[float]], bytes]
# The runs still training (indices into the group) -> their fused step
BuildStep = Callable[[list[int]], GroupStep]
# At a validation rung: (the runs still training, the step), their modules up to date
AtRung = Callable[[list[int], int], None]


@dataclass
class GroupLoop:
    runs: list[RunState]
    build: BuildStep
    batches: Sequence[Batch]
    spec: ExperimentSpec  # the shared structure: records, batch size, epochs, log_every
    start_step: int
    flush_interval_s: float
    checkpoint_interval_s: float | None
    make_checkpoint: MakeCheckpoint
    device: torch.device
    graphs: GraphPlan = field(default_factory=GraphPlan)
    step: int = 0
    # Steps at which to stop and call `at_rung` (validation figures); no CUDA graphs with them.
    rung_steps: Sequence[int] = ()
    at_rung: AtRung | None = None

    def run(self) -> None:
        spec = self.spec
        self.total, self.every = spec.total_steps, spec.log_every
        self.step = self.start_step
        self.sent = self.step // self.every  # points a previous segment already emitted
        self.active = list(range(len(self.runs)))
        self._rebuild()
        self.start = time.perf_counter()
        self.next_flush = self.start + self.flush_interval_s
        interval = self.checkpoint_interval_s
        self.next_checkpoint = self.start + interval if interval else float("inf")
        # A resume skips the rungs before its step, not one at it: a checkpoint is taken at a
        # flush, which comes before that step's rung figures, so a worker lost in between has
        # never reported them (a repeat of a stored rung changes nothing).
        self.rungs = [s for s in self.rung_steps if s >= self.step]
        if self.rungs and self.step >= self.rungs[0]:
            self._rung()
        while self.step < self.total and self.active:
            if self._advance():
                self._control()
            if self.rungs and self.step >= self.rungs[0]:
                self._rung()
                # A stop asked for at the rung (a pruner's verdict on its figures) takes
                # effect there, not a flush later: past a rung every step is wasted on it.
                self._stop_asked(flush_first=True)
        self._flush()
        self.stepper.sync()
        seconds = self._elapsed()
        for r in self.active:
            self.runs[r].step, self.runs[r].seconds = self.step, seconds
        self.graphs.release()

    def _rebuild(self) -> None:
        self.stepper = self.build(self.active)
        points = max(self.total // self.every, 1)
        self.losses = torch.zeros(points, len(self.active), device=self.device)
        self.graphs.attach(self.stepper, self.losses, self.spec)

    def _advance(self) -> bool:
        """Some steps; True when a flush is due."""
        graphs, step, total = self.graphs.active, self.step, self.total
        if graphs is not None:
            chunk = graphs.chunk
            if step % chunk == 0 and step + chunk <= total:
                if not graphs.captured:
                    # Warm up on the capture stream with real steps, then capture.
                    with graphs.warmup():
                        self._eager(step + chunk, stop_for_flush=False)
                    if self.step + chunk <= total:
                        graphs.capture()
                    return time.perf_counter() >= self.next_flush
                graphs.replay(step, (step + chunk) % self.every == 0)
                self.step = step + chunk
                return time.perf_counter() >= self.next_flush
            limit = min(total, (step // chunk + 1) * chunk)
        else:
            limit = min(total, self.rungs[0]) if self.rungs else total
        return self._eager(limit, stop_for_flush=True)

    def _rung(self) -> None:
        while self.rungs and self.rungs[0] <= self.step:
            self.rungs.pop(0)
        if self.at_rung is not None:
            self.stepper.sync()
            self.at_rung(list(self.active), self.step)

    def _eager(self, limit: int, *, stop_for_flush: bool) -> bool:
        run, batches, losses = self.stepper.step, self.batches, self.losses
        every, per_epoch = self.every, len(self.batches)
        clock, next_flush = time.perf_counter, self.next_flush
        step, due = self.step, False
        while step < limit:
            i = step % per_epoch
            step += 1
            run(*batches[i], losses[step // every - 1] if step % every == 0 else None)
            if clock() >= next_flush and stop_for_flush:
                due = True
                break
        self.step = step
        return due

    def _flush(self) -> None:
        upto = self.step // self.every
        if upto > self.sent:
            block = self.losses[self.sent : upto].tolist()  # the one host transfer per flush
            steps = [k * self.every for k in range(self.sent + 1, upto + 1)]
            for column, r in enumerate(self.active):
                run = self.runs[r]
                values = [row[column] for row in block]
                run.callbacks.on_loss(steps, values)
                run.tail = (run.tail + values)[-LOSS_TAIL:]
            self.sent = upto
        for r in self.active:
            self.runs[r].callbacks.on_progress(self.step, self.total)

    def _control(self) -> None:
        """At a flush: emit points, let runs stop, take checkpoints when due."""
        self._flush()
        now = time.perf_counter()
        self.next_flush = now + self.flush_interval_s
        self._stop_asked()
        if self.active and now >= self.next_checkpoint:
            self.stepper.sync()
            seconds = self._elapsed()
            for r in self.active:
                run = self.runs[r]
                data = self.make_checkpoint(r, self.step, run.seconds_before + seconds, run.tail)
                run.callbacks.on_checkpoint(data, self.step)
            self.next_checkpoint = time.perf_counter() + (self.checkpoint_interval_s or 0.0)

    def _stop_asked(self, *, flush_first: bool = False) -> None:
        """End the runs whose callbacks ask to stop (their points so far flushed first when
        `flush_first`); the others go on in a group rebuilt without them."""
        stopping = [r for r in self.active if self.runs[r].callbacks.should_stop()]
        if not stopping:
            return
        if flush_first:
            self._flush()
        self.stepper.sync()
        seconds = self._elapsed()
        for r in stopping:
            run = self.runs[r]
            # A stop asked for at the very last step finds the run complete.
            run.status = "stopped" if self.step < self.total else "completed"
            run.step, run.seconds = self.step, seconds
        self.active = [r for r in self.active if r not in stopping]
        if self.active and self.step < self.total:
            self._rebuild()

    def _elapsed(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # queued kernels are part of the time
        return time.perf_counter() - self.start
