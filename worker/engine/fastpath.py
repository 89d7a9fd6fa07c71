"""The training step written out by hand, for R runs of one structure at once (R = 1 alone).

At the book's batch size of 1 a step is a few small matrix-vector products, and recording an
autograd graph, walking it back and running a generic optimizer costs several times the
arithmetic itself. This step computes what autograd would, by calling the same ATen kernels
autograd calls (addmm, sigmoid_backward, native_layer_norm_backward, ...), for every run of a
fused group in the same calls: parameters are stacked along a run axis (stacked.py), every
run reads the same batch (records in order), and each layer is one call for all runs: a bmm
(one GEMM per run, as alone), or on sparse inputs one embedding_bag over all runs' rows. The
update is one call for all runs too:

- plain SGD (no momentum, no weight decay) folds -lr into the loss gradient, so every update
  is a plain add: one baddbmm_ per layer, or at a batch of one an outer product (update.outer_add,
  with the output bias folded into its weight). On the CPU the first layer works on the
  batch's non-zero pixels (sparse.py);
- Adam and AdamW call PyTorch's fused kernel on each run's parameters and the run optimizer's
  own state tensors (what `torch.optim.Adam(fused=True).step()` does), one call per distinct
  set of hyperparameters, so state_dicts and checkpoints stay PyTorch's own;
- any other optimizer reads the gradients from `.grad` in its ordinary `step()`, per run.

Normalization is norms.py's. On the CPU a run trained in a group is bit-identical to the same
run alone: each run's numbers come from the same kernels on operands laid out as alone (see
stacked.py). Tests compare the step against autograd for every knob, alone and fused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from core.spec import ExperimentSpec, group_key
from worker.engine.activation import Activation
from worker.engine.layout import model_layers
from worker.engine.losshead import LossHead
from worker.engine.norms import bind_norm
from worker.engine.sparse import SparseBatch, SparseFirstLayer
from worker.engine.stacked import FoldedLinear, StackedLinear, StackedNorm, with_one
from worker.engine.update import Update, outer_add, update_mode
from worker.engine.workspace import Workspace

aten = torch.ops.aten
Tensor = torch.Tensor
StepFn = Callable[[Tensor, Tensor, Tensor, SparseBatch | None, Tensor | None], None]


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
        # Plain SGD at a batch of one folds the output layer's bias into its weight (one call
        # less in each direction), reading the last activation through its gap's 1 (stacked.py).
        self.folded = (
            FoldedLinear(self.linears[-1])
            if sgd and spec.batch_size == 1 and self.norms[-1] is None
            else None
        )
        self.workspaces: dict[int, Workspace] = {}
        self.compiled: dict[int, StepFn] = {}
        self.update = Update(self.mode, models, optimizers, self.linears, self.norms)

    @property
    def uses_sparse_input(self) -> bool:
        return self.sparse is not None

    def sync(self) -> None:
        """Bring the runs' modules up to date (before evaluation or a checkpoint)."""
        if self.sparse is not None:
            self.sparse.sync_to(self.linears[0].weight, self.linears[0].bias)
        if self.folded is not None:
            self.folded.sync()

    def workspace(self, batch: int) -> Workspace:
        ws = self.workspaces.get(batch)
        if ws is None:
            ws = Workspace(
                self.runs,
                batch,
                self.linears,
                self.norms,
                self.loss.buffers(batch),
                sparse=self.sparse is not None,
            )
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
        run = self.compiled.get(x.shape[0])
        if run is None:
            run = self.compiled[x.shape[0]] = self._compile(x.shape[0])
        run(x, onehot, labels, sparse, loss_out)

    def _compile(self, batch: int) -> StepFn:
        """The step for one batch size, with every buffer, view and kernel bound once."""
        ws = self.workspace(batch)
        runs, hidden, linears = self.runs, self.hidden, self.linears
        # One run, one record: the first layer's [1, width] output is written through a 2-D
        # view of the activation buffer (no reshape call per step).
        flat = runs == 1 and batch == 1 and self.act.name != "gelu" and self.sparse is not None
        acts = [
            self.act.bind(ws.act_out[i], ws.act_grad[i], flat_input=flat and i == 0)
            for i in range(hidden)
        ]
        forwards = [f for f, _ in acts]
        backwards = [b for _, b in acts]
        norms = [
            bind_norm(norm, ws, i, self.update.norm_grads[i], self.update.sgd)
            if norm is not None
            else None
            for i, norm in enumerate(self.norms)
        ]
        loss_grad, loss_values = self.loss.bind(ws.head)
        updates = [self.update.bind_linear(i, batch) for i in range(hidden + 1)]
        update_first, finish = self.update.bind_first(batch), self.update.bind_finish()
        first, out = linears[0], linears[hidden]
        first_bias3, first_weight_t = first.bias3, first.weight_t
        ungroup = ws.ungroup
        logits, grad_t, grad_in = ws.head.logits, ws.head.grad_t, ws.grad_in
        act_grad_t, layer_in = ws.act_grad_t, ws.layer_in
        deeper = [(lin.bias3, lin.weight_t, lin.weight) for lin in linears]
        out_bias3, out_weight_t, out_weight = out.bias3, out.weight_t, out.weight
        baddbmm, bmm, embedding_bag = torch.baddbmm, torch.bmm, torch.embedding_bag
        first_shape, regroup = ws.first_shape, ws.regroup
        use_sparse = self.sparse is not None
        rows = self.sparse.rows if self.sparse is not None else first_bias3
        rows_update, first_grad = rows.addmm_, ws.first_grad
        update_out = updates[hidden]
        folded = self.folded if batch == 1 else None
        if folded is not None:
            last = with_one(ws.act_out[hidden - 1])
            out_weight, folded_weight, folded_t = folded.weight_in, folded.weight, folded.weight_t

            def update_folded(g: Tensor, g_t: Tensor, h: Tensor) -> None:
                outer_add(folded_weight, g_t, last)

            update_out = update_folded
        sgd = self.update.sgd
        forward0, backward0, norm0, grad_in0 = forwards[0], backwards[0], norms[0], grad_in[0]

        def run_one_hidden(
            x: Tensor,
            onehot: Tensor,
            labels: Tensor,
            sparse: SparseBatch | None,
            loss_out: Tensor | None,
        ) -> None:
            """`run` below for the book's networks (one hidden layer), in a straight line."""
            if use_sparse:
                assert sparse is not None
                indices, values, offsets, transposed = sparse
                z = embedding_bag(rows, indices, offsets, False, 0, False, values, False)[0]
                if not flat:
                    z = z.view(first_shape) if batch == 1 else regroup(z)
            else:
                xs = x.expand(runs, batch, x.shape[1]).contiguous()
                z = baddbmm(first_bias3, xs, first_weight_t)
            h = forward0(z)
            if norm0 is not None:
                h = norm0[0]()
            if folded is not None:
                bmm(last, folded_t, out=logits)
            else:
                baddbmm(out_bias3, h, out_weight_t, out=logits)
            g = loss_grad(onehot)
            if loss_out is not None:
                loss_values(onehot, labels, loss_out)
            g_in = bmm(g, out_weight, out=grad_in0)
            if folded is not None:
                outer_add(folded_weight, grad_t, last)
            else:
                update_out(g, grad_t, h)
            g_z = backward0(g_in if norm0 is None else norm0[1]())
            if use_sparse:
                rows_update(transposed, first_grad if batch == 1 else ungroup(g_z))
            else:
                update_first(g_z, xs)
            if not sgd:
                finish()

        def run(
            x: Tensor,
            onehot: Tensor,
            labels: Tensor,
            sparse: SparseBatch | None,
            loss_out: Tensor | None,
        ) -> None:
            # Every tensor here is detached: autograd records nothing, no grad-mode switch.
            if use_sparse:
                assert sparse is not None
                indices, values, offsets, transposed = sparse
                z = embedding_bag(rows, indices, offsets, False, 0, False, values, False)[0]
                if not flat:  # [B, R * width] -> [R, B, width]
                    z = z.view(first_shape) if batch == 1 else regroup(z)
            else:
                # A GEMM per run on its own (aligned) copy of the batch, as alone.
                xs = x.expand(runs, batch, x.shape[1]).contiguous()
                z = baddbmm(first_bias3, xs, first_weight_t)
            h = forwards[0](z)
            norm = norms[0]
            if norm is not None:
                h = norm[0]()
            for i in range(1, hidden):
                bias3, weight_t, _ = deeper[i]
                h = forwards[i](baddbmm(bias3, h, weight_t))
                norm = norms[i]
                if norm is not None:
                    h = norm[0]()
            if folded is not None:
                bmm(last, folded_t, out=logits)
            else:
                baddbmm(out_bias3, h, out_weight_t, out=logits)
            g = loss_grad(onehot)
            if loss_out is not None:
                loss_values(onehot, labels, loss_out)

            # Backward, last layer first. Each layer's input gradient is taken before its own
            # update, so every gradient is that of the weights the forward pass used.
            g_in = bmm(g, out_weight, out=grad_in[hidden - 1])
            update_out(g, grad_t, h)
            for i in range(hidden - 1, -1, -1):
                norm = norms[i]
                g_z = backwards[i](g_in if norm is None else norm[1]())
                if i:
                    g_in = bmm(g_z, deeper[i][2], out=grad_in[i - 1])
                    updates[i](g_z, act_grad_t[i], layer_in[i])
                elif use_sparse:
                    rows_update(transposed, first_grad if batch == 1 else ungroup(g_z))
                else:
                    update_first(g_z, xs)
            finish()

        return run_one_hidden if hidden == 1 else run
