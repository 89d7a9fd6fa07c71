"""What a classifier's spec costs to run and to keep, from the spec alone (no torch): the
classifier kind's cost function (core/kinds/classifier.py), which core.cost checks against
the bounds.

For one spec: the model's parameters, the optimizer's state, the checkpoint's size, the peak
memory the run adds to its worker, its optimizer steps, the records it trains on, the loss
points it records, and its work in *step-parameters* with the CPU time that work takes.

A step-parameter is one parameter taken through one training step at batch size 1 (forward,
backward and the optimizer's update): the book's recipe, 180,000 steps of a 159,010-parameter
network, is 2.86e10 of them. A bigger batch costs more per step, but far less than one step per
record (a batch is one matrix product, not many): each record past the first adds
SAMPLE_SHARE of a step-parameter per parameter. Every step also pays a fixed overhead per
layer that does not depend on its size (STEP_OVERHEAD_PER_LAYER). CPU seconds are the
step-parameters divided by STEP_PARAMETERS_PER_CPU_SECOND, measured with the engine on one CPU
thread (see the constants).

`estimate(spec)` is the one function; callers use core.cost.estimate, which finds the spec's
kind first.
"""

from __future__ import annotations

from core.kinds.base import SpecCost
from core.spec import INPUT_FEATURES, NUM_CLASSES, TEST_RECORDS, TRAIN_RECORDS, ExperimentSpec

FLOAT_BYTES = 4  # weights, gradients, optimizer state and checkpoints are float32

# Calibration, measured with the engine (fast path, one CPU thread, torch 2.14) on the
# project's reference machine (2 cores, shared): seed-layernorm, the slowest step per parameter
# of the book's recipes (Adam and LayerNorm at batch 1), ran 180,000 steps of its 159,410
# parameters in 61 s, 4.7e8 step-parameters a second (8.5e8 on an idle machine); seed-baseline
# (SGD) 2.6e9; one 4096-unit layer with SGD 5e9. The rate below is under all of these (the
# book's recipe estimates at about 110 s), so an estimate errs on the long side.
STEP_PARAMETERS_PER_CPU_SECOND = 3e8
# What one more record in a batch adds, per parameter, relative to a batch-1 step (fitted on
# batches of 16 to 256 records of 0.4M to 18M parameters: 0.05 to 0.1 of the batch-1 step).
SAMPLE_SHARE = 0.05
# Python and kernel-launch overhead of one step for each layer, as step-parameters (about
# 30 microseconds a layer: a network of eight 64-unit layers is bound by it, not by its size).
STEP_OVERHEAD_PER_LAYER = 10_000

# torch.save's container: the spec, the last losses and the zip directory, plus an entry of a
# few hundred bytes for each tensor (checked against real checkpoints in tests/core/test_cost.py).
CHECKPOINT_BASE_BYTES = 16 * 1024
CHECKPOINT_BYTES_PER_TENSOR = 512
# The engine keeps the whole dataset on its device: images as float32, one-hot targets, labels.
_DATASET_RECORDS = max(TRAIN_RECORDS.values()) + max(TEST_RECORDS.values())
DATASET_BYTES = _DATASET_RECORDS * ((INPUT_FEATURES + NUM_CLASSES) * FLOAT_BYTES + 8)
# Values kept per record and hidden unit between forward and backward (the layer's output, the
# activation's, the normalization's and their gradients), and records per evaluation pass.
_ACTIVATION_VALUES_PER_UNIT = 6
_EVAL_CHUNK = 2048
# While a checkpoint is written its bytes exist about three times: torch's buffer, the bytes
# handed to the store, and the driver's copy.
_CHECKPOINT_COPIES = 3


def _tensors(spec: ExperimentSpec) -> tuple[int, int, int, int]:
    """(parameters, buffers, parameter tensors, buffer tensors) of the spec's network."""
    parameters = param_tensors = buffers = buffer_tensors = 0
    for layer in spec.layers():
        parameters += layer.fan_in * layer.fan_out + layer.fan_out  # weight and bias
        param_tensors += 2
        if layer.normalization in ("layer_norm", "batch_norm"):
            parameters += 2 * layer.fan_out  # scale and shift per unit
            param_tensors += 2
        if layer.normalization == "batch_norm":
            buffers += 2 * layer.fan_out + 1  # running mean and variance, a batch count
            buffer_tensors += 3
    return parameters, buffers, param_tensors, buffer_tensors


def _optimizer_state(spec: ExperimentSpec, parameters: int, param_tensors: int) -> tuple[int, int]:
    """(values, tensors) the optimizer keeps, as PyTorch's optimizers store them."""
    copies, scalars = 0, 0  # full-size copies per parameter; scalar tensors per parameter tensor
    if spec.optimizer == "sgd":
        copies = 1 if spec.momentum else 0
    elif spec.optimizer in ("adam", "adamw"):
        copies, scalars = 2, 1  # first and second moments, and the step count
    elif spec.optimizer == "rmsprop":
        copies, scalars = (2 if spec.momentum else 1), 1
    return copies * parameters + scalars * param_tensors, (copies + scalars) * param_tensors


def estimate(spec: ExperimentSpec) -> SpecCost:
    """Every figure of one run of `spec`, from the spec alone."""
    layers = spec.layers()
    hidden = [layer for layer in layers if not layer.is_output]
    parameters, buffers, param_tensors, buffer_tensors = _tensors(spec)
    state, state_tensors = _optimizer_state(spec, parameters, param_tensors)
    tensors = param_tensors + buffer_tensors + state_tensors
    # The batch count is a 64-bit integer: one more value's bytes for each.
    buffer_bytes = FLOAT_BYTES * buffers + (FLOAT_BYTES if buffers else 0) * len(hidden)
    checkpoint = (
        CHECKPOINT_BASE_BYTES
        + FLOAT_BYTES * (parameters + state)
        + buffer_bytes
        + CHECKPOINT_BYTES_PER_TENSOR * tensors
    )
    widths = sum(layer.fan_out for layer in layers)
    training = _ACTIVATION_VALUES_PER_UNIT * widths * spec.batch_size * FLOAT_BYTES
    widest = max((layer.fan_out for layer in hidden), default=0)  # a cnn may have none
    evaluating = 2 * widest * min(_EVAL_CHUNK, spec.test_records) * FLOAT_BYTES
    resident = FLOAT_BYTES * (2 * parameters + state) + buffer_bytes + DATASET_BYTES
    memory = resident + max(training, evaluating, _CHECKPOINT_COPIES * checkpoint)

    steps = spec.total_steps
    per_step = parameters * (
        1 + (spec.batch_size - 1) * SAMPLE_SHARE
    ) + STEP_OVERHEAD_PER_LAYER * len(layers)
    evaluation = spec.test_records * parameters * SAMPLE_SHARE
    work = steps * per_step + evaluation
    return SpecCost(
        parameters=parameters,
        buffers=buffers,
        optimizer_state=state,
        checkpoint_bytes=checkpoint,
        memory_bytes=memory,
        steps=steps,
        samples=spec.epochs * spec.train_records,
        loss_points=spec.loss_points,
        step_parameters=work,
        cpu_seconds=work / STEP_PARAMETERS_PER_CPU_SECOND,
    )
