"""What a spec costs to run and to keep, from the spec alone (no torch): the bounds every
submission is checked against, and the figures GET /presets shows.

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

`estimate(spec)` is the one function; `CostLimits` (from the settings) and `violations` /
`ablation_violations` say which bound a spec or an ablation passes, and by how much. Per-user
quotas can reuse the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from core.settings import Settings
from core.spec import INPUT_FEATURES, NUM_CLASSES, TEST_RECORDS, TRAIN_RECORDS, ExperimentSpec

FLOAT_BYTES = 4  # weights, gradients, optimizer state and checkpoints are float32
_MIB = 1_048_576

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


@dataclass(frozen=True)
class SpecCost:
    parameters: int
    buffers: int  # batch-norm running statistics: state, but not trained
    optimizer_state: int  # values the optimizer keeps (momentum, Adam's moments)
    checkpoint_bytes: int
    memory_bytes: int
    steps: int
    samples: int  # records seen in training: epochs x train records
    loss_points: int
    step_parameters: float
    cpu_seconds: float

    @property
    def cpu_hours(self) -> float:
        return self.cpu_seconds / 3600

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_hours": self.cpu_hours}


@dataclass(frozen=True)
class CostLimits:
    checkpoint_bytes: int
    memory_bytes: int
    run_cpu_hours: float
    ablation_cpu_hours: float

    @classmethod
    def from_settings(cls, settings: Settings) -> CostLimits:
        return cls(
            checkpoint_bytes=settings.max_checkpoint_bytes,
            memory_bytes=settings.max_run_memory_bytes,
            run_cpu_hours=settings.max_run_cpu_hours,
            ablation_cpu_hours=settings.max_ablation_cpu_hours,
        )


def _layers(spec: ExperimentSpec) -> Iterable[tuple[int, int]]:
    """(fan-in, width) of each Linear layer, the output layer last."""
    width_in = INPUT_FEATURES
    for width in spec.model.hidden:
        yield width_in, width
        width_in = width
    yield width_in, NUM_CLASSES


def _tensors(spec: ExperimentSpec) -> tuple[int, int, int, int]:
    """(parameters, buffers, parameter tensors, buffer tensors) of the spec's network."""
    parameters = sum(fan_in * width + width for fan_in, width in _layers(spec))
    hidden = spec.model.hidden
    norm = spec.model.normalization
    param_tensors = 2 * (len(hidden) + 1)
    buffers = buffer_tensors = 0
    if norm in ("layer_norm", "batch_norm"):
        parameters += 2 * sum(hidden)  # scale and shift per unit
        param_tensors += 2 * len(hidden)
    if norm == "batch_norm":
        buffers = 2 * sum(hidden) + len(hidden)  # running mean and variance, a batch count
        buffer_tensors = 3 * len(hidden)
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
    parameters, buffers, param_tensors, buffer_tensors = _tensors(spec)
    state, state_tensors = _optimizer_state(spec, parameters, param_tensors)
    tensors = param_tensors + buffer_tensors + state_tensors
    # The batch count is a 64-bit integer: one more value's bytes for each.
    buffer_bytes = FLOAT_BYTES * buffers + (FLOAT_BYTES if buffers else 0) * len(spec.model.hidden)
    checkpoint = (
        CHECKPOINT_BASE_BYTES
        + FLOAT_BYTES * (parameters + state)
        + buffer_bytes
        + CHECKPOINT_BYTES_PER_TENSOR * tensors
    )
    widths = sum(spec.model.hidden) + NUM_CLASSES
    training = _ACTIVATION_VALUES_PER_UNIT * widths * spec.batch_size * FLOAT_BYTES
    evaluating = 2 * max(spec.model.hidden) * min(_EVAL_CHUNK, spec.test_records) * FLOAT_BYTES
    resident = FLOAT_BYTES * (2 * parameters + state) + buffer_bytes + DATASET_BYTES
    memory = resident + max(training, evaluating, _CHECKPOINT_COPIES * checkpoint)

    steps = spec.total_steps
    layers = len(spec.model.hidden) + 1
    per_step = (
        parameters * (1 + (spec.batch_size - 1) * SAMPLE_SHARE) + STEP_OVERHEAD_PER_LAYER * layers
    )
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


def _size(n: float) -> str:
    return f"{n / _MIB:,.1f} MiB" if n < 1024 * _MIB else f"{n / (1024 * _MIB):,.2f} GiB"


def violations(cost: SpecCost, limits: CostLimits) -> list[str]:
    """Each bound one run passes, with its figure, the bound, how far over, and what helps."""
    found = []
    if cost.checkpoint_bytes > limits.checkpoint_bytes:
        found.append(
            f"its checkpoint would be {_size(cost.checkpoint_bytes)} ({cost.parameters:,} "
            f"parameters and {cost.optimizer_state:,} optimizer values); the bound "
            f"(max_checkpoint_bytes) is {_size(limits.checkpoint_bytes)}, "
            f"{cost.checkpoint_bytes / limits.checkpoint_bytes:.1f}x over: use fewer or "
            "narrower hidden layers, or an optimizer that keeps less state (sgd)"
        )
    if cost.memory_bytes > limits.memory_bytes:
        found.append(
            f"it would need about {_size(cost.memory_bytes)} of memory; the bound "
            f"(max_run_memory_bytes) is {_size(limits.memory_bytes)}, "
            f"{cost.memory_bytes / limits.memory_bytes:.1f}x over: lower batch_size or use "
            "fewer or narrower hidden layers"
        )
    if cost.cpu_hours > limits.run_cpu_hours:
        found.append(
            f"it would take about {cost.cpu_hours:,.1f} CPU-hours ({cost.step_parameters:.3g} "
            f"step-parameters); the bound (max_run_cpu_hours) is {limits.run_cpu_hours:g}, "
            f"{cost.cpu_hours / limits.run_cpu_hours:.1f}x over: lower epochs or train_limit, "
            "or use a smaller network"
        )
    return found


@dataclass(frozen=True)
class AblationCost:
    runs: int
    step_parameters: float
    cpu_seconds: float
    checkpoint_bytes: int  # all the runs' checkpoints together

    @property
    def cpu_hours(self) -> float:
        return self.cpu_seconds / 3600

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_hours": self.cpu_hours}


def ablation_total(costs: Iterable[tuple[SpecCost, int]]) -> AblationCost:
    """The total of (cost of one run, how many runs of it) pairs: an arm and its seeds."""
    pairs = list(costs)
    return AblationCost(
        runs=sum(n for _, n in pairs),
        step_parameters=sum(c.step_parameters * n for c, n in pairs),
        cpu_seconds=sum(c.cpu_seconds * n for c, n in pairs),
        checkpoint_bytes=sum(c.checkpoint_bytes * n for c, n in pairs),
    )


def ablation_violations(total: AblationCost, limits: CostLimits) -> list[str]:
    if total.cpu_hours <= limits.ablation_cpu_hours:
        return []
    return [
        f"its {total.runs:,} runs would take about {total.cpu_hours:,.1f} CPU-hours together; "
        f"the bound (max_ablation_cpu_hours) is {limits.ablation_cpu_hours:g}, "
        f"{total.cpu_hours / limits.ablation_cpu_hours:.1f}x over: use fewer seeds or factor "
        "values, or shorter runs (epochs, train_limit)"
    ]
