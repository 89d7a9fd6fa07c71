"""A GAN run from spec to result: device, data, networks, resume, the book's loop, samples of
fixed seeds and the judge's figures at every sample point, checkpoints.

Both series are keyed by the step (the training record) during which the point was taken:
D trains twice per record, so with an even log_every every D point comes from a fake-image
step, as in the book. Runs of a group train one after another (no fused GAN steps).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import worker.gan.checkpoint as ckpt
from core.kinds.gan_spec import GanSpec
from worker.engine.callbacks import Predictions, RunCallbacks, RunResult
from worker.engine.data import load_dataset
from worker.engine.model import resolve_device
from worker.gan.fast import FastGanStep, fast_step
from worker.gan.judge import Judge
from worker.gan.networks import GanModels, build_models, draw_latent
from worker.gan.step import GanStep

# The fixed seeds of the samples and of the judge's images come from generators of their own
# (offsets of the run's seed), so they never move the training stream.
_SAMPLE_SEED_OFFSET = 1_000_003
_JUDGE_SEED_OFFSET = 2_000_029
# The judge's figures a rung reports (core/sweeps/objectives.py names them for sweeps).
RUNG_FIGURES = ("entropy_bits", "confidence", "frechet", "correlation", "as_requested")


def fixed_latents(spec: GanSpec, count: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` seeds and their labels (0..9 in turn) drawn from seed + offset."""
    rng = torch.Generator().manual_seed(spec.seed + offset)
    return draw_latent(spec, count, rng), torch.arange(count) % 10


def sample_latents(spec: GanSpec) -> tuple[torch.Tensor, torch.Tensor]:
    return fixed_latents(spec, spec.samples, _SAMPLE_SEED_OFFSET)


@torch.no_grad()
def generate(
    spec: GanSpec, models: GanModels, seeds: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """The generator's images of `seeds` (with one-hot `labels` when conditional)."""
    dev = next(models.generator.parameters()).device
    x = seeds.to(dev)
    if spec.conditional:
        x = torch.cat((x, torch.nn.functional.one_hot(labels, 10).to(dev, torch.float32)), 1)
    images: torch.Tensor = models.generator(x)
    return images


def run_gan(
    spec: GanSpec,
    *,
    data_dir: Path,
    allow_download: bool = True,
    callbacks: RunCallbacks | None = None,
    resume_from: bytes | None = None,
    device: str | None = None,
    threads: int | None = None,
    flush_interval_s: float = 1.0,
    checkpoint_interval_s: float | None = None,
) -> RunResult:
    """Train `spec` (the arguments are worker.engine.run_training's)."""
    if threads is not None:
        torch.set_num_threads(threads)
    call = callbacks or RunCallbacks()
    loading = time.perf_counter()
    dev = resolve_device(device or spec.device)
    data = load_dataset(spec.dataset, data_dir, dev, allow_download=allow_download)
    models = build_models(spec, dev)
    rng = torch.Generator().manual_seed(spec.seed)
    state = ckpt.GanState()
    if resume_from is not None:
        state = ckpt.restore(resume_from, spec, models, dev)
        if state.rng is not None:
            rng.set_state(state.rng)
    judge = _judge(spec, call, dev)
    load_s = time.perf_counter() - loading

    # The hand-written step where it covers the spec (the same values, a fraction of the
    # time at one record a step), else autograd's.
    step_fn: GanStep | FastGanStep = fast_step(spec, models, dev) or GanStep(spec, models, dev)
    train_x = data.train_x[: spec.train_records]
    train_labels = data.train_labels[: spec.train_records].tolist()
    records, total, every = spec.train_records, spec.total_steps, spec.log_every
    sample_steps = set(spec.sample_steps())
    rungs = dict(zip(spec.rung_steps, spec.judge_rungs, strict=True))
    # A sweep's trials (evaluate_test false) never read the test set, not even as the
    # judge's real images.
    reference = data.test_x if spec.evaluate_test else data.train_x
    d_steps: list[int] = []
    d_values: list[Any] = []
    g_steps: list[int] = []
    g_values: list[Any] = []

    def flush() -> None:
        if d_steps:
            values = [float(v) for v in d_values]
            state.d_tail = (state.d_tail + values)[-ckpt.LOSS_TAIL :]
            call.on_series("discriminator", list(d_steps), values)
        if g_steps:
            values = [float(v) for v in g_values]
            state.g_tail = (state.g_tail + values)[-ckpt.LOSS_TAIL :]
            call.on_series("generator", list(g_steps), values)
        for pending in (d_steps, d_values, g_steps, g_values):
            pending.clear()
        call.on_progress(state.step, total)

    started = time.perf_counter()
    seconds_before = state.train_seconds
    next_flush = started + flush_interval_s
    next_checkpoint = started + checkpoint_interval_s if checkpoint_interval_s else None
    stopped = False
    while state.step < total:
        index = state.step % records
        seeds, labels = step_fn.draw(rng)
        step = state.step + 1
        # D's train calls so far are 2 * step (the real one was 2 * step - 1).
        record = ((2 * step - 1) % every == 0, (2 * step) % every == 0, step % every == 0)
        d_real, d_fake, g_loss = step_fn(
            train_x[index : index + 1], train_labels[index], seeds, labels, record
        )
        state.step = step
        if d_real is not None and record[0]:
            d_steps.append(step)
            d_values.append(d_real.detach())
        if d_fake is not None and record[1]:
            d_steps.append(step)
            d_values.append(d_fake.detach())
        if g_loss is not None and record[2]:
            g_steps.append(step)
            g_values.append(g_loss.detach())
        at_rung = step in rungs
        if step in sample_steps or at_rung:
            figures = _sample(spec, models, state, judge, reference, keep=step in sample_steps)
            if at_rung and figures is not None:
                call.on_rung(step, {"step": step, "fraction": rungs[step], **_scalars(figures)})
        now = time.perf_counter()
        # At a rung the stop check comes at once: a sweep's pruner may have stopped the run.
        if now >= next_flush or step == total or at_rung:
            state.train_seconds = seconds_before + now - started
            flush()
            next_flush = now + flush_interval_s
            if step < total and call.should_stop():
                stopped = True
                break
            if next_checkpoint is not None and now >= next_checkpoint and step < total:
                state.rng = rng.get_state()
                call.on_checkpoint(ckpt.save(spec, models, state), step)
                next_checkpoint = time.perf_counter() + (checkpoint_interval_s or 0.0)
    train_s = time.perf_counter() - started
    state.train_seconds = seconds_before + train_s
    state.rng = rng.get_state()
    saving = time.perf_counter()
    data_bytes = ckpt.save(spec, models, state)
    return RunResult(
        status="stopped" if stopped else "completed",
        steps=state.step,
        total_steps=total,
        metrics=_metrics(spec, state, train_s),
        predictions=Predictions.none(),
        fingerprint={
            "spec": spec.fingerprint(),
            "dataset": data.checksum,
            "torch": torch.__version__,
        },
        checkpoint=data_bytes,
        device=str(dev),
        extra={"samples": _samples_out(spec, state)},
        timings={"load_s": load_s, "train_s": train_s, "save_s": time.perf_counter() - saving},
    )


def run_gan_group(
    specs: Sequence[GanSpec],
    *,
    data_dir: Path,
    allow_download: bool = True,
    callbacks: Sequence[RunCallbacks] | None = None,
    resume_from: Sequence[bytes | None] | None = None,
    device: str | None = None,
    threads: int | None = None,
    flush_interval_s: float = 1.0,
    checkpoint_interval_s: float | None = None,
) -> list[RunResult]:
    """GAN runs are not fused: a group trains one run after another."""
    calls = list(callbacks) if callbacks is not None else [RunCallbacks() for _ in specs]
    resumes = list(resume_from) if resume_from is not None else [None] * len(specs)
    return [
        run_gan(
            spec,
            data_dir=data_dir,
            allow_download=allow_download,
            callbacks=call,
            resume_from=resume,
            device=device,
            threads=threads,
            flush_interval_s=flush_interval_s,
            checkpoint_interval_s=checkpoint_interval_s,
        )
        for spec, call, resume in zip(specs, calls, resumes, strict=True)
    ]


def _judge(spec: GanSpec, call: RunCallbacks, dev: torch.device) -> Judge | None:
    if spec.judge is None:
        return None
    data = call.load_model(spec.judge)
    if data is None:
        return None  # the judge was deleted meanwhile: the run goes on unjudged
    return Judge.from_file(data, dev)


def _sample(
    spec: GanSpec,
    models: GanModels,
    state: ckpt.GanState,
    judge: Judge | None,
    reference: torch.Tensor,
    *,
    keep: bool = True,
) -> dict[str, Any] | None:
    """Store the fixed seeds' images (when `keep`) and the judge's figures, which it returns
    (None without a judge)."""
    if keep:
        seeds, labels = sample_latents(spec)
        images = generate(spec, models, seeds, labels)
        state.samples[state.step] = (images * 255).round().to(torch.uint8).cpu()
    if judge is None:
        return None
    seeds, labels = fixed_latents(spec, spec.judge_samples, _JUDGE_SEED_OFFSET)
    images = generate(spec, models, seeds, labels)
    requested = labels.to(images.device) if spec.conditional else None
    figures = judge.figures(images, reference[: spec.judge_samples], requested)
    state.judged.append({"step": state.step, **figures})
    return figures


def _scalars(figures: dict[str, Any]) -> dict[str, float]:
    """The judge's figures a rung reports (a sweep's objectives): the numbers, not the
    histogram."""
    return {k: float(v) for k, v in figures.items() if k in RUNG_FIGURES}


def _metrics(spec: GanSpec, state: ckpt.GanState, train_s: float) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "train_seconds": round(state.train_seconds, 3),
        "steps_per_second": round(state.step / train_s, 2) if train_s > 0 else None,
        "final_loss": _mean(state.d_tail),
        "final_d_loss": _mean(state.d_tail),
        "final_g_loss": _mean(state.g_tail),
        "judge": state.judged,
    }
    if state.judged:
        last = state.judged[-1]
        for name in RUNG_FIGURES:
            if name in last:
                metrics[name] = last[name]
    return metrics


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _samples_out(spec: GanSpec, state: ckpt.GanState) -> list[dict[str, Any]]:
    _, labels = sample_latents(spec)
    return [
        {
            "step": step,
            "pixels": state.samples[step].numpy(),
            "labels": labels.tolist() if spec.conditional else None,
        }
        for step in sorted(state.samples)
    ]
