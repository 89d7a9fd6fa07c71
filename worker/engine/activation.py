"""The hidden activation, forward into a gapped buffer and backward through ATen's kernels.

The forward output goes into the workspace's gapped buffer (see stacked.py), so a kernel that
rounds differently in its vector body and its scalar tail treats each run as alone. Of the
backward kernels, those that read the activation's output see that gap too. gelu's kernels
take another path on contiguous tensors than on strided ones, so gelu runs once per run, on
each run's contiguous slice, as it does alone.

`bind` returns the pair of closures one layer of one workspace calls: at a batch of one, a
Python-level tensor call costs about what its kernel does, so everything is bound once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from core.spec import ExperimentSpec

aten = torch.ops.aten
Tensor = torch.Tensor
NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu")
Forward = Callable[[Tensor], Tensor]  # pre-activation z -> activation (the gapped buffer)
Backward = Callable[[Tensor], Tensor]  # gradient w.r.t. the activation -> w.r.t. z

# The kernels' own entry points (skipping torch.ops' Python-level dispatch).
_SIGMOID_BACKWARD = aten.sigmoid_backward.grad_input._op
_TANH_BACKWARD = aten.tanh_backward.grad_input._op
_THRESHOLD_BACKWARD = aten.threshold_backward.grad_input._op
_LEAKY_RELU_BACKWARD = aten.leaky_relu_backward.grad_input._op
_GELU_BACKWARD = aten.gelu_backward.grad_input._op
_RELU = aten.relu.out._op
_LEAKY_RELU = torch._C._nn.leaky_relu
_GELU = torch._C._nn.gelu


class Activation:
    def __init__(self, spec: ExperimentSpec) -> None:
        name = spec.model.activation
        if name not in NAMES:
            raise ValueError(f"unknown activation {name!r}")
        self.name, self.slope = name, spec.model.negative_slope

    def bind(self, out: Tensor, grad: Tensor, flat_input: bool) -> tuple[Forward, Backward]:
        """Closures writing the activation into `out` [R, B, W] (gapped) and the gradient
        w.r.t. the pre-activation into `grad` [R, B, W]. With `flat_input`, z arrives as
        [1, W] (one run, one record) and is written through a 2-D view of `out`."""
        name, slope = self.name, self.slope
        target = out.view(1, -1) if flat_input else out
        pre: list[Tensor] = [out]  # the last forward's z, for the backward

        if name == "sigmoid":
            sigmoid = torch.sigmoid

            def forward(z: Tensor) -> Tensor:
                sigmoid(z, out=target)
                return out

            def backward(g: Tensor) -> Tensor:
                return _SIGMOID_BACKWARD(g, out, grad_input=grad)  # type: ignore[no-any-return]

        elif name == "tanh":
            tanh = torch.tanh

            def forward(z: Tensor) -> Tensor:
                tanh(z, out=target)
                return out

            def backward(g: Tensor) -> Tensor:
                return _TANH_BACKWARD(g, out, grad_input=grad)  # type: ignore[no-any-return]

        elif name == "relu":

            def forward(z: Tensor) -> Tensor:
                _RELU(z, out=target)
                return out

            def backward(g: Tensor) -> Tensor:
                return _THRESHOLD_BACKWARD(g, out, 0, grad_input=grad)  # type: ignore[no-any-return]

        elif name == "leaky_relu":

            def forward(z: Tensor) -> Tensor:
                pre[0] = z
                _LEAKY_RELU(z, slope, out=target)
                return out

            def backward(g: Tensor) -> Tensor:
                return _LEAKY_RELU_BACKWARD(g, pre[0], slope, False, grad_input=grad)  # type: ignore[no-any-return]

        else:  # gelu, per run (see the module's docstring)
            out_runs, grad_runs = out.unbind(0), grad.unbind(0)

            def forward(z: Tensor) -> Tensor:
                z = z.view(out.shape)
                pre[0] = z
                for z_r, out_r in zip(z.unbind(0), out_runs, strict=True):
                    _GELU(z_r, out=out_r)  # type: ignore[call-arg]
                return out

            def backward(g: Tensor) -> Tensor:
                for g_r, z_r, grad_r in zip(g.unbind(0), pre[0].unbind(0), grad_runs, strict=True):
                    _GELU_BACKWARD(g_r, z_r, grad_input=grad_r)
                return grad

        return forward, backward
