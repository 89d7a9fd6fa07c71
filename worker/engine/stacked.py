"""Parameters of R runs stacked along a leading run axis, and the buffers a fused step writes.

The runs of a fused group share their structure, so the l-th Linear of every run becomes one
weight [R, out, in] and one bias [R, out], and each run's own module parameters are rebound to
its slice. Evaluation, checkpoints and the runs' own optimizers therefore read and write the
very weights the fused step updates, with nothing to copy back (the sparse first layer's
working copy aside, see sparse.py). The same goes for the normalization's affine parameters.

Bit for bit, a run trained fused must match the run trained alone. Matrix products run per run
(a bmm is a loop of the same GEMM), but an elementwise kernel that is handed R runs laid end to
end runs over them as one array: its vectorized body and its scalar tail (which may round
transcendental functions differently) then fall on other elements than they would alone. So
activations are written into *gapped* buffers, where each run's values are contiguous but the
runs are not adjacent; the kernel then loops over the runs and treats each exactly as alone.
And MKL's GEMMs take other paths (and round otherwise) for operands that are not 64-byte
aligned, so every run's slice of every stacked tensor and buffer starts 64-byte aligned, as a
fresh tensor of a run alone does.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

Tensor = torch.Tensor
_ALIGN = 16  # floats: each run's slice of a gapped buffer starts 64-byte aligned


def per_run(runs: int, shape: tuple[int, ...], device: torch.device, *, gap: bool = True) -> Tensor:
    """An uninitialised [runs, *shape] float32 tensor: each run's values contiguous and 64-byte
    aligned, with (`gap`) at least one element between runs."""
    size = prod(shape)
    stride = (size // _ALIGN + 1) * _ALIGN if gap else -(-size // _ALIGN) * _ALIGN
    buffer = torch.empty(max(runs * stride, 1), dtype=torch.float32, device=device)
    inner = [prod(shape[i + 1 :]) for i in range(len(shape))]  # contiguous within a run
    # Explicit strides: a view would drop the run stride where there is a single run.
    return buffer.as_strided((runs, *shape), (stride, *inner))


def gapped(runs: int, shape: tuple[int, ...], device: torch.device) -> Tensor:
    return per_run(runs, shape, device, gap=True)


def stack(tensors: Sequence[Tensor]) -> Tensor:
    """torch.stack, each run's slice 64-byte aligned."""
    out = per_run(len(tensors), tuple(tensors[0].shape), tensors[0].device, gap=False)
    for r, tensor in enumerate(tensors):
        out[r].copy_(tensor)
    return out


def with_one(activation: Tensor) -> Tensor:
    """[R, 1, W] gapped -> [R, 1, W + 1]: each run's values and a 1 written into its gap (the
    input that multiplies a folded bias)."""
    runs, batch, width = activation.shape
    assert batch == 1 and activation.stride(0) > width
    extended = activation.as_strided((runs, 1, width + 1), (activation.stride(0), width + 1, 1))
    extended[:, :, width] = 1.0
    return extended


class StackedLinear:
    """The same Linear of R runs: weight [R, out, in], bias [R, out]."""

    def __init__(self, linears: Sequence[nn.Linear]) -> None:
        self.weight = stack([m.weight.detach() for m in linears])
        self.bias = stack([m.bias.detach() for m in linears])
        for r, module in enumerate(linears):
            module.weight.data = self.weight[r]
            module.bias.data = self.bias[r]
        _, width_out, width_in = self.weight.shape
        self.width_out, self.width_in = width_out, width_in
        self.weight_t = self.weight.transpose(1, 2)  # [R, in, out], as F.linear reads it
        self.bias3 = self.bias.unsqueeze(1)  # [R, 1, out]


class StackedNorm:
    """The same LayerNorm or BatchNorm1d of R runs: affine weight and bias [R, width]; the
    running statistics of batch norm stay each run's own buffers."""

    def __init__(self, norms: Sequence[nn.LayerNorm | nn.BatchNorm1d]) -> None:
        self.modules = list(norms)
        self.layer_norm = isinstance(norms[0], nn.LayerNorm)
        self.weight = stack([m.weight.detach() for m in norms])
        self.bias = stack([m.bias.detach() for m in norms])
        for r, module in enumerate(norms):
            module.weight.data = self.weight[r]
            module.bias.data = self.bias[r]  # type: ignore[union-attr]
        self.run_weight, self.run_bias = list(self.weight.unbind(0)), list(self.bias.unbind(0))
        self.running: list[tuple[Tensor | None, Tensor | None]] = [
            (m.running_mean, m.running_var) if isinstance(m, nn.BatchNorm1d) else (None, None)
            for m in norms
        ]
        self.counters: list[Tensor] = [
            m.num_batches_tracked
            for m in norms
            if isinstance(m, nn.BatchNorm1d) and m.num_batches_tracked is not None
        ]


class FoldedLinear:
    """A stacked Linear with its bias folded in as a last input column: weight [R, out, in + 1]
    against inputs that end in a 1. Plain SGD at a batch of one then adds the bias's update
    with the weight's, in the same call, and reads no separate bias in the forward pass. A
    working copy: `sync` writes it back into the stacked tensors (and so the modules)."""

    def __init__(self, linear: StackedLinear) -> None:
        self.linear = linear
        runs, width_out, width_in = linear.weight.shape
        self.weight = per_run(runs, (width_out, width_in + 1), linear.weight.device, gap=False)
        self.weight[:, :, :width_in].copy_(linear.weight)
        self.weight[:, :, width_in].copy_(linear.bias)
        self.weight_t = self.weight.transpose(1, 2)
        self.weight_in = self.weight[:, :, :width_in]  # for the input's gradient

    def sync(self) -> None:
        width_in = self.linear.width_in
        self.linear.weight.copy_(self.weight[:, :, :width_in])
        self.linear.bias.copy_(self.weight[:, :, width_in])
