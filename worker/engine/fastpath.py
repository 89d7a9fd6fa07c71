"""The training step written out by hand, for R runs of one structure at once (R = 1 alone).

At the book's batch size of 1 a step is a few small matrix-vector products, and recording an
autograd graph, walking it back and running a generic optimizer costs several times the
arithmetic itself. This step computes what autograd would, by calling the same ATen kernels
autograd calls (addmm, sigmoid_backward, native_layer_norm_backward, ...), for every run of a
fused group in the same calls: parameters are stacked along a run axis (stacked.py), the first
layer is one product over all runs' weights (they all read the same batch), the later ones one
bmm, and the update is one call for all runs:

- plain SGD (no momentum, no weight decay) folds -lr into the loss gradient, so every update
  is a plain add: one addmm_/baddbmm_ per layer. On the CPU the first layer then works on the
  batch's non-zero pixels only (sparse.py);
- Adam and AdamW call PyTorch's fused kernel on each run's parameters and the run optimizer's
  own state tensors (what `torch.optim.Adam(fused=True).step()` does), one call per distinct
  set of hyperparameters, so state_dicts and checkpoints stay PyTorch's own;
- any other optimizer reads the gradients from `.grad` in its ordinary `step()`, per run.

Normalization runs per run (its affine parameters are per run and its kernels must see each
run's batch as alone). A run trained in a group is bit-identical on the CPU to the same run
alone: each run's numbers come from the same kernels on the same operands (see stacked.py).
Tests compare the step against autograd for every knob, alone and fused.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core.spec import ExperimentSpec, group_key
from worker.engine.activation import Activation
from worker.engine.layout import model_layers
from worker.engine.losshead import LossHead
from worker.engine.model import BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, LAYER_NORM_EPS
from worker.engine.sparse import SparseBatch, SparseFirstLayer
from worker.engine.stacked import StackedLinear, StackedNorm
from worker.engine.update import Update, update_mode
from worker.engine.workspace import Workspace

aten = torch.ops.aten
Tensor = torch.Tensor
_MASK = [True, True, True]


class FastStep:
    """`step(x, onehot, labels, sparse, loss_out)`: one optimizer step of every run on one batch;
    each run's loss (before the update) goes into `loss_out` [R] when one is given."""

    def __init__(
        self,
        models: Sequence[nn.Sequential],
        specs: Sequence[ExperimentSpec],
        optimizers: Sequence[torch.optim.Optimizer],
        *,
        sparse_input: bool = True,
    ) -> None:
        spec = specs[0]
        if any(group_key(s) != group_key(spec) for s in specs):
            raise ValueError("a fused step trains runs of one structure (core.spec.group_key)")
        # Refuses, naming it, any module the hand-written passes do not cover.
        layers = [model_layers(m, s) for m, s in zip(models, specs, strict=True)]
        self.runs = len(models)
        self.device = layers[0][0].linear.weight.device
        self.linears = [
            StackedLinear([run[i].linear for run in layers]) for i in range(len(layers[0]))
        ]
        self.norms = [
            StackedNorm([run[i].norm for run in layers]) if layers[0][i].norm else None  # type: ignore[misc]
            for i in range(len(layers[0]) - 1)
        ]
        self.mode = update_mode(optimizers)
        sgd = self.mode == "sgd"
        self.act = Activation(spec)
        self.loss = LossHead(
            spec, [-s.effective_lr if sgd else 1.0 for s in specs], self.device, sgd=sgd
        )
        first = self.linears[0]
        self.sparse = (
            SparseFirstLayer(first.weight, first.bias)
            if sparse_input and sgd and self.device.type == "cpu"
            else None
        )
        self.hidden = len(self.linears) - 1
        self.workspaces: dict[int, Workspace] = {}
        self.update = Update(self.mode, models, optimizers, self.linears, self.norms)

    @property
    def uses_sparse_input(self) -> bool:
        return self.sparse is not None

    def sync(self) -> None:
        """Bring the runs' modules up to date (before evaluation or a checkpoint)."""
        if self.sparse is not None:
            self.sparse.sync_to(self.linears[0].weight, self.linears[0].bias)

    def workspace(self, batch: int) -> Workspace:
        ws = self.workspaces.get(batch)
        if ws is None:
            ws = Workspace(self.runs, batch, self.linears, self.norms, self.loss.buffers(batch))
            self.workspaces[batch] = ws
        return ws

    def step(
        self,
        x: Tensor,
        onehot: Tensor,
        labels: Tensor,
        sparse: SparseBatch | None,
        loss_out: Tensor | None,
    ) -> None:
        # Every tensor here is detached: autograd records nothing, with no grad-mode switch.
        batch = x.shape[0]
        ws = self.workspaces.get(batch) or self.workspace(batch)
        head = ws.head
        linears, act, norms, update = self.linears, self.act, self.norms, self.update
        first, hidden = linears[0], self.hidden
        if sparse is not None and self.sparse is not None:
            z = self.sparse.forward(sparse)
        else:
            z = torch.addmm(first.flat_bias, x, first.flat_weight_t)
        # [B, R * width] -> [R, B, width]
        z = z.view(ws.first_shape) if batch == 1 else ws.regroup(z)
        h = x
        for i in range(hidden):
            if i:
                z = torch.baddbmm(linears[i].bias3, h, linears[i].weight_t)
            a = act.forward(z, ws, i)
            norm = norms[i]
            h = a if norm is None else self._norm_forward(norm, ws, i)
        out = linears[hidden]
        torch.baddbmm(out.bias3, h, out.weight_t, out=head.logits)
        g = self.loss.grad(head, onehot)
        if loss_out is not None:
            self.loss.values(head, onehot, labels, loss_out)

        # Backward, last layer first. Each layer's input gradient is taken before its own
        # update, so every gradient is that of the weights the forward pass used.
        g_in = torch.bmm(g, out.weight, out=ws.grad_in[hidden - 1])
        update.linear(hidden, g, head.grad_t, h)
        for i in range(hidden - 1, -1, -1):
            norm = norms[i]
            g_a = g_in if norm is None else self._norm_backward(norm, ws, i)
            g_z = act.backward(g_a, ws, i)
            if i:
                g_in = torch.bmm(g_z, linears[i].weight, out=ws.grad_in[i - 1])
                update.linear(i, g_z, ws.act_grad_t[i], ws.layer_in[i])
            elif sparse is not None and self.sparse is not None:
                self.sparse.update(sparse, ws.first_grad if batch == 1 else ws.ungroup(g_z))
            else:
                update.first(g_z, ws.act_grad_t[0], x)
        update.finish()

    @staticmethod
    def _norm_forward(norm: StackedNorm, ws: Workspace, i: int) -> Tensor:
        for r, (a, h, stat1, stat2) in enumerate(ws.norm_forward[i]):
            if norm.layer_norm:
                aten.native_layer_norm.out(
                    a, [a.shape[1]], norm.run_weight[r], norm.run_bias[r], LAYER_NORM_EPS,
                    out0=h, out1=stat1, out2=stat2,
                )  # fmt: skip
            else:
                mean, var = norm.running[r]
                aten.native_batch_norm.out(
                    a, norm.run_weight[r], norm.run_bias[r], mean, var, True, BATCH_NORM_MOMENTUM,
                    BATCH_NORM_EPS, out=h, save_mean=stat1, save_invstd=stat2,
                )  # fmt: skip
        if norm.counters:
            torch._foreach_add_(norm.counters, 1)
        return ws.normed[i]

    def _norm_backward(self, norm: StackedNorm, ws: Workspace, i: int) -> Tensor:
        grads = self.update.norm_grads[i]
        assert grads is not None
        g_w, g_b = grads
        for r, (g, a, stat1, stat2, g_a) in enumerate(ws.norm_backward[i]):
            if norm.layer_norm:
                aten.native_layer_norm_backward.out(
                    g, a, [a.shape[1]], stat1, stat2, norm.run_weight[r], norm.run_bias[r], _MASK,
                    out0=g_a, out1=g_w[r], out2=g_b[r],
                )  # fmt: skip
            else:
                mean, var = norm.running[r]
                aten.native_batch_norm_backward.out(
                    g, a, norm.run_weight[r], mean, var, stat1, stat2, True, BATCH_NORM_EPS, _MASK,
                    out0=g_a, out1=g_w[r], out2=g_b[r],
                )  # fmt: skip
        if self.update.sgd:  # the gradients carry -lr already
            norm.weight.add_(g_w)
            norm.bias.add_(g_b)
        return ws.normed_grad[i]
