"""The hidden layers' normalization for R runs: closures `forward() -> output` and
`backward() -> gradient w.r.t. the input`, over one workspace's buffers.

On the CPU it runs per run, with the call a run alone makes (the affine parameters are per
run, and the kernels must see each run's batch alone for fused runs to be bit-identical).
On CUDA, where every kernel costs a launch (or a graph node), layer norm runs batched over all
runs: one normalization without affine parameters, then each run's scale and shift, and the
backward likewise: a handful of kernels whatever R, close to the per-run kernels' rounding,
not equal to it. Batch norm runs per run on both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from worker.engine.model import BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, LAYER_NORM_EPS
from worker.engine.stacked import StackedNorm
from worker.engine.workspace import Workspace

aten = torch.ops.aten
Tensor = torch.Tensor
Closures = tuple[Callable[[], Tensor], Callable[[], Tensor]]
_MASK = [True, True, True]
_INPUT_ONLY = [True, False, False]
# Devices whose layer norm runs batched over the runs (tests add "cpu" to check its numbers).
BATCHED_DEVICES = {"cuda"}
# The kernels' own entry points (skipping torch.ops' Python-level dispatch).
_LAYER_NORM = aten.native_layer_norm.default._op
_LAYER_NORM_BACKWARD = aten.native_layer_norm_backward.default._op
_BATCH_NORM = aten.native_batch_norm.out._op
_BATCH_NORM_BACKWARD = aten.native_batch_norm_backward.out._op


def bind_norm(
    norm: StackedNorm, ws: Workspace, i: int, grads: tuple[Tensor, Tensor] | None, sgd: bool
) -> Closures:
    """Layer i's normalization. Its parameter gradients go into `grads`; under plain SGD (the
    gradients carry -lr already) they are added to the parameters."""
    assert grads is not None
    if not norm.layer_norm:
        return _batch_norm(norm, ws, i, grads, sgd)
    if ws.normed[i].device.type in BATCHED_DEVICES:
        return _layer_norm_batched(norm, ws, i, grads, sgd)
    return _layer_norm(norm, ws, i, grads, sgd)


def _layer_norm(
    norm: StackedNorm, ws: Workspace, i: int, grads: tuple[Tensor, Tensor], sgd: bool
) -> Closures:
    normed, normed_grad, a, g_in = ws.normed[i], ws.normed_grad[i], ws.act_out[i], ws.grad_in[i]
    g_w, g_b = grads
    runs = list(zip(a.unbind(0), g_in.unbind(0), norm.run_weight, norm.run_bias, strict=True))
    shape = [normed.shape[-1]]
    stats: list[tuple[Tensor, Tensor]] = []
    stack, weight, bias = torch.stack, norm.weight, norm.bias

    def forward() -> Tensor:
        outs = []
        stats.clear()
        for a_r, _, w, b in runs:
            out, mean, rstd = _LAYER_NORM(a_r, shape, w, b, LAYER_NORM_EPS)
            outs.append(out)
            stats.append((mean, rstd))
        stack(outs, out=normed)
        return normed

    def backward() -> Tensor:
        g_as, g_ws, g_bs = [], [], []
        for (a_r, g, w, b), (mean, rstd) in zip(runs, stats, strict=True):
            g_a, g_w_r, g_b_r = _LAYER_NORM_BACKWARD(g, a_r, shape, mean, rstd, w, b, _MASK)
            g_as.append(g_a)
            g_ws.append(g_w_r)
            g_bs.append(g_b_r)
        stack(g_as, out=normed_grad)
        stack(g_ws, out=g_w)
        stack(g_bs, out=g_b)
        if sgd:
            weight.add_(g_w)
            bias.add_(g_b)
        return normed_grad

    return forward, backward


def _layer_norm_batched(
    norm: StackedNorm, ws: Workspace, i: int, grads: tuple[Tensor, Tensor], sgd: bool
) -> Closures:
    normed, normed_grad, a, g_in = ws.normed[i], ws.normed_grad[i], ws.act_out[i], ws.grad_in[i]
    g_w, g_b = grads
    weight, bias = norm.weight, norm.bias
    w3, b3 = weight.unsqueeze(1), bias.unsqueeze(1)  # [R, 1, width]
    shape = [normed.shape[-1]]
    saved: list[Tensor] = []
    addcmul, mul, total = torch.addcmul, torch.mul, torch.sum

    def forward() -> Tensor:
        plain, mean, rstd = _LAYER_NORM(a, shape, None, None, LAYER_NORM_EPS)
        saved[:] = [plain, mean, rstd]
        addcmul(b3, plain, w3, out=normed)  # each run's scale and shift
        return normed

    def backward() -> Tensor:
        plain, mean, rstd = saved
        g_plain = mul(g_in, w3)
        g_a = _LAYER_NORM_BACKWARD(g_plain, a, shape, mean, rstd, None, None, _INPUT_ONLY)[0]
        normed_grad.copy_(g_a)
        total(mul(g_in, plain), 1, out=g_w)
        total(g_in, 1, out=g_b)
        if sgd:
            weight.add_(g_w)
            bias.add_(g_b)
        return normed_grad

    return forward, backward


def _batch_norm(
    norm: StackedNorm, ws: Workspace, i: int, grads: tuple[Tensor, Tensor], sgd: bool
) -> Closures:
    normed, normed_grad = ws.normed[i], ws.normed_grad[i]
    g_w, g_b = grads
    ahead = [
        (a, h, s1, s2, w, b, *running)
        for (a, h, s1, s2), w, b, running in zip(
            ws.norm_forward[i], norm.run_weight, norm.run_bias, norm.running, strict=True
        )
    ]
    back = [
        (g, a, s1, s2, g_a, w, gw, gb, *running)
        for (g, a, s1, s2, g_a), w, gw, gb, running in zip(
            ws.norm_backward[i], norm.run_weight, g_w.unbind(0), g_b.unbind(0), norm.running,
            strict=True,
        )
    ]  # fmt: skip
    counters, weight, bias, foreach_add = norm.counters, norm.weight, norm.bias, torch._foreach_add_

    def forward() -> Tensor:
        for a, h, s1, s2, w, b, mean, var in ahead:
            _BATCH_NORM(
                a, w, b, mean, var, True, BATCH_NORM_MOMENTUM, BATCH_NORM_EPS,
                out=h, save_mean=s1, save_invstd=s2,
            )  # fmt: skip
        foreach_add(counters, 1)
        return normed

    def backward() -> Tensor:
        for g, a, s1, s2, g_a, w, gw, gb, mean, var in back:
            _BATCH_NORM_BACKWARD(
                g, a, w, mean, var, s1, s2, True, BATCH_NORM_EPS, _MASK,
                out0=g_a, out1=gw, out2=gb,
            )  # fmt: skip
        if sgd:
            weight.add_(g_w)
            bias.add_(g_b)
        return normed_grad

    return forward, backward
