"""The training loop: batches in record order, one optimizer step each, losses kept on the device.

No persistence and no host synchronisation per step: the loss of every `log_every`-th step is
written into a preallocated device tensor, and about every `flush_interval_s` (a clock read per
step, no device sync) the new points move to the host in one transfer and go to the callbacks,
which may also stop the run. Records are read in order, as the book does, so a run is a pure
function of spec and seed, and a resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
from torch import nn

from core.spec import ExperimentSpec
from worker.engine.callbacks import RunCallbacks
from worker.engine.checkpoint import LOSS_TAIL


class TrainStep(Protocol):
    def step(self, x: torch.Tensor, target: torch.Tensor, loss_slot: torch.Tensor | None) -> None:
        """One optimizer step on one batch; the batch loss goes into `loss_slot` if given."""


class AutogradStep:
    """The plain PyTorch step (module forward, loss, backward, optimizer.step()). The engine
    runs the hand-written FastStep; this one is the yardstick tests hold it against."""

    def __init__(self, model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer

    def step(self, x: torch.Tensor, target: torch.Tensor, loss_slot: torch.Tensor | None) -> None:
        loss = self.loss_fn(self.model(x), target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if loss_slot is not None:
            loss_slot.copy_(loss.detach())


@dataclass
class LoopOutcome:
    status: Literal["completed", "stopped"]
    step: int  # optimizer steps done over the whole run
    seconds: float  # seconds this call spent in the loop
    loss_tail: list[float] = field(default_factory=list)  # last logged values, whole run


# (step, train seconds so far, loss tail) -> checkpoint bytes
MakeCheckpoint = Callable[[int, float, list[float]], bytes]


def train_loop(
    stepper: TrainStep,
    batches: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    spec: ExperimentSpec,
    *,
    start_step: int,
    seconds_before: float,
    loss_tail: list[float],
    callbacks: RunCallbacks,
    flush_interval_s: float,
    checkpoint_interval_s: float | None,
    make_checkpoint: MakeCheckpoint,
) -> LoopOutcome:
    total, per_epoch, every = spec.total_steps, spec.steps_per_epoch, spec.log_every
    device = batches[0].device
    # Point k (1-based) is the loss at step k * log_every; it lives at losses[k - 1].
    losses = torch.zeros(max(total // every, 1), dtype=torch.float32, device=device)
    tail = list(loss_tail)
    sent = start_step // every  # points a previous segment already emitted
    step = start_step
    stopped = False

    def flush() -> None:
        nonlocal sent, tail
        upto = step // every
        if upto > sent:
            values = losses[sent:upto].tolist()  # the one host transfer per flush
            callbacks.on_loss([k * every for k in range(sent + 1, upto + 1)], values)
            tail = (tail + values)[-LOSS_TAIL:]
            sent = upto
        callbacks.on_progress(step, total)

    start = time.perf_counter()
    next_flush = start + flush_interval_s
    next_checkpoint = start + checkpoint_interval_s if checkpoint_interval_s else float("inf")
    clock = time.perf_counter
    run = stepper.step
    while step < total and not stopped:
        for i in range(step % per_epoch, per_epoch):
            step += 1
            run(batches[i], targets[i], losses[step // every - 1] if step % every == 0 else None)
            now = clock()
            if now < next_flush:
                continue
            flush()
            next_flush = now + flush_interval_s
            if callbacks.should_stop():
                stopped = True
                break
            if now >= next_checkpoint:
                seconds = seconds_before + _elapsed(start, device)
                callbacks.on_checkpoint(make_checkpoint(step, seconds, tail), step)
                next_checkpoint = clock() + (checkpoint_interval_s or 0.0)
    flush()
    seconds = _elapsed(start, device)
    # A stop asked for at the very last step finds the run complete.
    status: Literal["completed", "stopped"] = "stopped" if step < total else "completed"
    return LoopOutcome(status, step, seconds, tail)


def _elapsed(start: float, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # queued kernels are part of the time
    return time.perf_counter() - start
