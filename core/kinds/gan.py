"""The GAN kind (the book's chapters 7, 8 and 16): its declaration and cost model.

The spec is core/kinds/gan_spec.py. A run records two loss series, the discriminator's and
the generator's; it stores samples of fixed seeds at intervals and the judge classifier's
figures on them as its metrics; its model file holds both networks.
"""

from __future__ import annotations

from core.kinds.base import Kind, SpecCost
from core.kinds.classifier_cost import (
    CHECKPOINT_BASE_BYTES,
    CHECKPOINT_BYTES_PER_TENSOR,
    DATASET_BYTES,
    FLOAT_BYTES,
    MODEL_FILE_BASE_BYTES,
    MODEL_FILE_BYTES_PER_TENSOR,
    SERIES_BYTES_PER_POINT,
    STEP_OVERHEAD_PER_LAYER,
)
from core.kinds.gan_spec import GanNetwork, GanSpec

SERIES = ("discriminator", "generator")
# The GAN's step is not in the classifier's calibrated step-time model (STEP_SECONDS, fitted
# on classifier runs): it has a rate of its own, fitted by bench/gan_cost.py (make
# bench-gan-cost) on the engine's hand-written step, one CPU thread, CPU time, over the book's
# four GANs and variants of width, depth and optimizer: the rate that puts the worst over- and
# under-estimate at one factor, 2.0x (gan-first-attempt, SGD without LayerNorm, runs 2x faster
# than this rate says; a 50-wide gan-mnist 2x slower). Measured under a load average of 11 on
# 2 cores, which inflates CPU time too: the estimates err on the long side.
STEP_PARAMETERS_PER_CPU_SECOND = 6.7e8
# Bytes of one stored sample image (uint8 pixels) and what the judge adds per image.
_SAMPLE_BYTES = 784
_JUDGE_VALUES_PER_IMAGE = 784 + 2 * 200


def _network(net: GanNetwork) -> tuple[int, int, int]:
    """(parameters, parameter tensors, optimizer values) of one network."""
    layers = net.layers()
    tensors = sum(4 if layer.normalization == "layer_norm" else 2 for layer in layers)
    parameters = net.parameters
    state = 2 * parameters + tensors if net.optimizer == "adam" else 0
    return parameters, tensors, state


def step_parameters(spec: GanSpec) -> float:
    """One step's work: D takes two forward and backward passes and one more through the
    generator's step, G two (the detached fake and its own step): about 3 x D + 2 x G
    step-parameters, and a fixed overhead per layer."""
    layers = len(spec.discriminator.layers()) + len(spec.generator.layers())
    return (
        3 * spec.discriminator.parameters
        + 2 * spec.generator.parameters
        + 5 * STEP_OVERHEAD_PER_LAYER * layers
    )


def estimate(spec: GanSpec) -> SpecCost:
    """Every figure of one GAN run, from the spec alone."""
    d_params, d_tensors, d_state = _network(spec.discriminator)
    g_params, g_tensors, g_state = _network(spec.generator)
    parameters = d_params + g_params
    state = d_state + g_state
    tensors = 2 * (d_tensors + g_tensors)  # weights and the optimizer's per-tensor entries
    samples = len(spec.sample_steps()) * spec.samples * _SAMPLE_BYTES
    # Each sample's label too, for a conditional GAN (core/store/samples.py).
    stored_samples = samples + (len(spec.sample_steps()) * spec.samples if spec.conditional else 0)
    checkpoint = (
        CHECKPOINT_BASE_BYTES
        + FLOAT_BYTES * (parameters + state)
        + CHECKPOINT_BYTES_PER_TENSOR * tensors
        + samples
    )
    judging = spec.judge_samples * _JUDGE_VALUES_PER_IMAGE * FLOAT_BYTES
    memory = FLOAT_BYTES * (2 * parameters + state) + DATASET_BYTES + max(judging, 3 * checkpoint)
    per_step = step_parameters(spec)
    # The judge: the generator and the classifier over judge_samples images per sample point.
    judged = len(set(spec.sample_steps()) | set(spec.rung_steps))  # rungs are judged too
    judge = judged * spec.judge_samples * (g_params + 200_000) * 0.05
    work = spec.total_steps * per_step + judge
    loss_points = spec.loss_points + spec.total_steps // spec.log_every  # D's and G's series
    return SpecCost(
        parameters=parameters,
        buffers=0,
        optimizer_state=state,
        checkpoint_bytes=checkpoint,
        memory_bytes=memory,
        steps=spec.total_steps,
        samples=spec.total_steps,
        loss_points=loss_points,
        step_parameters=work,
        cpu_seconds=work / STEP_PARAMETERS_PER_CPU_SECOND,
        # The model file holds both networks' weights (worker/gan/artifacts.py); the store
        # keeps two packed series and, instead of per-record outputs, the samples' images.
        model_bytes=MODEL_FILE_BASE_BYTES
        + FLOAT_BYTES * parameters
        + MODEL_FILE_BYTES_PER_TENSOR * (d_tensors + g_tensors),
        series_bytes=SERIES_BYTES_PER_POINT * loss_points,
        outputs_bytes=stored_samples,
    )


GAN = Kind(
    name="gan",
    spec_model=GanSpec,
    cost=estimate,
    series=SERIES,
    # No per-record test outputs: a GAN's results are its samples and the judge's figures.
    record_outputs="none: samples of fixed seeds at intervals, judged by a classifier",
    artifacts=("model", "checkpoint", "samples"),
    views=("curves", "gan-card"),
    # The judge's label entropy over generated images: what tells a GAN that collapsed (one
    # digit, near 0 bits) from one that draws them all (near log2(10) = 3.32 bits).
    summary_metric="entropy_bits",
    summary_metrics=("entropy_bits", "confidence", "frechet", "correlation", "as_requested"),
)
