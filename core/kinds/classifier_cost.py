"""What a classifier's spec costs to run and to keep, from the spec alone (no torch): the
classifier kind's cost function (core/kinds/classifier.py), which core.cost checks against
the bounds.

For one spec: the model's parameters, the optimizer's state, the checkpoint's size, the peak
memory the run adds to its worker, its optimizer steps, the records it trains on, the loss
points it records, its work in *step-parameters* and the CPU time it takes.

A step-parameter is one parameter taken through one training step at batch size 1 (forward,
backward and the optimizer's update): the book's recipe, 180,000 steps of a 159,010-parameter
network, is 2.86e10 of them. A bigger batch costs more per step, but far less than one step per
record (a batch is one matrix product, not many): each record past the first adds
SAMPLE_SHARE of a step-parameter per parameter. Every step also pays a fixed overhead per
layer that does not depend on its size (STEP_OVERHEAD_PER_LAYER).

The CPU time is not proportional to that work: a step of a small network is bound by
per-step and per-layer overheads, plain SGD updates a sparse first layer, each optimizer
touches its parameters at its own rate, and a model bigger than the cache runs at memory
speed. So a step's CPU seconds are the sum of what it does (`step_features`: layers,
normalizations, tensors, values updated, matrix work per record, values past the cache), each
times its cost (STEP_SECONDS), fitted to the engine's measured steps on one thread by
bench/cost_calibration.py: within 1.5x of each of its 54 specs.

`estimate(spec)` is the one function; callers use core.cost.estimate, which finds the spec's
kind first.
"""

from __future__ import annotations

import math

from core.kinds.base import SpecCost
from core.model_spec import INPUT_FEATURES, NUM_CLASSES
from core.spec import TEST_RECORDS, TRAIN_RECORDS, ExperimentSpec

FLOAT_BYTES = 4  # weights, gradients, optimizer state and checkpoints are float32

# Work in step-parameters (the figure SpecCost.step_parameters reports; time is below): what
# one more record in a batch adds per parameter, relative to a batch-1 step, and a fixed
# overhead per layer and step, as step-parameters.
SAMPLE_SHARE = 0.05
STEP_OVERHEAD_PER_LAYER = 10_000

# CPU time of one training step: the sum of the spec's step_features, each times its cost in
# seconds. Fitted by bench/cost_calibration.py --fit (`make bench-cost`) to the engine's CPU
# time per step at one thread for 54 specs (depth 1..8, widths 1..4096, batch 1..512, every
# activation, normalization, optimizer), measured three times on the project's reference
# machine (2-core Intel Xeon, 4 MiB of L2 a core, torch 2.14.1, shared: load average 4.5 to
# 7.8), 2026-12-07: worst 1.47x either way; a fourth run, not fitted on: worst 1.44x.
STEP_SECONDS: dict[str, float] = {
    "beyond_cache_sparse": 8.05e-10,
    "beyond_memory": 3.86e-10,
    "gelu_layer": 2.04e-05,
    "gelu_unit_records": 5.18e-09,
    "layer": 1.04e-05,
    "matmul": 1.82e-11,
    "norm_layer": 1.93e-05,
    "norm_unit_records": 1.11e-09,
    "record": 8.85e-07,
    "sparse_entry": 9.95e-09,
    "sparse_matmul": 1.76e-10,
    "step": 1e-06,
    "tensor_adam": 3.35e-06,
    "tensor_torch_rmsprop": 2.12e-05,
    "tensor_torch_sgd": 8.54e-06,
    "unit_records": 3.26e-09,
    "update_adam": 1.18e-09,
    "update_sgd": 4.91e-10,
    "update_torch_rmsprop": 3.24e-09,
    "update_torch_sgd": 1.41e-09,
}
# Two sizes of model and optimizer state, in float32 values, that the fit chose among a few:
# past CACHE_VALUES the sparse first layer's scattered rows start to miss the cache; past
# FAR_VALUES the share of what a step streams (forward, backward, update) beyond it comes from
# memory (the bench's 54 M-parameter network at plain SGD runs at a third of the per-value
# speed of a 3 M one).
CACHE_VALUES = 1_000_000
FAR_VALUES = 8_000_000
# The share of MNIST's pixels that are not 0 in at least one record of a batch of B (0.19 at
# B=1, 0.46 at 8, 0.74 at 512): the rows of the sparse first layer that plain SGD touches.
_NONZERO_SHARE, _NONZERO_GROWTH, _NONZERO_MOST = 0.19, 0.09, 0.75
# A forward pass over a test record, as a share of a training record's matrix work.
_FORWARD_SHARE = 1 / 3

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


def update_mode(spec: ExperimentSpec) -> str:
    """How the engine updates (worker/engine/update.py): plain SGD by hand with a sparse first
    layer, Adam and AdamW through PyTorch's fused kernel, any other through its own step()."""
    if spec.optimizer == "sgd" and not spec.momentum and not spec.weight_decay:
        return "sgd"
    return "adam" if spec.optimizer in ("adam", "adamw") else f"torch_{spec.optimizer}"


def step_features(spec: ExperimentSpec) -> dict[str, float]:
    """What one training step does, in the units STEP_SECONDS prices: the step itself, its
    records and layers; the normalized and GELU layers and their units; the parameter tensors
    and values the optimizer updates (its own kind: `update_mode`); weights times records
    (dense matrix products), non-zero pixels and their products with the first layer (the
    sparse first layer); and the values streamed past each cache size."""
    layers, batch, mode = spec.layers(), spec.batch_size, update_mode(spec)
    parameters, _, param_tensors, _ = _tensors(spec)
    state, _ = _optimizer_state(spec, parameters, param_tensors)
    hidden = [layer for layer in layers if not layer.is_output]
    normalized = [layer for layer in hidden if layer.normalization != "none"]
    gelu = spec.model.activation == "gelu"
    # Under plain SGD the first layer reads and updates only the batch's non-zero pixels.
    sparse = layers[0].fan_in * layers[0].fan_out if mode == "sgd" else 0
    touched = min(_NONZERO_MOST, _NONZERO_SHARE + _NONZERO_GROWTH * math.log2(batch))
    missed = max(0.0, 1 - CACHE_VALUES / (parameters + state))
    far = max(0.0, 1 - FAR_VALUES / (parameters + state))
    entries = INPUT_FEATURES * _NONZERO_SHARE * batch if sparse else 0.0
    return {
        "step": 1.0,
        "record": float(batch),
        "layer": float(len(layers)),
        "norm_layer": float(len(normalized)),
        "gelu_layer": float(len(hidden) if gelu else 0),
        "gelu_unit_records": float(sum(x.fan_out for x in hidden) * batch if gelu else 0),
        f"tensor_{mode}": float(param_tensors),
        f"update_{mode}": float(parameters - sparse),
        "update_sparse": sparse * touched,
        "matmul": float(sum(x.fan_in * x.fan_out for x in layers) - sparse) * batch,
        "sparse_entry": entries,
        "sparse_matmul": entries * layers[0].fan_out if sparse else 0.0,
        "unit_records": float(sum(x.fan_out for x in layers) * batch),
        "norm_unit_records": float(sum(x.fan_out for x in normalized) * batch),
        # What the step streams, times the share of the model and state the cache can't hold;
        # the sparse rows apart (read and written out of order, they miss more).
        "beyond_cache": (parameters - sparse + state) * missed,
        "beyond_cache_sparse": sparse * touched * missed,
        "beyond_memory": (parameters - sparse + state) * far,
    }


def step_seconds(spec: ExperimentSpec) -> float:
    """CPU seconds of one training step of `spec` on one thread."""
    return sum(STEP_SECONDS.get(name, 0.0) * value for name, value in step_features(spec).items())


def evaluation_seconds(spec: ExperimentSpec) -> float:
    """CPU seconds of the forward pass over the test records at the end of a run."""
    weights = sum(layer.fan_in * layer.fan_out for layer in spec.layers())
    return STEP_SECONDS.get("matmul", 0.0) * weights * spec.test_records * _FORWARD_SHARE


# The weights file (worker/artifacts.py): safetensors' 8-byte length, a JSON header naming each
# tensor (about a hundred bytes each) and the metadata, whose largest part is the spec's
# canonical JSON (bounded by the spec's own bounds: a few kB); then the tensors themselves.
MODEL_FILE_BASE_BYTES = 16 * 1024
MODEL_FILE_BYTES_PER_TENSOR = 160
# The packed series (core/store/series.py): an int32 step and a float32 value per point.
SERIES_BYTES_PER_POINT = 8
# Per test record (core/store/artifacts.py): NUM_CLASSES float32 outputs, a uint8 label and a
# uint8 predicted class.
OUTPUT_BYTES_PER_RECORD = NUM_CLASSES * FLOAT_BYTES + 2


def stored_bytes(spec: ExperimentSpec) -> dict[str, int]:
    """What a finished run keeps besides its checkpoint (core.kinds.SpecCost's byte fields):
    its final weights file, packed loss series and per-record outputs."""
    parameters, buffers, param_tensors, buffer_tensors = _tensors(spec)
    counts = buffer_tensors // 3  # each batch-norm layer's count is an int64, not a float32
    model = (
        MODEL_FILE_BASE_BYTES
        + FLOAT_BYTES * (parameters + buffers + counts)
        + MODEL_FILE_BYTES_PER_TENSOR * (param_tensors + buffer_tensors)
    )
    return {
        "model_bytes": model,
        "series_bytes": SERIES_BYTES_PER_POINT * spec.loss_points,
        "outputs_bytes": OUTPUT_BYTES_PER_RECORD * spec.test_records,
    }


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
        cpu_seconds=steps * step_seconds(spec) + evaluation_seconds(spec),
        **stored_bytes(spec),
    )
