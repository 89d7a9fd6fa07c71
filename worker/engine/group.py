"""Training one group of runs that share their structure, and what each run ends with.

runner.py prepares every run (device, data, model, resume) and partitions them into groups;
`train_group` trains one group in one batched loop (the hand-written step, or autograd for a
group of one), then evaluates each member on its test records and assembles its RunResult:
metrics, fingerprint, final checkpoint and the time each phase took.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.spec import ExperimentSpec
from worker.engine.batches import train_batches
from worker.engine.callbacks import Predictions, RunCallbacks, RunResult
from worker.engine.checkpoint import save_checkpoint
from worker.engine.data import DeviceDataset
from worker.engine.evaluate import evaluate
from worker.engine.fastpath import FastStep
from worker.engine.fingerprint import build_fingerprint
from worker.engine.graphs import GraphPlan
from worker.engine.loop import AutogradStep, GroupLoop, GroupStep, RunState
from worker.engine.model import build_loss, uses_class_targets
from worker.engine.update import update_mode
from worker.engine.validation import ValidationSet

# final_loss: the mean of the last this-many logged points (fewer when the run logged fewer).
FINAL_LOSS_POINTS = 100


@dataclass
class PreparedRun:
    """One run ready to train: its model and optimizer on its device, resumed if asked."""

    spec: ExperimentSpec
    device: torch.device
    data: DeviceDataset
    model: nn.Sequential
    optimizer: torch.optim.Optimizer
    start_step: int
    seconds_before: float
    tail: list[float]
    resumed: bool
    load_s: float = 0.0  # preparing this run: dataset (cached per process), model, resume
    validation: ValidationSet | None = None  # the held-out records, if the spec has a split


@dataclass(frozen=True)
class GroupOptions:
    """run_training's switches, the same for every group."""

    fast_path: bool
    sparse_input: bool
    cuda_graphs: bool
    flush_interval_s: float
    checkpoint_interval_s: float | None


def train_group(
    runs: list[PreparedRun], calls: list[RunCallbacks], options: GroupOptions
) -> list[RunResult]:
    """Train `runs` (one group, see grouping.py) together; their results, in order."""
    first = runs[0]
    spec, dev, data = first.spec, first.device, first.data
    started = time.perf_counter()
    if spec.model.type == "cnn":
        # The hand-written step knows Linear layers only (layout.py refuses anything else): a
        # cnn, alone in its group (grouping.py), trains on the autograd step.
        options = dataclasses.replace(options, fast_path=False)
    mode = update_mode([run.optimizer for run in runs]) if options.fast_path else "optimizer"
    sparse = options.fast_path and options.sparse_input and mode == "sgd" and dev.type == "cpu"
    batches = train_batches(data, spec, sparse=sparse)
    plan = _graph_plan(spec, dev, data, options, mode)

    def build(active: list[int]) -> GroupStep:
        chosen = [runs[j] for j in active]
        if options.fast_path:
            return FastStep(
                [run.model for run in chosen],
                [run.spec for run in chosen],
                [run.optimizer for run in chosen],
                sparse_input=sparse,
            )
        (run,) = chosen
        return AutogradStep(
            run.model, build_loss(run.spec), run.optimizer, uses_class_targets(run.spec)
        )

    def make_checkpoint(j: int, step: int, seconds: float, tail: list[float]) -> bytes:
        run = runs[j]
        return save_checkpoint(
            run.spec, run.model, run.optimizer, step=step, train_seconds=seconds, loss_tail=tail
        )

    states = [
        RunState(call, run.seconds_before, run.tail) for run, call in zip(runs, calls, strict=True)
    ]
    rung_log: list[list[dict[str, float]]] = [[] for _ in runs]

    def at_rung(active: list[int], step: int) -> None:
        for j in active:
            figures = _validate(runs[j], step)
            rung_log[j].append(figures)
            calls[j].on_rung(step, figures)

    loop = GroupLoop(
        states, build, batches, spec, first.start_step, options.flush_interval_s,
        options.checkpoint_interval_s, make_checkpoint, dev, plan,
        rung_steps=spec.rung_steps, at_rung=at_rung,
    )  # fmt: skip
    for run in runs:
        run.model.train()
    results = []
    # The group's batches and step are prepared once: each member counts them in its load.
    group_load_s = time.perf_counter() - started
    with _flush_denormals(dev) as flushing:
        started = time.perf_counter()
        loop.run()
        train_s = time.perf_counter() - started
        tests = spec.test_records
        for j, run in enumerate(runs):
            started = time.perf_counter()
            metrics, predictions = (
                evaluate(run.model, run.spec, data.test_x[:tests], data.test_labels[:tests])
                if run.spec.evaluate_test
                else ({}, Predictions.none())
            )
            evaluate_s = time.perf_counter() - started
            state = states[j]
            train_seconds = run.seconds_before + state.seconds
            segment_steps = state.step - run.start_step
            tail = state.tail[-FINAL_LOSS_POINTS:]
            metrics.update(
                train_seconds=train_seconds,
                # Over this process's part of the run (a resumed run may have moved device).
                steps_per_second=segment_steps / state.seconds if state.seconds > 0 else 0.0,
                final_loss=sum(tail) / len(tail) if tail else None,
                loss_points=state.step // run.spec.log_every,
            )
            if run.validation is not None:
                log = rung_log[j]
                last = log[-1] if log and log[-1]["step"] == state.step else None
                final = last or _validate(run, state.step)
                metrics.update(
                    validation_accuracy=final["validation_accuracy"],
                    validation_loss=final["validation_loss"],
                    validation_records=len(run.validation.labels),
                    rungs=log,
                )
            extra: dict[str, Any] = {
                "resumed_from_step": run.start_step if run.resumed else None,
                "fused_runs": len(runs),
            }
            fingerprint = build_fingerprint(
                run.spec, dev, dataset_checksum=data.checksum,
                engine_path="fast" if options.fast_path else "autograd",
                flush_denormal=flushing, fused_runs=len(runs), sparse_input=sparse,
                cuda_graphs=plan.record(),
            )  # fmt: skip
            started = time.perf_counter()
            checkpoint = make_checkpoint(j, state.step, train_seconds, state.tail)
            timings = {
                "load_s": run.load_s + group_load_s,
                "train_s": train_s,
                "evaluate_s": evaluate_s,
                "save_s": time.perf_counter() - started,
            }
            results.append(
                RunResult(
                    status=state.status,
                    steps=state.step,
                    total_steps=run.spec.total_steps,
                    metrics=metrics,
                    predictions=predictions,
                    fingerprint=fingerprint,
                    checkpoint=checkpoint,
                    final_state={
                        name: tensor.detach().to("cpu", copy=True)
                        for name, tensor in run.model.state_dict().items()
                    },
                    device=str(dev),
                    extra=extra,
                    timings=timings,
                )
            )
    return results


def _validate(run: PreparedRun, step: int) -> dict[str, float]:
    """The run's figures on its held-out records at `step`."""
    assert run.validation is not None
    metrics, _ = evaluate(run.model, run.spec, run.validation.x, run.validation.labels)
    total = run.spec.total_steps
    return {
        "step": step,
        "fraction": step / total if total else 1.0,
        "validation_accuracy": metrics["test_accuracy"],
        "validation_loss": metrics["test_loss"],
    }


def _graph_plan(
    spec: ExperimentSpec, dev: torch.device, data: DeviceDataset, options: GroupOptions, mode: str
) -> GraphPlan:
    if not options.cuda_graphs:
        return GraphPlan("turned off (cuda_graphs=False)")
    if dev.type != "cuda":
        return GraphPlan("not a CUDA device")
    if spec.validation_rungs:
        return GraphPlan("validation rungs stop the loop between replays")
    if not options.fast_path:
        return GraphPlan("the autograd step is not captured")
    if mode == "optimizer":
        return GraphPlan(
            f"{spec.optimizer} with these settings updates through the optimizer's own step(), "
            "whose host-side state a replay would not advance"
        )
    if spec.train_records % spec.batch_size:
        return GraphPlan("the last batch of each epoch is shorter than the others")
    records = spec.train_records
    inputs = (data.train_x[:records], data.train_onehot[:records], data.train_labels[:records])
    return GraphPlan(None, inputs)


@contextlib.contextmanager
def _flush_denormals(device: torch.device) -> Iterator[bool]:
    """On the CPU, treat denormal floats as zero while training. Adam's moment estimates for
    pixels that are (almost) always 0 decay into the denormal range, where x86 arithmetic is
    many times slower. The values flushed are below 1.2e-38, where Adam's eps (1e-8) already
    swamps them. PyTorch sets this per thread, and it is undone afterwards."""
    if device.type != "cpu" or not torch.set_flush_denormal(True):
        yield False
        return
    try:
        yield True
    finally:
        torch.set_flush_denormal(False)
