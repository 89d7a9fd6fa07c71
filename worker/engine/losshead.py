"""The output activation and the loss of R runs at once: the gradient of each run's mean loss
w.r.t. its logits every step, and each run's loss value on logging steps.

Gradients go through the ATen backward kernels autograd calls, with reduction "none" so that
each run's mean is taken over its own batch, the mean's 1/n carried by the incoming gradient
(rounded exactly as the "mean" kernels round it; `scales` may fold in more, see FastStep).
Loss values are needed only every `log_every` steps, so they are computed per run, with the
very call a run alone makes. Everything is written into buffers kept per batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from core.spec import NUM_CLASSES, ExperimentSpec
from worker.engine.stacked import gapped

aten = torch.ops.aten
Tensor = torch.Tensor
_MEAN = 1  # ATen's reduction codes
_NONE = 0
_IGNORE_INDEX = -100  # nn.CrossEntropyLoss's default
_F32 = torch.float32


class _Buffers:
    """One batch size's constants and outputs."""

    def __init__(self, head: LossHead, batch: int) -> None:
        runs, device, n = head.runs, head.device, batch * NUM_CLASSES
        shape = (runs, batch, NUM_CLASSES)
        if head.loss == "cross_entropy":
            # nll_loss_backward's mean writes -(grad / total_weight) at the target.
            factors = [-(s / batch) for s in head.scales]
        elif head.loss == "mse" or head.sgd:
            # mse_loss_backward's mean computes (2/n) * (x - y) * grad, and 2 * (x - y) * (1/n)
            # rounds the same (the factor 2 is exact); for bce under plain SGD the factor is
            # folded in likewise (no autograd twin to match there, see FastStep).
            factors = [s / n for s in head.scales]
        else:
            factors = list(head.scales)  # bce: divided by n after the kernel, as its mean does
        factor = torch.tensor(factors, dtype=_F32, device=device).view(runs, 1, 1)
        self.factor = factor if head.loss == "cross_entropy" else factor.expand(shape)
        self.divide = None if head.loss == "cross_entropy" or head.sgd or head.loss == "mse" else n
        self.logits = torch.empty(shape, dtype=_F32, device=device)
        # The outputs: a gapped buffer for sigmoid (a kernel with a scalar tail, see stacked.py).
        if head.output == "sigmoid":
            self.out = gapped(runs, (batch, NUM_CLASSES), device)
        elif head.output == "softmax" or head.loss == "cross_entropy":
            self.out = torch.empty(shape, dtype=_F32, device=device)  # probabilities or lsm
        else:
            self.out = self.logits
        self.loss_grad = torch.empty(shape, dtype=_F32, device=device)
        self.grad = torch.empty(shape, dtype=_F32, device=device)
        self.grad_t = self.grad.transpose(1, 2)
        self.run_out = list(self.out.unbind(0))


class LossHead:
    def __init__(
        self, spec: ExperimentSpec, scales: Sequence[float], device: torch.device, *, sgd: bool
    ) -> None:
        """`scales[r]` multiplies run r's gradient (plain SGD folds its -lr in here)."""
        self.loss, self.output = spec.loss, spec.model.output
        self.runs, self.scales, self.sgd, self.device = len(scales), list(scales), sgd, device
        self._buffers: dict[int, _Buffers] = {}

    def buffers(self, batch: int) -> _Buffers:
        found = self._buffers.get(batch)
        if found is None:
            found = self._buffers[batch] = _Buffers(self, batch)
        return found

    def grad(self, b: _Buffers, onehot: Tensor) -> Tensor:
        """d(scaled mean loss)/d(logits) [R, B, 10] from b.logits; onehot [B, 10]."""
        out, logits = b.out, b.logits
        if self.loss == "cross_entropy":
            torch._log_softmax(logits, 2, False, out=out)
            # One-hot times -(scale / B) is what nll_loss_backward writes (0 * c may be -0,
            # which the next kernel turns into the same values).
            torch.mul(onehot, b.factor, out=b.loss_grad)
            return aten._log_softmax_backward_data.out(b.loss_grad, out, 2, _F32, out=b.grad)  # type: ignore[no-any-return]
        if self.output == "sigmoid":
            torch.sigmoid(logits, out=out)
        elif self.output == "softmax":
            torch._softmax(logits, 2, False, out=out)
        target = onehot.expand(out.shape) if self.runs > 1 else onehot
        grad = b.loss_grad if self.output != "none" else b.grad
        if self.loss == "mse":
            aten.mse_loss_backward.grad_input(b.factor, out, target, _NONE, grad_input=grad)
        else:
            aten.binary_cross_entropy_backward.grad_input(
                b.factor, out, target, None, _NONE, grad_input=grad
            )
            if b.divide is not None:
                grad.div_(b.divide)
        if self.output == "sigmoid":
            aten.sigmoid_backward.grad_input(grad, out, grad_input=b.grad)
        elif self.output == "softmax":
            aten._softmax_backward_data.out(grad, out, 2, _F32, grad_input=b.grad)
        return b.grad

    def values(self, b: _Buffers, onehot: Tensor, labels: Tensor, out: Tensor) -> None:
        """Each run's mean loss of the last step (before its update) into `out` [R]."""
        per_run: list[Tensor]
        if self.loss == "cross_entropy":
            per_run = [
                aten.nll_loss_forward.default(lsm, labels, None, _MEAN, _IGNORE_INDEX)[0]
                for lsm in b.run_out
            ]
        elif self.loss == "mse":
            per_run = [aten.mse_loss.default(o, onehot, _MEAN) for o in b.run_out]
        else:
            per_run = [aten.binary_cross_entropy.default(o, onehot, None, _MEAN) for o in b.run_out]
        torch.stack(per_run, out=out)
