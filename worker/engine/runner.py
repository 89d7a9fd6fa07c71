"""Experiments from spec to result: device, data, model, resume, then group.py trains each
group (loop, evaluation, checkpoint).

`run_training_group` trains several runs together when they share their structure (every
field but the seed, learning rate, weight decay and momentum: core.spec.group_key), in one
batched step per batch; `run_training` is a group of one. Each run keeps its own callbacks,
series, metrics, outputs, fingerprint and checkpoint, in the single-run format: a run's
checkpoint resumes it alone or in a group. On the CPU a run's series is bit-identical fused
or alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch

from core.spec import ExperimentSpec
from worker.engine.callbacks import RunCallbacks, RunResult
from worker.engine.checkpoint import restore
from worker.engine.data import load_dataset
from worker.engine.group import GroupOptions, PreparedRun, train_group
from worker.engine.grouping import partition
from worker.engine.model import build_model, build_optimizer, resolve_device
from worker.engine.validation import split_dataset


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
    options = GroupOptions(
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
            members, train_group(group, [calls[i] for i in members], options), strict=True
        ):
            results[i] = result
    return [result for result in results if result is not None]


def _prepare(
    spec: ExperimentSpec,
    resume: bytes | None,
    device: str | None,
    data_dir: Path,
    allow_download: bool,
) -> PreparedRun:
    dev = resolve_device(device or spec.device)
    data = load_dataset(spec.dataset, data_dir, dev, allow_download=allow_download)
    validation = None
    if spec.validation_records:
        data, validation = split_dataset(data, spec.validation_records)
    model = build_model(spec, dev)
    optimizer = build_optimizer(spec, list(model.parameters()))
    run = PreparedRun(spec, dev, data, model, optimizer, 0, 0.0, [], resume is not None)
    run.validation = validation
    if resume is not None:
        checkpoint = restore(resume, spec, model, optimizer, dev)
        run.start_step, run.seconds_before = checkpoint.step, checkpoint.train_seconds
        run.tail = checkpoint.loss_tail
    return run
