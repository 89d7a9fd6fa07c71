"""The GAN step (worker/gan/step.py's three train calls per record) written out by hand.

At the book's batch of one record a step is a dozen matrix-vector products and three optimizer
updates; recording autograd's graphs, walking them back and running torch.optim's Python costs
about as much again. This step computes the same values through the same ATen kernels
(fastnet.py), with every buffer allocated once:

- step 1 and 2 take D's parameter gradients but not its input's; step 2's fake is drawn by G
  straight into D's input buffer; step 3 takes the gradient through D w.r.t. its input (G's
  output) only, never D's parameter gradients, then G's;
- the conditional GAN's one-hot labels are written once per step into the columns after the
  image (D's input) and the seed (G's input) of buffers laid out as torch.cat lays them out;
- Adam is PyTorch's fused kernel on the optimizer's own state tensors (what
  `torch.optim.Adam(fused=True).step()` runs), SGD the same `add_(grad, alpha=-lr)` its
  step() runs, so state_dicts and checkpoints stay PyTorch's.

`fast_step(spec, models, device)` gives this step where it covers the spec and the modules,
else None (the caller then takes the autograd GanStep). The tests compare both, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from core.kinds.gan_spec import GanSpec
from core.model_spec import NUM_CLASSES
from worker.gan.fastnet import FastNet, covers
from worker.gan.networks import GanModels

aten = torch.ops.aten
_MEAN = 1  # ATen's reduction code
_BCE = aten.binary_cross_entropy.default._op
_BCE_BACKWARD = aten.binary_cross_entropy_backward.grad_input._op
_MSE = aten.mse_loss.default._op
_MSE_BACKWARD = aten.mse_loss_backward.grad_input._op
_INDEX_SELECT = aten.index_select.out._op
# The devices whose kernels the tests compare with autograd's.
DEVICES = {"cpu"}

Losses = tuple[Tensor | None, Tensor | None, Tensor | None]


def _covered(opt: torch.optim.Optimizer, net: FastNet) -> bool:
    """Whether the optimizer is plain SGD or fused Adam, one group of `net`'s parameters."""
    if len(opt.param_groups) != 1:
        return False
    group = opt.param_groups[0]
    if [p.data_ptr() for p in group["params"]] != [p.data_ptr() for p in net.params]:
        return False
    if type(opt) is torch.optim.SGD:
        return not (
            group["momentum"] or group["weight_decay"] or group["maximize"] or group["fused"]
        )
    return (
        type(opt) is torch.optim.Adam
        and bool(group.get("fused"))
        and not (group["amsgrad"] or group["maximize"] or group["capturable"])
        and not (group["differentiable"] or group.get("decoupled_weight_decay"))
        and not isinstance(group["lr"], Tensor)
    )


def _update(opt: torch.optim.Optimizer, net: FastNet) -> Callable[[], None]:
    """The optimizer's step on `net`'s gradient buffers (`_covered` says it is one)."""
    group = opt.param_groups[0]
    if type(opt) is torch.optim.SGD:
        return _sgd(net, float(group["lr"]))
    return _adam(opt, list(group["params"]), net.grads)


def _sgd(net: FastNet, lr: float) -> Callable[[], None]:
    params, grads, foreach_add = net.params, net.grads, torch._foreach_add_

    def sgd() -> None:
        foreach_add(params, grads, alpha=-lr)  # each tensor's add_(grad, alpha=-lr)

    return sgd


def _adam(
    opt: torch.optim.Optimizer, params: list[Tensor], grads: list[Tensor]
) -> Callable[[], None]:
    group = opt.param_groups[0]
    exp_avgs, exp_avg_sqs, steps = [], [], []
    for p in params:
        # torch.optim.Adam's lazy initialisation for fused=True, so a state_dict taken before
        # the first step (or loaded from a checkpoint) has one layout.
        state = opt.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        exp_avgs.append(state["exp_avg"])
        exp_avg_sqs.append(state["exp_avg_sq"])
        steps.append(state["step"])
    data = [p.detach() for p in params]
    lr, (beta1, beta2) = float(group["lr"]), (float(b) for b in group["betas"])
    eps, decay = float(group["eps"]), float(group["weight_decay"])
    fused, foreach_add = torch._fused_adam_, torch._foreach_add_

    def adam() -> None:
        foreach_add(steps, 1)
        fused(data, grads, exp_avgs, exp_avg_sqs, [], steps, lr=lr, beta1=beta1, beta2=beta2,
              weight_decay=decay, eps=eps, amsgrad=False, maximize=False)  # fmt: skip

    return adam


def fast_step(spec: GanSpec, models: GanModels, device: torch.device) -> FastGanStep | None:
    """The hand-written step for `models`, or None where it does not cover them."""
    if device.type not in DEVICES:
        return None
    if not (
        covers(spec.discriminator, models.discriminator)
        and covers(spec.generator, models.generator)
    ):
        return None
    if type(models.loss) not in (torch.nn.BCELoss, torch.nn.MSELoss):
        return None
    if models.loss.reduction != "mean" or getattr(models.loss, "weight", None) is not None:
        return None
    step = FastGanStep(spec, models, device)
    if not (_covered(models.d_optimizer, step.d) and _covered(models.g_optimizer, step.g)):
        return None
    step.d_update = _update(models.d_optimizer, step.d)
    step.g_update = _update(models.g_optimizer, step.g)
    return step


class FastGanStep:
    """`draw(rng)` then `step(real, real_label, seeds, labels, record)`, as GanStep; the loss
    of each of the three train calls is computed only where `record` asks for it."""

    def __init__(self, spec: GanSpec, models: GanModels, device: torch.device) -> None:
        self.spec, self.device = spec, device
        image, latent = spec.generator.widths[-1], spec.latent_size
        d_in, g_in = spec.discriminator.widths[0], spec.generator.widths[0]
        self.conditional = spec.conditional

        def empty(*shape: int) -> Tensor:
            return torch.empty(*shape, device=device)

        # The seeds are drawn into a buffer of their own (the random kernels fill contiguous
        # tensors in another order than strided ones), then placed beside their labels.
        self.seeds = empty(2, latent)
        self.labels = torch.empty(2, dtype=torch.int64)
        # The conditional G's two inputs, seed and label side by side as torch.cat lays them
        # out, each row 64-byte aligned like cat's fresh tensor: MKL's GEMM rounds by the
        # operand's alignment. (Unconditional, the rows are the seeds' own, as GanStep's.)
        self.g_input = empty(2, _aligned(g_in)) if self.conditional else self.seeds
        self.d_real = empty(1, d_in)
        # D's input for steps 2 and 3: G writes its image into the first columns.
        self.d_fake = empty(1, d_in)
        d_grad_in = empty(1, d_in)
        self.d = FastNet(spec.discriminator, models.discriminator, empty(1, 1),
                         grad_in=d_grad_in)  # fmt: skip
        self.g = FastNet(spec.generator, models.generator, self.d_fake[:, :image],
                         grad_out=d_grad_in[:, :image])  # fmt: skip
        self.eye = torch.eye(NUM_CLASSES, device=device)
        self.eye_rows = [self.eye[i : i + 1] for i in range(NUM_CLASSES)]
        self.onehots = empty(2, NUM_CLASSES)
        self.one = torch.ones(1, 1, device=device)
        self.zero = torch.zeros(1, 1, device=device)
        self.d_update: Callable[[], None] = _nothing
        self.g_update: Callable[[], None] = _nothing
        self.step = self._bind(spec.loss == "mse")

    def draw(self, rng: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """GanStep.draw's values, into this step's buffers."""
        if self.spec.latent == "uniform":
            torch.rand(self.seeds.shape, generator=rng, out=self.seeds)
        else:
            torch.randn(self.seeds.shape, generator=rng, out=self.seeds)
        if not self.conditional:
            return self.seeds, None
        torch.randint(0, NUM_CLASSES, (2,), generator=rng, out=self.labels)
        return self.seeds, self.labels

    def __call__(
        self, real: Tensor, real_label: int, seeds: Tensor, labels: Tensor | None,
        record: tuple[bool, bool, bool] = (True, True, True),
    ) -> Losses:  # fmt: skip
        return self.step(real, real_label, seeds, labels, record)

    def _bind(self, mse: bool) -> Callable[..., Losses]:
        d, g = self.d, self.g
        d_forward, d_backward, g_forward, g_backward = d.forward, d.backward, g.forward, g.backward
        d_out, d_grad_out, d_fake, one, zero = d.out, d.grad_out, self.d_fake, self.one, self.zero
        grad = torch.ones((), device=self.device)  # what backward() seeds a scalar loss with

        def value(out: Tensor, target: Tensor) -> Tensor:
            if mse:
                return _MSE(out, target, _MEAN)  # type: ignore[no-any-return]
            return _BCE(out, target, None, _MEAN)  # type: ignore[no-any-return]

        image = self.spec.generator.widths[-1]
        own_seeds, own_labels, g_input = self.seeds, self.labels, self.g_input
        g_in = self.spec.generator.widths[0]
        g_seed_0, g_seed_1 = g_input[0:1, :g_in], g_input[1:2, :g_in]
        latent = self.spec.latent_size
        conditional, eye, eye_rows, onehots = (
            self.conditional,
            self.eye,
            self.eye_rows,
            self.onehots,
        )
        real_image, real_label_cols = self.d_real[:, :image], self.d_real[:, image:]
        fake_label_cols, d_real = d_fake[:, image:], self.d_real
        g_seed_cols, g_label_cols = g_input[:, :latent], g_input[:, latent:g_in]
        onehot_0, onehot_1 = onehots[0:1], onehots[1:2]
        step = self

        def loss_grad(target: Tensor) -> None:
            if mse:
                _MSE_BACKWARD(grad, d_out, target, _MEAN, grad_input=d_grad_out)
            else:
                _BCE_BACKWARD(grad, d_out, target, None, _MEAN, grad_input=d_grad_out)

        def run(
            real: Tensor, real_label: int, seeds: Tensor, labels: Tensor | None,
            record: tuple[bool, bool, bool],
        ) -> Losses:  # fmt: skip
            if seeds is not own_seeds:
                own_seeds.copy_(seeds)
            if conditional:
                assert labels is not None
                if labels is not own_labels:
                    own_labels.copy_(labels)
                _INDEX_SELECT(eye, 0, own_labels, out=onehots)
                g_seed_cols.copy_(own_seeds)
                g_label_cols.copy_(onehots)
                real_image.copy_(real)
                real_label_cols.copy_(eye_rows[real_label])
                real = d_real
            # 1. D on the real record, target 1.
            d_forward(real)
            d_real_loss = value(d_out, one) if record[0] else None
            loss_grad(one)
            d_backward(True, False)
            step.d_update()
            # 2. D on G's image of the first seed, target 0 (G's graph is never needed).
            g_forward(g_seed_0)
            if conditional:
                fake_label_cols.copy_(onehot_0)
            d_forward(d_fake)
            d_fake_loss = value(d_out, zero) if record[1] else None
            loss_grad(zero)
            d_backward(True, False)
            step.d_update()
            # 3. G through D, target 1: the gradient w.r.t. D's input only, then G's own.
            g_forward(g_seed_1)
            if conditional:
                fake_label_cols.copy_(onehot_1)
            d_forward(d_fake)
            g_loss = value(d_out, one) if record[2] else None
            loss_grad(one)
            d_backward(False, True)
            g_backward(True, False)
            step.g_update()
            return d_real_loss, d_fake_loss, g_loss

        return run


def _aligned(width: int) -> int:
    """`width` rounded up to a whole number of 64-byte lines of float32."""
    return -(-width // 16) * 16


def _nothing() -> None:
    return None
