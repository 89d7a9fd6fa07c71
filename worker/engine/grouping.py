"""Which runs of a run_training_group call train together.

Runs fuse when they share their structure (core.spec.group_key), their device and the step
they start from (all afresh, or checkpoints at the same step); the others form groups of
their own, trained one after another. On the CPU a group is split further: a fused step
touches every run's parameters (for Adam also their gradients and two moment estimates) every
step, and once that exceeds the cache, each step waits on memory, where runs one after another
would each keep theirs warm (issue 12's bench: 8 or 16 Adam runs fused ran at 0.7-0.8x of the
same runs in turn, 4 at 1.1x). On CUDA a group is never split: there the launches dominate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from core.spec import ExperimentSpec, group_key

# Bytes a fused step may touch per step on the CPU (the book's Adam run: about 2.5 MB).
CPU_FUSED_BYTES = 12 * 2**20


def parameter_count(spec: ExperimentSpec) -> int:
    count = 0
    for layer in spec.layers():
        norm = 2 if layer.normalization != "none" else 0  # scale and shift per unit
        count += layer.fan_in * layer.fan_out + layer.fan_out + norm * layer.fan_out
    return count


def cpu_group_size(spec: ExperimentSpec) -> int:
    """The most runs of `spec`'s structure a fused step takes on the CPU."""
    plain_sgd = spec.optimizer == "sgd" and not spec.momentum and not spec.weight_decay
    if plain_sgd:
        tensors = 1  # the weights (the gradient is added as it is made)
    elif spec.optimizer in ("adam", "adamw"):
        tensors = 4  # weights, gradient, two moment estimates
    else:
        tensors = 3  # weights, gradient, the optimizer's buffer
    return max(1, CPU_FUSED_BYTES // (4 * tensors * parameter_count(spec)))


def partition(
    specs: Sequence[ExperimentSpec],
    start_steps: Sequence[int],
    devices: Sequence[torch.device],
    *,
    fused: bool,
    max_runs: int | None = None,
) -> list[list[int]]:
    """Indices of the runs, in groups trained together (in order of first appearance), of at
    most `max_runs` runs (None: no limit on CUDA, what the cache holds on the CPU)."""
    groups: dict[tuple[str, int, str], list[int]] = {}
    for i, (spec, start, device) in enumerate(zip(specs, start_steps, devices, strict=True)):
        # A cnn trains alone (autograd step): only the mlp's hand-written step stacks runs.
        alone = not fused or spec.model.type == "cnn"
        key = (str(i), 0, "") if alone else (group_key(spec), start, str(device))
        groups.setdefault(key, []).append(i)
    out: list[list[int]] = []
    for (_, _, where), members in groups.items():
        if max_runs is not None:
            size = max(1, max_runs)
        else:
            size = cpu_group_size(specs[members[0]]) if where == "cpu" else len(members)
        out += [members[k : k + size] for k in range(0, len(members), size)]
    return out
