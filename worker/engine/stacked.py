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
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

Tensor = torch.Tensor
_ALIGN = 16  # floats: each run's slice of a gapped buffer starts 64-byte aligned


def gapped(runs: int, shape: tuple[int, ...], device: torch.device) -> Tensor:
    """An uninitialised [runs, *shape] float32 tensor with a gap after each run's values."""
    size = prod(shape)
    stride = (size // _ALIGN + 1) * _ALIGN  # always at least one element of gap
    buffer = torch.empty(runs, stride, dtype=torch.float32, device=device)
    return buffer[:, :size].view(runs, *shape)


class StackedLinear:
    """The same Linear of R runs: weight [R, out, in], bias [R, out]."""

    def __init__(self, linears: Sequence[nn.Linear]) -> None:
        self.weight = torch.stack([m.weight.detach() for m in linears])
        self.bias = torch.stack([m.bias.detach() for m in linears])
        for r, module in enumerate(linears):
            module.weight.data = self.weight[r]
            module.bias.data = self.bias[r]
        runs, width_out, width_in = self.weight.shape
        self.width_out, self.width_in = width_out, width_in
        self.weight_t = self.weight.transpose(1, 2)  # [R, in, out], as F.linear reads it
        self.bias3 = self.bias.unsqueeze(1)  # [R, 1, out]
        # The first layer's input is shared by all runs: one GEMM over [R * out, in].
        self.flat_weight_t = self.weight.view(runs * width_out, width_in).t()
        self.flat_bias = self.bias.view(runs * width_out)


class StackedNorm:
    """The same LayerNorm or BatchNorm1d of R runs: affine weight and bias [R, width]; the
    running statistics of batch norm stay each run's own buffers."""

    def __init__(self, norms: Sequence[nn.LayerNorm | nn.BatchNorm1d]) -> None:
        self.modules = list(norms)
        self.layer_norm = isinstance(norms[0], nn.LayerNorm)
        self.weight = torch.stack([m.weight.detach() for m in norms])
        self.bias = torch.stack([m.bias.detach() for m in norms])
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
