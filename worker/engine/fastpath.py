"""The training step written out by hand: forward, backward and update without autograd.

At the book's batch size of 1 a step is a few small matrix-vector products, and recording
an autograd graph, walking it back and running a generic optimizer costs several times the
arithmetic itself. This step computes exactly what autograd would, by calling the same ATen
backward kernels autograd calls (sigmoid_backward, native_layer_norm_backward, ...), and then
updates the parameters in place:

- plain SGD (no momentum, no weight decay) folds the gradient into the update: W -= lr * g^T h
  is one addmm_ over W instead of writing a gradient and reading it back;
- Adam and AdamW call PyTorch's fused kernel directly on the optimizer's own state tensors (what
  `torch.optim.Adam(fused=True).step()` does, minus its per-call Python bookkeeping), so the
  optimizer's state_dict, and with it every checkpoint, stays PyTorch's own;
- any other optimizer gets the gradients in `.grad` and its ordinary `step()`.

It works on the modules built by `worker.engine.model.build_model`, in place, so evaluation,
checkpoints and the autograd path (kept for tests that check this one) see the same weights.
Tests compare it against autograd for every knob.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from core.spec import ExperimentSpec
from worker.engine.model import BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, LAYER_NORM_EPS

aten = torch.ops.aten
_MEAN = 1  # ATen's code for reduction="mean"
_IGNORE_INDEX = -100  # nn.CrossEntropyLoss's default

Tensor = torch.Tensor
# (upstream gradient, pre-activation z, activation output a) -> gradient w.r.t. z
_Backward = Callable[[Tensor, Tensor, Tensor], Tensor]


def _activation(spec: ExperimentSpec) -> tuple[Callable[[Tensor], Tensor], _Backward]:
    name, slope = spec.model.activation, spec.model.negative_slope
    if name == "sigmoid":
        return torch.sigmoid, lambda g, z, a: aten.sigmoid_backward.default(g, a)
    if name == "tanh":
        return torch.tanh, lambda g, z, a: aten.tanh_backward.default(g, a)
    if name == "relu":
        return torch.relu, lambda g, z, a: aten.threshold_backward.default(g, a, 0)
    if name == "leaky_relu":
        return (
            lambda z: aten.leaky_relu.default(z, slope),
            lambda g, z, a: aten.leaky_relu_backward.default(g, z, slope, False),
        )
    if name == "gelu":
        return aten.gelu.default, lambda g, z, a: aten.gelu_backward.default(g, z)
    raise ValueError(f"unknown activation {name!r}")


@dataclass
class _Layer:
    norm: nn.LayerNorm | nn.BatchNorm1d | None
    norm_weight: Tensor | None
    norm_bias: Tensor | None
    weight: Tensor  # detached views of the module's parameters: updated in place
    bias: Tensor
    weight_t: Tensor
    bias_row: Tensor
    grad_weight: Tensor
    grad_bias: Tensor
    index: int  # position of this layer's weight in model.parameters()


class FastStep:
    """One optimizer step on one batch: `step(x, target, loss_slot)`; writes the batch's loss
    (before the update) into `loss_slot` when one is given."""

    def __init__(
        self, model: nn.Sequential, spec: ExperimentSpec, optimizer: torch.optim.Optimizer
    ) -> None:
        self.spec = spec
        self.optimizer = optimizer
        self.params = [p for p in model.parameters()]
        linears = [m for m in model if isinstance(m, nn.Linear)]
        norms = [m for m in model if isinstance(m, nn.LayerNorm | nn.BatchNorm1d)]
        self.layers: list[_Layer] = []
        index = 0
        for i, linear in enumerate(linears):
            norm = norms[i] if i < len(norms) else None
            self.layers.append(self._layer(linear, norm, index))
            index += 2 + (0 if norm is None else 2)
        self.hidden, self.output = self.layers[:-1], self.layers[-1]
        self.act_forward, self.act_backward = _activation(spec)
        self.grads: list[Tensor | None] = [None] * len(self.params)
        self.one = torch.ones((), device=self.params[0].device)
        self.lr = spec.effective_lr
        self.mode = self._update_mode()
        if self.mode in ("adam", "adamw"):
            self._adam_state()

    @staticmethod
    def _layer(linear: nn.Linear, norm: nn.LayerNorm | nn.BatchNorm1d | None, index: int) -> _Layer:
        weight, bias = linear.weight.detach(), linear.bias.detach()
        return _Layer(
            norm=norm,
            norm_weight=None if norm is None else norm.weight.detach(),
            norm_bias=None if norm is None else norm.bias.detach(),
            weight=weight,
            bias=bias,
            weight_t=weight.t(),
            bias_row=bias.unsqueeze(0),
            grad_weight=torch.empty_like(weight),
            grad_bias=torch.empty_like(bias),
            index=index,
        )

    def _update_mode(self) -> str:
        opt = self.optimizer
        group = opt.param_groups[0]
        if isinstance(opt, torch.optim.SGD) and not group["momentum"] and not group["weight_decay"]:
            return "sgd"
        if isinstance(opt, torch.optim.Adam) and group.get("fused") and not group["amsgrad"]:
            return "adamw" if group.get("decoupled_weight_decay") else "adam"
        return "optimizer"

    def _adam_state(self) -> None:
        # The same lazy initialisation torch.optim.Adam does for fused=True, so a state_dict
        # taken before the first step, or loaded from a checkpoint, has one layout.
        group = self.optimizer.param_groups[0]
        for p in self.params:
            state = self.optimizer.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        states = [self.optimizer.state[p] for p in self.params]
        self.exp_avgs = [s["exp_avg"] for s in states]
        self.exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        self.steps = [s["step"] for s in states]
        self.beta1, self.beta2 = (float(b) for b in group["betas"])
        self.eps = float(group["eps"])
        self.weight_decay = float(group["weight_decay"])
        self.fused = torch._fused_adamw_ if self.mode == "adamw" else torch._fused_adam_
        self.data = [p.detach() for p in self.params]

    def step(self, x: Tensor, target: Tensor, loss_slot: Tensor | None) -> None:
        # No grad-mode switch per step: every tensor here is detached, so autograd records
        # nothing anyway.
        saved: list[tuple[Tensor, Tensor, Tensor, tuple[Tensor, ...]]] = []
        h = x
        for layer in self.hidden:
            z = torch.addmm(layer.bias, h, layer.weight_t)
            a = self.act_forward(z)
            out, norm_saved = self._norm_forward(layer, a)
            saved.append((h, z, a, norm_saved))
            h = out
        logits = torch.addmm(self.output.bias, h, self.output.weight_t)
        g = self._loss_grad(logits, target, loss_slot)

        # Backward, last layer first. Each layer's input gradient is taken before its own
        # update, so every gradient is that of the weights the forward pass used.
        g_in = torch.mm(g, self.output.weight) if self.hidden else g
        self._update_linear(self.output, g, h)
        for i in range(len(self.hidden) - 1, -1, -1):
            layer = self.hidden[i]
            h_in, z, a, norm_saved = saved[i]
            g_act = self._norm_backward(layer, a, g_in, norm_saved)
            g_z = self.act_backward(g_act, z, a)
            if i:
                g_in = torch.mm(g_z, layer.weight)
            self._update_linear(layer, g_z, h_in)
        self._finish_update()

    def _loss_grad(self, logits: Tensor, target: Tensor, loss_slot: Tensor | None) -> Tensor:
        """Gradient of the mean loss w.r.t. the logits; the loss value only when it is logged."""
        loss, output = self.spec.loss, self.spec.model.output
        if loss == "cross_entropy":
            lsm = torch._log_softmax(logits, 1, False)
            value, total = aten.nll_loss_forward.default(lsm, target, None, _MEAN, _IGNORE_INDEX)
            if loss_slot is not None:
                loss_slot.copy_(value)
            g_lsm = aten.nll_loss_backward.default(
                self.one, lsm, target, None, _MEAN, _IGNORE_INDEX, total
            )
            return torch._log_softmax_backward_data(g_lsm, lsm, 1, torch.float32)
        if output == "sigmoid":
            o = torch.sigmoid(logits)
        elif output == "softmax":
            o = torch._softmax(logits, 1, False)
        else:
            o = logits
        if loss == "mse":
            if loss_slot is not None:
                loss_slot.copy_(aten.mse_loss.default(o, target, _MEAN))
            g: Tensor = aten.mse_loss_backward.default(self.one, o, target, _MEAN)
        else:
            if loss_slot is not None:
                loss_slot.copy_(aten.binary_cross_entropy.default(o, target, None, _MEAN))
            g = aten.binary_cross_entropy_backward.default(self.one, o, target, None, _MEAN)
        if output == "sigmoid":
            g = aten.sigmoid_backward.default(g, o)
        elif output == "softmax":
            g = torch._softmax_backward_data(g, o, 1, torch.float32)
        return g

    @staticmethod
    def _norm_forward(layer: _Layer, a: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        norm, w, b = layer.norm, layer.norm_weight, layer.norm_bias
        if norm is None:
            return a, ()
        if isinstance(norm, nn.LayerNorm):
            out, mean, rstd = torch.native_layer_norm(a, [a.shape[1]], w, b, LAYER_NORM_EPS)
            return out, (mean, rstd)
        assert isinstance(norm, nn.BatchNorm1d)
        # Training-mode batch norm, running statistics updated in place as the module does.
        rm, rv = norm.running_mean, norm.running_var
        out, mean, invstd = torch.native_batch_norm(
            a, w, b, rm, rv, True, BATCH_NORM_MOMENTUM, BATCH_NORM_EPS
        )
        if norm.num_batches_tracked is not None:
            norm.num_batches_tracked.add_(1)
        return out, (mean, invstd)

    def _norm_backward(
        self, layer: _Layer, a: Tensor, g: Tensor, saved: tuple[Tensor, ...]
    ) -> Tensor:
        norm, w, b = layer.norm, layer.norm_weight, layer.norm_bias
        if norm is None or w is None or b is None:
            return g
        mask = [True, True, True]
        if isinstance(norm, nn.LayerNorm):
            mean, rstd = saved
            g_a, g_w, g_b = aten.native_layer_norm_backward.default(
                g, a, [a.shape[1]], mean, rstd, w, b, mask
            )
        else:
            mean, invstd = saved
            g_a, g_w, g_b = aten.native_batch_norm_backward.default(
                g, a, w, norm.running_mean, norm.running_var, mean, invstd, True,
                BATCH_NORM_EPS, mask,
            )  # fmt: skip
        if self.mode == "sgd":
            w.add_(g_w, alpha=-self.lr)
            b.add_(g_b, alpha=-self.lr)
        else:
            self.grads[layer.index + 2] = g_w
            self.grads[layer.index + 3] = g_b
        grad_input: Tensor = g_a
        return grad_input

    def _update_linear(self, layer: _Layer, g: Tensor, h: Tensor) -> None:
        if self.mode == "sgd":
            layer.weight.addmm_(g.t(), h, alpha=-self.lr)
            if g.shape[0] == 1:
                layer.bias_row.add_(g, alpha=-self.lr)
            else:
                layer.bias.add_(g.sum(0), alpha=-self.lr)
            return
        torch.mm(g.t(), h, out=layer.grad_weight)
        torch.sum(g, 0, out=layer.grad_bias)
        self.grads[layer.index] = layer.grad_weight
        self.grads[layer.index + 1] = layer.grad_bias

    def _finish_update(self) -> None:
        if self.mode == "sgd":
            return
        grads = cast(list[Tensor], self.grads)  # every slot is filled by the backward pass
        if self.mode in ("adam", "adamw"):
            torch._foreach_add_(self.steps, 1)
            self.fused(
                self.data, grads, self.exp_avgs, self.exp_avg_sqs, [], self.steps,
                lr=self.lr, beta1=self.beta1, beta2=self.beta2, weight_decay=self.weight_decay,
                eps=self.eps, amsgrad=False, maximize=False,
            )  # fmt: skip
            return
        for p, grad in zip(self.params, grads, strict=True):
            p.grad = grad
        self.optimizer.step()
