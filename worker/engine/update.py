"""The parameter update of a fused step: plain SGD in place, fused Adam/AdamW on the runs' own
optimizer state, or each run's optimizer `step()` on gradients left in `.grad`.

Gradient buffers are stacked like the parameters ([R, ...], one per parameter kind), and each
run's optimizer sees views of its slice, so one bmm writes every run's gradient at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from worker.engine.stacked import StackedLinear, StackedNorm, per_run

Tensor = torch.Tensor


def outer_add(weight: Tensor, column: Tensor, row: Tensor) -> None:
    """weight [R, out, in] += column [R, out, 1] * row [R, 1, in]: a batch of one's update.

    Not `baddbmm_`: at an inner size of 1, MKL answers a single matrix (a run alone) with
    another kernel than a batch of them (a fused group), and on AVX-512 machines the two round
    differently (one fuses the multiply-add), so a fused run drifted from itself alone. The
    broadcast elementwise kernel walks every row the same way whatever R is.
    """
    weight.addcmul_(column, row)


Mode = Literal["sgd", "adam", "adamw", "optimizer"]


def like(stacked: Tensor) -> Tensor:
    """A buffer shaped like a stacked parameter, each run's slice 64-byte aligned."""
    return per_run(stacked.shape[0], tuple(stacked.shape[1:]), stacked.device, gap=False)


def update_mode(optimizers: Sequence[torch.optim.Optimizer]) -> Mode:
    """How the step updates: the same for every run of a group (group_key makes sure)."""
    modes = {_mode(opt) for opt in optimizers}
    if len(modes) != 1:
        raise ValueError(f"the runs of a fused step update in different ways: {sorted(modes)}")
    return modes.pop()


def _mode(opt: torch.optim.Optimizer) -> Mode:
    group = opt.param_groups[0]
    if isinstance(opt, torch.optim.SGD) and not group["momentum"] and not group["weight_decay"]:
        return "sgd"
    if isinstance(opt, torch.optim.Adam) and group.get("fused") and not group["amsgrad"]:
        return "adamw" if group.get("decoupled_weight_decay") else "adam"
    return "optimizer"


# On CUDA, the fused Adam kernel gives each tensor blocks of 65,536 values: the book's first
# layer (156,800 values) would get three blocks of a 132-SM GPU and take ~75 us a step. Cut
# into pieces of this many values (1-D views of the same memory: the updates land in place,
# and the arithmetic, value by value, is the same), the kernel spreads over the GPU.
CUDA_ADAM_PIECE = 4096


def pieces(tensors: Sequence[Tensor], size: int) -> list[list[Tensor]]:
    """The tensors cut into 1-D views of at most `size` values, the same cuts for each (they
    have one shape); uncut when a tensor is small or not contiguous."""
    first = tensors[0]
    if first.numel() <= size or not all(t.is_contiguous() for t in tensors):
        return [[t] for t in tensors]
    return [list(torch.split(t.view(-1), size)) for t in tensors]


@dataclass
class _AdamGroup:
    """Runs whose Adam hyperparameters are equal: one fused kernel call for all of them."""

    hyper: dict[str, float]
    params: list[Tensor] = field(default_factory=list)
    grads: list[Tensor] = field(default_factory=list)
    exp_avgs: list[Tensor] = field(default_factory=list)
    exp_avg_sqs: list[Tensor] = field(default_factory=list)
    steps: list[Tensor] = field(default_factory=list)


class Update:
    def __init__(
        self,
        mode: Mode,
        models: Sequence[nn.Module],
        optimizers: Sequence[torch.optim.Optimizer],
        linears: Sequence[StackedLinear],
        norms: Sequence[StackedNorm | None],
    ) -> None:
        self.mode, self.linears, self.optimizers = mode, list(linears), list(optimizers)
        self.sgd = mode == "sgd"
        # Normalization gradients are written per run by the norm's backward kernel; plain SGD
        # adds them (they carry -lr) and the other modes read them like every gradient.
        self.norm_grads = [(like(n.weight), like(n.bias)) if n else None for n in norms]
        self.grad_w = [like(lin.weight) for lin in linears] if not self.sgd else []
        self.grad_b = [like(lin.bias) for lin in linears] if not self.sgd else []
        self.adam_groups: list[_AdamGroup] = []
        self.all_steps: list[Tensor] = []
        self.fused: Callable[..., Any] = (
            torch._fused_adamw_ if mode == "adamw" else torch._fused_adam_
        )
        if self.sgd:
            return
        for r, (model, opt) in enumerate(zip(models, optimizers, strict=True)):
            params = list(model.parameters())
            grads = self._run_grads(r)
            if len(params) != len(grads):
                raise ValueError("the model's parameters are not the stacked layers'")
            if mode == "optimizer":
                for p, g in zip(params, grads, strict=True):
                    p.grad = g  # views of the stacked buffers: the backward pass fills them
                continue
            self._add_adam_run(opt, params, grads)

    def _run_grads(self, r: int) -> list[Tensor]:
        """Run r's gradients in its model.parameters() order."""
        grads: list[Tensor] = []
        for i in range(len(self.linears)):
            grads += [self.grad_w[i][r], self.grad_b[i][r]]
            norm = self.norm_grads[i] if i < len(self.norm_grads) else None
            if norm is not None:
                grads += [norm[0][r], norm[1][r]]
        return grads

    def _add_adam_run(
        self,
        opt: torch.optim.Optimizer,
        params: list[nn.Parameter],
        grads: list[Tensor],
        piece: int | None = None,
    ) -> None:
        group = opt.param_groups[0]
        hyper = {
            "lr": float(group["lr"]),
            "beta1": float(group["betas"][0]),
            "beta2": float(group["betas"][1]),
            "weight_decay": float(group["weight_decay"]),
            "eps": float(group["eps"]),
        }
        target = next((g for g in self.adam_groups if g.hyper == hyper), None)
        if target is None:
            target = _AdamGroup(hyper)
            self.adam_groups.append(target)
        for p, g in zip(params, grads, strict=True):
            # The same lazy initialisation torch.optim.Adam does for fused=True, so a
            # state_dict taken before the first step, or loaded from a checkpoint, has one layout.
            state = opt.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            size = piece or (CUDA_ADAM_PIECE if p.is_cuda else p.numel())
            cut = pieces([p.detach(), g, state["exp_avg"], state["exp_avg_sq"]], size)
            target.params += cut[0]
            target.grads += cut[1]
            target.exp_avgs += cut[2]
            target.exp_avg_sqs += cut[3]
            # Every piece reads its tensor's one step count, counted once per step.
            target.steps += [state["step"]] * len(cut[0])
            self.all_steps.append(state["step"])

    def bind_linear(self, i: int, batch: int) -> Callable[[Tensor, Tensor, Tensor], None]:
        """`update(g, g_t, h)` for Linear i: g [R, B, out] the (scaled) gradient of its output,
        g_t its transpose (a view cut once), h [R, B, in] its input."""
        linear = self.linears[i]
        weight, bias, bias3 = linear.weight, linear.bias, linear.bias3
        if self.sgd and batch == 1:

            def sgd_one(g: Tensor, g_t: Tensor, h: Tensor) -> None:
                outer_add(weight, g_t, h)
                bias3.add_(g)

            return sgd_one
        if self.sgd:

            def sgd(g: Tensor, g_t: Tensor, h: Tensor) -> None:
                weight.baddbmm_(g_t, h)
                bias.add_(g.sum(1))

            return sgd
        grad_w, grad_b, bmm, total = self.grad_w[i], self.grad_b[i], torch.bmm, torch.sum

        def gradients(g: Tensor, g_t: Tensor, h: Tensor) -> None:
            bmm(g_t, h, out=grad_w)
            total(g, 1, out=grad_b)

        return gradients

    def bind_first(self, batch: int) -> Callable[[Tensor, Tensor], None]:
        """`update(g, xs)` for the first layer on dense inputs: xs [R, B, 784] every run's copy
        of the batch (a GEMM per run, as alone)."""
        update = self.bind_linear(0, batch)

        def first(g: Tensor, xs: Tensor) -> None:
            update(g, g.transpose(1, 2), xs)

        return first

    def bind_finish(self) -> Callable[[], None]:
        if self.sgd:
            return _nothing
        if self.mode == "optimizer":
            steps = [opt.step for opt in self.optimizers]

            def optimizers() -> None:
                for step in steps:
                    step()

            return optimizers
        fused, all_steps, groups = self.fused, self.all_steps, self.adam_groups
        foreach_add = torch._foreach_add_

        def adam() -> None:
            foreach_add(all_steps, 1)
            for group in groups:
                h = group.hyper
                fused(
                    group.params, group.grads, group.exp_avgs, group.exp_avg_sqs, [], group.steps,
                    lr=h["lr"], beta1=h["beta1"], beta2=h["beta2"], eps=h["eps"],
                    weight_decay=h["weight_decay"], amsgrad=False, maximize=False,
                )  # fmt: skip

        return adam


def _nothing() -> None:
    return None
