"""The hidden activation, forward into a gapped buffer and backward through ATen's kernels.

The forward output goes into the workspace's gapped buffer (see stacked.py), so a kernel that
rounds differently in its vector body and its scalar tail treats each run as alone. Of the
backward kernels, those that read the activation's output see that gap too. gelu's kernels
take another path on contiguous tensors than on strided ones, so gelu runs once per run, on
each run's contiguous slice, as it does alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from core.spec import ExperimentSpec

if TYPE_CHECKING:
    from worker.engine.workspace import Workspace

aten = torch.ops.aten
Tensor = torch.Tensor
NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu")


class Activation:
    def __init__(self, spec: ExperimentSpec) -> None:
        name = spec.model.activation
        if name not in NAMES:
            raise ValueError(f"unknown activation {name!r}")
        self.name, self.slope = name, spec.model.negative_slope
        self.per_run = name == "gelu"

    def forward(self, z: Tensor, ws: Workspace, i: int) -> Tensor:
        out = ws.act_out[i]
        name = self.name
        ws.pre_act[i] = z
        if self.per_run:
            for z_r, out_r in zip(z.unbind(0), ws.act_out_runs[i], strict=True):
                aten.gelu.out(z_r, out=out_r)
            return out
        if name == "sigmoid":
            return torch.sigmoid(z, out=out)
        if name == "tanh":
            return torch.tanh(z, out=out)
        if name == "relu":
            result: Tensor = aten.relu.out(z, out=out)
        elif name == "leaky_relu":
            result = aten.leaky_relu.out(z, self.slope, out=out)
        else:
            raise AssertionError(name)
        return result

    def backward(self, g: Tensor, ws: Workspace, i: int) -> Tensor:
        """Gradient w.r.t. the pre-activation, into the workspace's (contiguous) buffer."""
        out, a, z, name = ws.act_grad[i], ws.act_out[i], ws.pre_act[i], self.name
        result: Tensor
        if name == "sigmoid":
            result = aten.sigmoid_backward.grad_input(g, a, grad_input=out)
        elif name == "tanh":
            result = aten.tanh_backward.grad_input(g, a, grad_input=out)
        elif name == "relu":
            result = aten.threshold_backward.grad_input(g, a, 0, grad_input=out)
        elif name == "leaky_relu":
            result = aten.leaky_relu_backward.grad_input(g, z, self.slope, False, grad_input=out)
        else:
            for g_r, z_r, out_r in zip(g.unbind(0), z.unbind(0), out.unbind(0), strict=True):
                aten.gelu_backward.grad_input(g_r, z_r, grad_input=out_r)
            result = out
        return result
