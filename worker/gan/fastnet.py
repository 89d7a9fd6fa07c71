"""One GAN network's forward and backward passes written out for a batch of one record, through
the ATen kernels autograd calls for nn.Linear, the activations and nn.LayerNorm.

Every intermediate lives in a buffer allocated once; the kernels write into them (their `out`
variants), so a step allocates next to nothing. The values are autograd's: the same kernels on
operands of the same shapes and strides (F.linear on a 2-D input is addmm(bias, x, W.t()); its
backward is mm(g, W) for the input and g.t() x for the weight, a product per value, exact in
any kernel; the bias's gradient of a batch of one is g itself, so it is a view of g's buffer).

`covers(net, module)` says whether a module is the walk core.kinds.gan_spec describes (the one
worker/gan/networks.py builds); the step falls back to autograd for anything else.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from core.kinds.gan_spec import GanNetwork

aten = torch.ops.aten
Tensor = torch.Tensor
_LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default, which networks.py keeps
_ALL = [True, True, True]
_INPUT_ONLY = [True, False, False]
# The kernels' own entry points (skipping torch.ops' Python-level dispatch).
_ADDMM = aten.addmm.out._op
_MM = aten.mm.out._op
_MUL = aten.mul.out._op
_LAYER_NORM = aten.native_layer_norm.out._op
_LAYER_NORM_BACKWARD = aten.native_layer_norm_backward.out._op
_LAYER_NORM_BACKWARD_INPUT = aten.native_layer_norm_backward.default._op
_SIGMOID_BACKWARD = aten.sigmoid_backward.grad_input._op
_TANH_BACKWARD = aten.tanh_backward.grad_input._op
_THRESHOLD_BACKWARD = aten.threshold_backward.grad_input._op
_LEAKY_RELU_BACKWARD = aten.leaky_relu_backward.grad_input._op
_GELU_BACKWARD = aten.gelu_backward.grad_input._op
_MODULES: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "none": nn.Identity,
}


def covers(net: GanNetwork, module: nn.Module) -> bool:
    """Whether `module` is exactly the Sequential networks.build_network makes of `net`."""
    if not isinstance(module, nn.Sequential):
        return False
    expected: list[tuple[type[nn.Module], int]] = []
    for layer in net.layers():
        expected.append((nn.Linear, layer.fan_out))
        expected.append((_MODULES[layer.activation], 0))
        if layer.normalization == "layer_norm":
            expected.append((nn.LayerNorm, layer.fan_out))
    mods = list(module)
    if len(mods) != len(expected):
        return False
    for mod, (kind, width) in zip(mods, expected, strict=True):
        if type(mod) is not kind:
            return False
        if isinstance(mod, nn.Linear) and (mod.bias is None or mod.out_features != width):
            return False
        if isinstance(mod, nn.LayerNorm) and not (
            mod.elementwise_affine
            and mod.bias is not None
            and mod.eps == _LAYER_NORM_EPS
            and tuple(mod.normalized_shape) == (width,)
        ):
            return False
        if isinstance(mod, nn.LeakyReLU) and mod.negative_slope != net.negative_slope:
            return False
        if isinstance(mod, nn.GELU) and mod.approximate != "none":
            return False
    return all(p.dtype == torch.float32 for p in module.parameters())


class _Layer:
    """Linear, activation and optional LayerNorm of one width, with their buffers."""

    def __init__(self, linear: nn.Linear, act: str, slope: float, norm: nn.LayerNorm | None,
                 out: Tensor | None, grad_out: Tensor | None) -> None:  # fmt: skip
        dev, width = linear.weight.device, linear.out_features
        # GanNetwork normalizes hidden layers only, and those always have an activation.
        assert act != "none" or norm is None

        def row() -> Tensor:
            return torch.empty(1, width, device=dev)

        self.weight = linear.weight.detach()
        self.weight_t = self.weight.t()
        self.bias = linear.bias.detach()
        self.act, self.slope = act, slope
        self.norm = norm
        last_out = out if out is not None else row()
        # z: the Linear's output; a: the activation's; h: the layer's (after the norm).
        self.z = last_out if act == "none" and norm is None else row()
        self.a = self.z if act == "none" else (last_out if norm is None else row())
        self.h = self.a if norm is None else last_out
        self.mean = torch.empty(1, 1, device=dev)
        self.rstd = torch.empty(1, 1, device=dev)
        # Gradients: w.r.t. h (written by the layer above or the caller), a, z; the weight's.
        self.g_h = grad_out if grad_out is not None else row()
        self.g_a = self.g_h if norm is None else row()
        self.g_z = self.g_a if act == "none" else row()
        self.g_z_t = self.g_z.t()
        self.g_weight = torch.empty_like(self.weight)
        self.g_bias = self.g_z.view(width)
        if norm is not None:
            self.norm_weight, self.norm_bias = norm.weight.detach(), norm.bias.detach()
            self.g_norm_weight = torch.empty(width, device=dev)
            self.g_norm_bias = torch.empty(width, device=dev)
            self.shape = [width]
        self.x: Tensor = self.z  # the last forward's input

    def grads(self) -> list[Tensor]:
        """This layer's gradients in its modules' parameters() order."""
        out = [self.g_weight, self.g_bias]
        if self.norm is not None:
            out += [self.g_norm_weight, self.g_norm_bias]
        return out

    def bind(self) -> tuple[Callable[[Tensor], Tensor], Callable[[bool], None]]:
        """`forward(x) -> h` and `backward(params)`: g_h -> g_z, and with `params` the
        weight's and the norm's gradients (the bias's is g_z itself)."""
        weight_t, bias, z, a, h, act, slope = (
            self.weight_t, self.bias, self.z, self.a, self.h, self.act, self.slope,
        )  # fmt: skip
        g_h, g_a, g_z, g_z_t, g_weight = self.g_h, self.g_a, self.g_z, self.g_z_t, self.g_weight
        norm = self.norm is not None
        if norm:
            nw, nb, mean, rstd, shape = (
                self.norm_weight, self.norm_bias, self.mean, self.rstd, self.shape,
            )  # fmt: skip
            g_nw, g_nb = self.g_norm_weight, self.g_norm_bias
        activate = _forward(act, slope)
        layer = self

        def forward(x: Tensor) -> Tensor:
            layer.x = x
            _ADDMM(bias, x, weight_t, out=z)
            if activate is not None:
                activate(z, a)
            if norm:
                _LAYER_NORM(a, shape, nw, nb, _LAYER_NORM_EPS, out0=h, out1=mean, out2=rstd)
            return h

        def backward(params: bool) -> None:
            g_a_now = g_a
            if norm and params:
                _LAYER_NORM_BACKWARD(
                    g_h, a, shape, mean, rstd, nw, nb, _ALL, out0=g_a, out1=g_nw, out2=g_nb
                )
            elif norm:  # the out variant wants a tensor for each output, even an unasked one
                g_a_now = _LAYER_NORM_BACKWARD_INPUT(
                    g_h, a, shape, mean, rstd, nw, nb, _INPUT_ONLY
                )[0]
            if act == "sigmoid":
                _SIGMOID_BACKWARD(g_a_now, a, grad_input=g_z)
            elif act == "leaky_relu":
                _LEAKY_RELU_BACKWARD(g_a_now, z, slope, False, grad_input=g_z)
            elif act == "tanh":
                _TANH_BACKWARD(g_a_now, a, grad_input=g_z)
            elif act == "relu":
                _THRESHOLD_BACKWARD(g_a_now, a, 0, grad_input=g_z)
            elif act == "gelu":
                _GELU_BACKWARD(g_a_now, z, grad_input=g_z)
            if params:
                _MUL(g_z_t, layer.x, out=g_weight)

        return forward, backward


def _forward(act: str, slope: float) -> Callable[[Tensor, Tensor], object] | None:
    if act == "sigmoid":
        return lambda z, a: torch.sigmoid(z, out=a)
    if act == "leaky_relu":
        leaky = torch._C._nn.leaky_relu
        return lambda z, a: leaky(z, slope, out=a)
    if act == "tanh":
        return lambda z, a: torch.tanh(z, out=a)
    if act == "relu":
        relu = aten.relu.out._op
        return lambda z, a: relu(z, out=a)
    if act == "gelu":
        gelu = torch._C._nn.gelu
        return lambda z, a: gelu(z, out=a)  # type: ignore[call-arg]
    return None


class FastNet:
    """One network: `forward(x) -> out` (into `out`), `backward(params, input_grad)` from the
    gradient the caller wrote into `grad_out`; the input's gradient lands in `grad_in`."""

    def __init__(
        self,
        net: GanNetwork,
        module: nn.Sequential,
        out: Tensor,
        grad_out: Tensor | None = None,
        grad_in: Tensor | None = None,
    ) -> None:
        mods = list(module)
        specs = net.layers()
        self.layers: list[_Layer] = []
        at = 0
        below: _Layer | None = None
        dev = out.device
        for n, spec in enumerate(specs):
            linear = mods[at]
            assert isinstance(linear, nn.Linear)
            norm = mods[at + 2] if spec.normalization == "layer_norm" else None
            assert norm is None or isinstance(norm, nn.LayerNorm)
            at += 3 if norm is not None else 2
            last = n == len(specs) - 1
            layer = _Layer(linear, spec.activation, net.negative_slope, norm,
                           out if last else None, grad_out if last else None)  # fmt: skip
            self.layers.append(layer)
            below = layer
        assert below is not None
        self.out, self.grad_out = out, below.g_h
        self.grad_in = grad_in if grad_in is not None else torch.empty(1, net.widths[0], device=dev)
        # Layer i's input gradient is layer i-1's g_h: mm writes straight into it.
        self.grad_targets = [self.grad_in] + [layer.g_h for layer in self.layers[:-1]]
        self.params = [p.detach() for p in module.parameters()]
        self.grads = [g for layer in self.layers for g in layer.grads()]
        self.forward, self.backward = self._bind()

    def _bind(self) -> tuple[Callable[[Tensor], Tensor], Callable[[bool, bool], None]]:
        bound = [layer.bind() for layer in self.layers]
        forwards = [f for f, _ in bound]
        steps = [
            (b, layer.g_z, layer.weight, target)
            for (_, b), layer, target in zip(bound, self.layers, self.grad_targets, strict=True)
        ][::-1]
        out = self.out

        def forward(x: Tensor) -> Tensor:
            for f in forwards:
                x = f(x)
            return out

        def backward(params: bool, input_grad: bool) -> None:
            """Last layer first; each layer's input gradient before anything updates."""
            for i, (back, g_z, weight, target) in enumerate(steps, 1):
                back(params)
                if i < len(steps) or input_grad:
                    _MM(g_z, weight, out=target)

        return forward, backward
