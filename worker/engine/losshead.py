"""The output activation and the loss of R runs at once: the gradient of each run's mean loss
w.r.t. its logits every step, and each run's loss value on logging steps.

Gradients go through the ATen backward kernels autograd calls, with reduction "none" so that
each run's mean is taken over its own batch, the mean's 1/n carried by the incoming gradient
(rounded exactly as the "mean" kernels round it; `scales` may fold in more, see FastStep).
Loss values are needed only every `log_every` steps, so they are computed per run, with the
very call a run alone makes. Everything is written into buffers kept per batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from core.model_spec import NUM_CLASSES
from core.spec import ExperimentSpec
from worker.engine.stacked import gapped

aten = torch.ops.aten
Tensor = torch.Tensor
_MEAN = 1  # ATen's reduction codes
_NONE = 0
_IGNORE_INDEX = -100  # nn.CrossEntropyLoss's default
_F32 = torch.float32
# The kernels' own entry points (skipping torch.ops' Python-level dispatch).
_MSE_BACKWARD = aten.mse_loss_backward.grad_input._op
_BCE_BACKWARD = aten.binary_cross_entropy_backward.grad_input._op
_SIGMOID_BACKWARD = aten.sigmoid_backward.grad_input._op
_SOFTMAX_BACKWARD = aten._softmax_backward_data.out._op
_NLL = aten.nll_loss_forward.default._op
_MSE = aten.mse_loss.default._op
_BCE = aten.binary_cross_entropy.default._op


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
        # Each run's slice 64-byte aligned and apart from the next (stacked.py), except around
        # softmax: its kernels take another path on tensors that are not contiguous.
        softmax = head.output == "softmax" or head.loss == "cross_entropy"

        def buffer() -> Tensor:
            if softmax:
                return torch.empty(shape, dtype=_F32, device=device)
            return gapped(runs, shape[1:], device)

        self.logits = buffer()
        # The outputs: probabilities (sigmoid, softmax), log-probabilities (cross-entropy).
        self.out = (
            buffer() if head.output != "none" or head.loss == "cross_entropy" else self.logits
        )
        self.loss_grad = buffer()
        self.grad = buffer()
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

    def bind(
        self, b: _Buffers
    ) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor, Tensor, Tensor], None]]:
        """For one batch size: `grad(onehot)`, d(scaled mean loss)/d(logits) [R, B, 10] from
        b.logits, and `values(onehot, labels, out)`, each run's mean loss of that step (before
        its update) into `out` [R]."""
        out, logits, loss_grad, grad, factor = b.out, b.logits, b.loss_grad, b.grad, b.factor
        runs, divide, output = self.runs, b.divide, self.output
        mul, log_softmax, softmax, sigmoid = (
            torch.mul,
            torch._log_softmax,
            torch._softmax,
            torch.sigmoid,
        )
        log_softmax_backward = torch._log_softmax_backward_data

        if self.loss == "cross_entropy":

            def grad_fn(onehot: Tensor) -> Tensor:
                log_softmax(logits, 2, False, out=out)
                # One-hot times -(scale / B) is what nll_loss_backward writes (0 * c may be
                # -0, which the next kernel turns into the same values).
                mul(onehot, factor, out=loss_grad)
                return log_softmax_backward(loss_grad, out, 2, _F32, out=grad)

        elif output == "sigmoid" and runs == 1 and (self.loss == "mse" or divide is None):
            # The book's heads (sigmoid with MSE or BCE), one run: straight-line, no branches.
            if self.loss == "mse":

                def grad_fn(onehot: Tensor) -> Tensor:
                    sigmoid(logits, out=out)
                    _MSE_BACKWARD(factor, out, onehot, _NONE, grad_input=loss_grad)
                    return _SIGMOID_BACKWARD(loss_grad, out, grad_input=grad)  # type: ignore[no-any-return]

            else:

                def grad_fn(onehot: Tensor) -> Tensor:
                    sigmoid(logits, out=out)
                    _BCE_BACKWARD(factor, out, onehot, None, _NONE, grad_input=loss_grad)
                    return _SIGMOID_BACKWARD(loss_grad, out, grad_input=grad)  # type: ignore[no-any-return]

        else:
            kernel = _MSE_BACKWARD if self.loss == "mse" else _BCE_BACKWARD
            into = grad if output == "none" else loss_grad

            def grad_fn(onehot: Tensor) -> Tensor:
                if output == "sigmoid":
                    sigmoid(logits, out=out)
                elif output == "softmax":
                    softmax(logits, 2, False, out=out)
                target = onehot.expand(out.shape) if runs > 1 else onehot
                if kernel is _MSE_BACKWARD:
                    kernel(factor, out, target, _NONE, grad_input=into)
                else:
                    kernel(factor, out, target, None, _NONE, grad_input=into)
                    if divide is not None:
                        into.div_(divide)
                if output == "sigmoid":
                    _SIGMOID_BACKWARD(into, out, grad_input=grad)
                elif output == "softmax":
                    _SOFTMAX_BACKWARD(into, out, 2, _F32, grad_input=grad)
                return grad

        run_out, stack = b.run_out, torch.stack
        if self.loss == "cross_entropy":

            def values(onehot: Tensor, labels: Tensor, into: Tensor) -> None:
                stack(
                    [_NLL(lsm, labels, None, _MEAN, _IGNORE_INDEX)[0] for lsm in run_out], out=into
                )

        elif self.loss == "mse":

            def values(onehot: Tensor, labels: Tensor, into: Tensor) -> None:
                stack([_MSE(o, onehot, _MEAN) for o in run_out], out=into)

        else:

            def values(onehot: Tensor, labels: Tensor, into: Tensor) -> None:
                stack([_BCE(o, onehot, None, _MEAN) for o in run_out], out=into)

        return grad_fn, values
