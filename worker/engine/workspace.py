"""The buffers one fused step writes, for one batch size (a last, shorter batch gets its own).

Written in place every step (`out=` variants), so a step allocates little and, under a CUDA
graph, every address stays fixed; views (per run, transposed, regrouped) are cut once here,
since at a batch of one each Python-level tensor operation costs about as much as its kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from worker.engine.stacked import StackedLinear, StackedNorm, gapped

if TYPE_CHECKING:
    from worker.engine.losshead import _Buffers

Tensor = torch.Tensor


class Workspace:
    def __init__(
        self,
        runs: int,
        batch: int,
        linears: Sequence[StackedLinear],
        norms: Sequence[StackedNorm | None],
        head: _Buffers,
        *,
        sparse: bool,
    ) -> None:
        self.runs, self.batch, self.head = runs, batch, head
        device = linears[0].weight.device
        widths = [linear.width_out for linear in linears[:-1]]

        def empty(*shape: int) -> Tensor:
            return torch.empty(shape, dtype=torch.float32, device=device)

        def runs_of(*shape: int) -> Tensor:  # each run's slice 64-byte aligned (stacked.py)
            return gapped(runs, shape, device)

        self.first_shape = (runs, batch, widths[0])
        self.act_out = [gapped(runs, (batch, w), device) for w in widths]
        self.act_out_runs = [list(a.unbind(0)) for a in self.act_out]
        self.pre_act: list[Tensor] = [empty(0) for _ in widths]  # set by each forward
        # The sparse first layer reads its gradient as one row [B, R * width]: contiguous.
        self.act_grad = [
            empty(runs, batch, w) if sparse and i == 0 else runs_of(batch, w)
            for i, w in enumerate(widths)
        ]
        self.act_grad_t = [g.transpose(1, 2) for g in self.act_grad]
        # The first layer's gradient as its working copy's rows want it, at a batch of one.
        self.first_grad = self.act_grad[0].view(batch, -1) if batch == 1 and sparse else empty(0)
        # grad_in[i]: gradient w.r.t. hidden layer i's output (after its normalization).
        self.grad_in = [runs_of(batch, w) for w in widths]
        self.normed: list[Tensor] = []
        self.normed_grad: list[Tensor] = []
        self.norm_forward: list[list[tuple[Tensor, Tensor, Tensor, Tensor]]] = []
        self.norm_backward: list[list[tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]] = []
        for i, (w, norm) in enumerate(zip(widths, norms, strict=True)):
            if norm is None:
                self.normed.append(self.act_out[i])
                self.normed_grad.append(empty(0))
                self.norm_forward.append([])
                self.norm_backward.append([])
                continue
            normed, normed_grad = runs_of(batch, w), runs_of(batch, w)
            # layer norm: mean and 1/std per record; batch norm: per unit.
            shape = (runs, batch, 1) if norm.layer_norm else (runs, w)
            stat1, stat2 = runs_of(*shape[1:]), runs_of(*shape[1:])
            self.normed.append(normed)
            self.normed_grad.append(normed_grad)
            a = self.act_out[i]
            self.norm_forward.append([(a[r], normed[r], stat1[r], stat2[r]) for r in range(runs)])
            self.norm_backward.append(
                [
                    (self.grad_in[i][r], a[r], stat1[r], stat2[r], normed_grad[r])
                    for r in range(runs)
                ]
            )
        # layer_in[i]: the input of Linear i >= 1, the output of hidden layer i - 1.
        self.layer_in = [empty(0), *self.normed[:-1]]

    def regroup(self, z: Tensor) -> Tensor:
        """The first layer's [B, R * width] product as [R, B, width], contiguous per run."""
        return z.view(self.batch, self.runs, -1).transpose(0, 1).contiguous()

    def ungroup(self, g: Tensor) -> Tensor:
        """[R, B, width] -> [B, R * width], the layout of the sparse first layer's rows."""
        return g.transpose(0, 1).reshape(self.batch, -1)
