"""Experiments from spec to result: device, data, model, resume, loop, evaluation, checkpoint.

`run_training_group` trains several runs together when they share their structure (every
field but the seed, learning rate, weight decay and momentum: core.spec.group_key), in one
batched step per batch; `run_training` is a group of one. Each run keeps its own callbacks,
series, metrics, outputs, fingerprint and checkpoint, in the single-run format: a run's
checkpoint resumes it alone or in a group. On the CPU a run's series is bit-identical fused
or alone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.spec import ExperimentSpec
from worker.engine.batches import train_batches
from worker.engine.callbacks import RunCallbacks, RunResult
from worker.engine.checkpoint import restore, save_checkpoint
from worker.engine.data import DeviceDataset, load_dataset
from worker.engine.evaluate import evaluate
from worker.engine.fastpath import FastStep
from worker.engine.fingerprint import build_fingerprint
from worker.engine.graphs import GraphPlan
from worker.engine.grouping import partition
from worker.engine.loop import AutogradStep, GroupLoop, GroupStep, RunState
from worker.engine.model import (
    build_loss,
    build_model,
    build_optimizer,
    resolve_device,
    uses_class_targets,
)
from worker.engine.update import update_mode
from worker.engine.validation import ValidationSet, split_dataset

# final_loss: the mean of the last this-many logged points (fewer when the run logged fewer).
FINAL_LOSS_POINTS = 100


def run_training(
    spec: ExperimentSpec,
    *,
    data_dir: Path,
    allow_download: bool = True,
    callbacks: RunCallbacks | None = None,
    resume_from: bytes | None = None,
    device: str | None = None,
    threads: int | None = None,
    flush_interval_s: float = 1.0,
    checkpoint_interval_s: float | None = None,
    fast_path: bool = True,
    sparse_input: bool = True,
    cuda_graphs: bool = True,
) -> RunResult:
    """Train `spec` and evaluate it on its test records.

    Callbacks fire about every `flush_interval_s` and once at the end (see RunCallbacks); a
    checkpoint goes to `on_checkpoint` every `checkpoint_interval_s` when given, and the final
    one is in the result. `resume_from` continues a checkpoint of the same spec: only points
    after its step are emitted, and on the CPU the series is bit-identical to an uninterrupted
    run. `device` overrides `spec.device`; `threads` sets torch's intra-op threads (process-wide).
    `fast_path=False` takes the autograd step instead of the hand-written one (tests run both);
    `sparse_input=False` keeps the dense first layer under plain SGD on the CPU;
    `cuda_graphs=False` launches every step's kernels from Python on CUDA.
    """
    return run_training_group(
        [spec],
        data_dir=data_dir,
        allow_download=allow_download,
        callbacks=[callbacks or RunCallbacks()],
        resume_from=[resume_from],
        device=device,
        threads=threads,
        flush_interval_s=flush_interval_s,
        checkpoint_interval_s=checkpoint_interval_s,
        fast_path=fast_path,
        sparse_input=sparse_input,
        cuda_graphs=cuda_graphs,
    )[0]


def run_training_group(
    specs: Sequence[ExperimentSpec],
    *,
    data_dir: Path,
    allow_download: bool = True,
    callbacks: Sequence[RunCallbacks] | None = None,
    resume_from: Sequence[bytes | None] | None = None,
    device: str | None = None,
    threads: int | None = None,
    flush_interval_s: float = 1.0,
    checkpoint_interval_s: float | None = None,
    fast_path: bool = True,
    sparse_input: bool = True,
    cuda_graphs: bool = True,
    max_fused_runs: int | None = None,
) -> list[RunResult]:
    """Train several specs, fused where they can be, and return their results in order.

    Runs with the same `group_key` that resume from the same step (or all start afresh) train
    as one group; the others form their own groups, trained one after another. So a group
    whose members' checkpoints are at different steps still trains, in sub-groups per step;
    and a group has at most `max_fused_runs` runs (None: all on CUDA, on the CPU what the
    cache holds, see grouping.py).
    Each run's `callbacks[i]` and `resume_from[i]` are its own: a run whose `should_stop`
    returns True ends (status "stopped", its series so far) and the others go on. The other
    arguments are run_training's. `train_seconds` of a fused run is the group's training time.
    """
    count = len(specs)
    calls = list(callbacks) if callbacks is not None else [RunCallbacks() for _ in specs]
    resumes = list(resume_from) if resume_from is not None else [None] * count
    if len(calls) != count or len(resumes) != count:
        raise ValueError("one callbacks and one resume_from entry per spec")
    if threads is not None:
        torch.set_num_threads(threads)
    runs = []
    for spec, resume in zip(specs, resumes, strict=True):
        started = time.perf_counter()
        run = _prepare(spec, resume, device, data_dir, allow_download)
        run.load_s = time.perf_counter() - started
        runs.append(run)
    results: list[RunResult | None] = [None] * count
    options = _Options(
        fast_path, sparse_input, cuda_graphs, flush_interval_s, checkpoint_interval_s
    )
    groups = partition(
        [run.spec for run in runs],
        [run.start_step for run in runs],
        [run.device for run in runs],
        fused=fast_path,
        max_runs=max_fused_runs,
    )
    for members in groups:
        group = [runs[i] for i in members]
        for i, result in zip(
            members, _train(group, [calls[i] for i in members], options), strict=True
        ):
            results[i] = result
    return [result for result in results if result is not None]


@dataclass
class _Run:
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
class _Options:
    fast_path: bool
    sparse_input: bool
    cuda_graphs: bool
    flush_interval_s: float
    checkpoint_interval_s: float | None


def _prepare(
    spec: ExperimentSpec,
    resume: bytes | None,
    device: str | None,
    data_dir: Path,
    allow_download: bool,
) -> _Run:
    dev = resolve_device(device or spec.device)
    data = load_dataset(spec.dataset, data_dir, dev, allow_download=allow_download)
    validation = None
    if spec.validation_records:
        data, validation = split_dataset(data, spec.validation_records)
    model = build_model(spec, dev)
    optimizer = build_optimizer(spec, list(model.parameters()))
    run = _Run(spec, dev, data, model, optimizer, 0, 0.0, [], resume is not None)
    run.validation = validation
    if resume is not None:
        checkpoint = restore(resume, spec, model, optimizer, dev)
        run.start_step, run.seconds_before = checkpoint.step, checkpoint.train_seconds
        run.tail = checkpoint.loss_tail
    return run


def _train(runs: list[_Run], calls: list[RunCallbacks], options: _Options) -> list[RunResult]:
    first = runs[0]
    spec, dev, data = first.spec, first.device, first.data
    started = time.perf_counter()
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
            metrics, predictions = evaluate(
                run.model, run.spec, data.test_x[:tests], data.test_labels[:tests]
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
                    device=str(dev),
                    extra=extra,
                    timings=timings,
                )
            )
    return results


def _validate(run: _Run, step: int) -> dict[str, float]:
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
    spec: ExperimentSpec, dev: torch.device, data: DeviceDataset, options: _Options, mode: str
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
