"""What a cnn's convolutions add to a classifier's cost (core/kinds/classifier_cost.py prices
the Linear layers of every spec, a cnn's included): their parameters, batch-norm buffers and
optimizer state, the memory of their activations, and their work, from the spec's conv walk
(core.spec ConvLayer) alone, no torch.

A cnn trains on the autograd step, one run at a time (worker/engine/group.py), whose cost per
step at the book's batch of one is mostly fixed: PyTorch's module calls, autograd's graph and
the optimizer's step (AUTOGRAD_STEP), plus a share per convolution (its three or four modules,
forward and backward: CONV_LAYER_STEP); then each convolution's multiply-adds per record
(CONV_MAC_WORK each). All of it in step-parameters, the unit the classifier's CPU rate turns
into seconds. Calibrated with bench/book_cnn.py (cnn-mnist: see the constants).
"""

from __future__ import annotations

import dataclasses

from core.kinds.base import SpecCost
from core.kinds.classifier_cost import CHECKPOINT_BYTES_PER_TENSOR, FLOAT_BYTES
from core.kinds.classifier_cost import estimate as linear_estimate
from core.spec import ExperimentSpec

# Measured with bench/book_cnn.py on the reference machine (2 cores, shared; one thread):
# cnn-mnist's autograd step took 1.5-1.7 ms on a quiet machine (3 epochs in 269 s; 590-670
# steps a second), 2.5 ms on a busy one and 4.3 ms under a load of 6-7; the Linear layer's
# own terms are ~12,500 step-parameters. These put cnn-mnist at ~2.6 ms a step (7.8e5
# step-parameters at 3e8 a second, 464 s for 3 epochs), on the long side, as the
# classifier's rate is.
AUTOGRAD_STEP = 400_000
# The rate these step-parameters were measured against (the convolutions' own; the Linear
# layers are priced by classifier_cost's calibrated step time).
STEP_PARAMETERS_PER_CPU_SECOND = 3e8
CONV_LAYER_STEP = 120_000
# Forward, input gradient and weight gradient of one multiply-add of a record, with the
# im2col copies a small convolution pays: about twice a step-parameter's work.
CONV_MAC_WORK = 2.0
# Values kept per record and output position between forward and backward (the convolution's
# output, the activation's, the normalization's and their gradients), and records per
# evaluation pass (worker/engine/evaluate.py).
_ACTIVATION_VALUES = 6
_EVAL_CHUNK = 2048


@dataclasses.dataclass(frozen=True)
class ConvTerms:
    parameters: int
    buffers: int
    param_tensors: int
    buffer_tensors: int
    macs: int  # multiply-adds of one record's forward pass through the convolutions
    positions: int  # output values of one record, over every convolution
    widest: int  # the most output values of one convolution, for one record


def conv_terms(spec: ExperimentSpec) -> ConvTerms:
    parameters = buffers = param_tensors = buffer_tensors = macs = positions = widest = 0
    for conv in spec.conv_layers():
        fan_in = conv.in_channels * conv.kernel * conv.kernel
        parameters += conv.out_channels * fan_in + conv.out_channels
        param_tensors += 2
        if conv.normalization == "batch_norm":
            parameters += 2 * conv.out_channels
            param_tensors += 2
            buffers += 2 * conv.out_channels + 1
            buffer_tensors += 3
        outputs = conv.out_channels * conv.conv_side * conv.conv_side
        macs += outputs * fan_in
        positions += outputs
        widest = max(widest, outputs)
    return ConvTerms(parameters, buffers, param_tensors, buffer_tensors, macs, positions, widest)


def _state_per_parameter(spec: ExperimentSpec) -> tuple[int, int]:
    """(full-size copies per parameter, scalars per parameter tensor) the optimizer keeps, as
    classifier_cost counts them."""
    if spec.optimizer == "sgd":
        return (1 if spec.momentum else 0), 0
    if spec.optimizer in ("adam", "adamw"):
        return 2, 1
    return (2 if spec.momentum else 1), 1  # rmsprop


def estimate(spec: ExperimentSpec) -> SpecCost:
    """The classifier's cost of `spec` with its convolutions' terms added (an mlp: unchanged)."""
    cost = linear_estimate(spec)
    if spec.model.type != "cnn":
        return cost
    terms = conv_terms(spec)
    copies, scalars = _state_per_parameter(spec)
    state = copies * terms.parameters + scalars * terms.param_tensors
    tensors = terms.param_tensors + terms.buffer_tensors + (copies + scalars) * terms.param_tensors
    buffer_bytes = FLOAT_BYTES * terms.buffers + FLOAT_BYTES * (terms.buffer_tensors // 3)
    checkpoint = (
        FLOAT_BYTES * (terms.parameters + state)
        + buffer_bytes
        + CHECKPOINT_BYTES_PER_TENSOR * tensors
    )
    resident = FLOAT_BYTES * (2 * terms.parameters + state) + buffer_bytes
    image = FLOAT_BYTES * (terms.positions + terms.widest)
    training = _ACTIVATION_VALUES * image * spec.batch_size
    evaluating = 2 * FLOAT_BYTES * terms.widest * min(_EVAL_CHUNK, spec.test_records)
    per_step = (
        AUTOGRAD_STEP
        + CONV_LAYER_STEP * len(spec.conv_layers())
        + terms.parameters
        + CONV_MAC_WORK * terms.macs * spec.batch_size
    )
    # Evaluation: every test record's forward pass through the convolutions.
    work = spec.total_steps * per_step + spec.test_records * terms.macs
    return dataclasses.replace(
        cost,
        parameters=cost.parameters + terms.parameters,
        buffers=cost.buffers + terms.buffers,
        optimizer_state=cost.optimizer_state + state,
        checkpoint_bytes=cost.checkpoint_bytes + checkpoint,
        memory_bytes=cost.memory_bytes + resident + max(training, evaluating),
        step_parameters=cost.step_parameters + work,
        cpu_seconds=cost.cpu_seconds + work / STEP_PARAMETERS_PER_CPU_SECOND,
    )
