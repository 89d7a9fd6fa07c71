"""CUDA graphs of the fused step: on a GPU, a batch-of-one step is a few dozen tiny kernels,
and launching them one by one from Python costs more than running them. So, after real warm-up
steps, `chunk` consecutive steps are captured once and then replayed as one launch.

A captured step does not take its batch from Python: it reads the batch at a device-side cursor
(records in order, wrapping at the epoch's end) and advances it, and the chunk's last step, when
it is a logging step, writes the runs' losses at a device-side point index. `chunk` divides
`log_every`, and a replay starts only at a multiple of it, so a chunk logs at most at its last
step: there is one graph that logs and, when `log_every` > `chunk`, one that does not. The
replayed kernels are the eager step's, so the series equals the eager one.

Graphs are skipped, with the reason recorded in the fingerprint, when the device is not CUDA,
when the optimizer updates through its own step() (it keeps host-side state a replay would not
repeat), when the last batch of an epoch is shorter, or when the capture fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import torch

from core.spec import ExperimentSpec

if TYPE_CHECKING:
    from worker.engine.loop import GroupStep

Tensor = torch.Tensor
MAX_CHUNK = 32  # steps per graph: enough to hide the launch; capture time grows with it


def chunk_size(log_every: int) -> int:
    """The largest divisor of log_every up to MAX_CHUNK."""
    return max(d for d in range(1, min(log_every, MAX_CHUNK) + 1) if log_every % d == 0)


class GraphPlan:
    """Whether a group's steps are replayed from CUDA graphs, and why not when they are not.
    `reason` None means wanted; `inputs` are the training records on the device."""

    def __init__(
        self,
        reason: str | None = "not requested",
        inputs: tuple[Tensor, ...] = (),
        steps: type[GraphSteps] | None = None,
    ) -> None:
        self.reason, self.inputs = reason, inputs
        self.steps = steps or GraphSteps
        self.used = False
        self.active: GraphSteps | None = None

    def attach(self, stepper: GroupStep, losses: Tensor, spec: ExperimentSpec) -> None:
        """A (re)built group: graphs of its step, captured once the loop has warmed it up."""
        self.release()
        if self.reason is None:
            self.active = self.steps(self, stepper, losses, spec)

    def release(self) -> None:
        self.active = None

    def fail(self, reason: str) -> None:
        self.reason, self.active = reason, None

    def record(self) -> dict[str, Any]:
        if self.used:
            return {"used": True, "reason": None}
        return {"used": False, "reason": self.reason or "the run ended before a capture"}


class Replayable(Protocol):
    def replay(self) -> None: ...


class GraphSteps:
    """`chunk` steps of one group's step, captured on a side stream, replayed as one launch."""

    def __init__(
        self, plan: GraphPlan, stepper: GroupStep, losses: Tensor, spec: ExperimentSpec
    ) -> None:
        self.plan, self.stepper, self.losses = plan, stepper, losses
        x, onehot, labels = plan.inputs
        self.x, self.onehot, self.labels = x, onehot, labels
        device = x.device
        self.batch, self.every = spec.batch_size, spec.log_every
        self.per_epoch = spec.steps_per_epoch
        self.chunk = chunk_size(spec.log_every)
        self.captured = False
        self.cursor = torch.zeros((), dtype=torch.int64, device=device)
        self.point = torch.zeros(1, dtype=torch.int64, device=device)
        self.offsets = torch.arange(self.batch, device=device)
        self.stage = torch.zeros(stepper.runs, device=device)
        self.graphs: dict[bool, Replayable] = {}
        self.expected = -1  # the step the device counters point at
        self.stream = self._stream()

    def _stream(self) -> Any:
        return torch.cuda.Stream(self.x.device)  # type: ignore[no-untyped-call]

    @contextlib.contextmanager
    def warmup(self) -> Iterator[None]:
        """Eager steps on the capture stream (lazy initialisations happen on it)."""
        current = torch.cuda.current_stream(self.x.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            yield
        current.wait_stream(self.stream)

    def _capture(self, logs: bool, pool: Any) -> tuple[Replayable, Any]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool, stream=self.stream):
            self._chunk(logs)
        return graph, graph.pool()

    def capture(self) -> None:
        try:
            pool = None
            for logs in [True] if self.chunk == self.every else [True, False]:
                self.graphs[logs], pool = self._capture(logs, pool)
        except Exception as exc:  # any capture error: train on without graphs, say why
            self.graphs.clear()
            self.plan.fail(f"capture failed ({type(exc).__name__}: {str(exc)[:200]})")
            return
        self.captured = True
        self.plan.used = True

    def replay(self, step: int, logs: bool) -> None:
        if step != self.expected:
            self.cursor.fill_(step % self.per_epoch)
            self.point.fill_(step // self.every)  # the next logging step's point
        self.graphs[logs].replay()
        self.expected = step + self.chunk

    def _chunk(self, logs: bool) -> None:
        """`chunk` steps; the last one writes the runs' losses when `logs`."""
        for k in range(self.chunk):
            self._step(logs and k == self.chunk - 1)

    def _step(self, logs: bool) -> None:
        rows = torch.add(self.offsets, self.cursor, alpha=self.batch)
        x = self.x.index_select(0, rows)
        onehot = self.onehot.index_select(0, rows)
        labels = self.labels.index_select(0, rows)
        self.stepper.step(x, onehot, labels, None, self.stage if logs else None)
        if logs:
            self.losses.index_copy_(0, self.point, self.stage.view(1, -1))
            self.point.add_(1)
        self.cursor.add_(1).remainder_(self.per_epoch)
