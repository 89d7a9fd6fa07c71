"""One experiment from spec to result: device, data, model, resume, loop, evaluation, checkpoint."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from core.spec import ExperimentSpec
from worker.engine.callbacks import RunCallbacks, RunResult
from worker.engine.checkpoint import restore, save_checkpoint
from worker.engine.data import load_dataset
from worker.engine.evaluate import evaluate
from worker.engine.fastpath import FastStep
from worker.engine.fingerprint import build_fingerprint
from worker.engine.loop import AutogradStep, TrainStep, train_loop
from worker.engine.model import (
    build_loss,
    build_model,
    build_optimizer,
    resolve_device,
    uses_class_targets,
)

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
) -> RunResult:
    """Train `spec` and evaluate it on its test records.

    Callbacks fire about every `flush_interval_s` and once at the end (see RunCallbacks); a
    checkpoint goes to `on_checkpoint` every `checkpoint_interval_s` when given, and the final
    one is in the result. `resume_from` continues a checkpoint of the same spec: only points
    after its step are emitted, and on the CPU the series is bit-identical to an uninterrupted
    run. `device` overrides `spec.device`; `threads` sets torch's intra-op threads (process-wide).
    `fast_path=False` takes the autograd step instead of the hand-written one (tests run both).
    """
    dev = resolve_device(device or spec.device)
    if threads is not None:
        torch.set_num_threads(threads)
    callbacks = callbacks or RunCallbacks()
    data = load_dataset(spec.dataset, data_dir, dev, allow_download=allow_download)
    model = build_model(spec, dev)
    optimizer = build_optimizer(spec, list(model.parameters()))
    start_step, seconds_before, loss_tail = 0, 0.0, []
    if resume_from is not None:
        checkpoint = restore(resume_from, spec, model, optimizer, dev)
        start_step, seconds_before = checkpoint.step, checkpoint.train_seconds
        loss_tail = checkpoint.loss_tail
    stepper: TrainStep = (
        FastStep(model, spec, optimizer)
        if fast_path
        else AutogradStep(model, build_loss(spec), optimizer)
    )
    records, size = spec.train_records, spec.batch_size
    train_targets = data.train_labels if uses_class_targets(spec) else data.train_onehot
    batches = torch.split(data.train_x[:records], size)
    targets = torch.split(train_targets[:records], size)

    def make_checkpoint(step: int, seconds: float, tail: list[float]) -> bytes:
        return save_checkpoint(
            spec, model, optimizer, step=step, train_seconds=seconds, loss_tail=tail
        )

    model.train()
    with _flush_denormals(dev) as flushing:
        outcome = train_loop(
            stepper,
            batches,
            targets,
            spec,
            start_step=start_step,
            seconds_before=seconds_before,
            loss_tail=loss_tail,
            callbacks=callbacks,
            flush_interval_s=flush_interval_s,
            checkpoint_interval_s=checkpoint_interval_s,
            make_checkpoint=make_checkpoint,
        )
        tests = spec.test_records
        metrics, predictions = evaluate(model, spec, data.test_x[:tests], data.test_labels[:tests])
    train_seconds = seconds_before + outcome.seconds
    segment_steps = outcome.step - start_step
    tail = outcome.loss_tail[-FINAL_LOSS_POINTS:]
    metrics.update(
        train_seconds=train_seconds,
        # Measured over this process's part of the run (a resumed run may have moved device).
        steps_per_second=segment_steps / outcome.seconds if outcome.seconds > 0 else 0.0,
        final_loss=sum(tail) / len(tail) if tail else None,
        loss_points=outcome.step // spec.log_every,
    )
    extra: dict[str, Any] = {"resumed_from_step": start_step if resume_from else None}
    return RunResult(
        status=outcome.status,
        steps=outcome.step,
        total_steps=spec.total_steps,
        metrics=metrics,
        predictions=predictions,
        fingerprint=build_fingerprint(
            spec,
            dev,
            dataset_checksum=data.checksum,
            engine_path="fast" if fast_path else "autograd",
            flush_denormal=flushing,
        ),
        checkpoint=make_checkpoint(outcome.step, train_seconds, outcome.loss_tail),
        device=str(dev),
        extra=extra,
    )


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
