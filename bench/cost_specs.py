"""The specs bench/cost_calibration.py times: a spread over the spec space (depth 1..8, widths
1..4096, batch 1..512, every activation, normalization, optimizer and loss), kept small enough
that the whole bench takes a few minutes on one thread. Names say what each spec is."""

from __future__ import annotations

from typing import Any

from core.spec import ExperimentSpec

# The loss and output that go together (core.spec refuses the others).
_LOSSES = {
    "mse": {"loss": "mse", "output": "sigmoid"},
    "bce": {"loss": "bce", "output": "sigmoid"},
    "ce": {"loss": "cross_entropy", "output": "none"},
}


def _spec(
    hidden: list[int],
    *,
    act: str = "sigmoid",
    norm: str = "none",
    opt: str = "sgd",
    momentum: float = 0.0,
    batch: int = 1,
    loss: str = "mse",
) -> tuple[str, dict[str, Any]]:
    widths = (
        f"{hidden[0]}x{len(hidden)}" if len(set(hidden)) == 1 else "-".join(str(h) for h in hidden)
    )
    opt_name = f"{opt}+m" if momentum else opt
    name = f"{widths} {act} {norm} {opt_name} b{batch} {loss}"
    model = {"hidden": hidden, "activation": act, "normalization": norm}
    fields = {
        "model": {**model, "output": _LOSSES[loss]["output"]},
        "optimizer": opt,
        "momentum": momentum,
        "batch_size": batch,
        "loss": _LOSSES[loss]["loss"],
    }
    return name, fields


SPECS: list[tuple[str, dict[str, Any]]] = [
    # The book's recipes and their neighbours: one 200-unit layer at batch 1.
    _spec([200]),
    _spec([200], loss="bce"),
    _spec([200], act="relu", loss="ce"),
    _spec([200], act="leaky_relu"),
    _spec([200], act="tanh", opt="adam"),
    _spec([200], act="gelu", norm="layer_norm", opt="adam", loss="ce"),
    _spec([200], norm="layer_norm", opt="adam"),
    _spec([200], opt="sgd", momentum=0.9),
    _spec([200], opt="rmsprop"),
    _spec([200], opt="adamw", act="relu"),
    # Narrow and deep: bound by the per-step and per-layer overhead.
    _spec([1]),
    _spec([1], opt="adam"),
    _spec([1] * 8, act="gelu", norm="layer_norm", opt="adam"),
    _spec([1] * 8, act="relu"),
    _spec([4] * 4, act="tanh", opt="rmsprop", momentum=0.9),
    _spec([16] * 8, act="leaky_relu", norm="layer_norm", opt="sgd"),
    _spec([64] * 8, norm="batch_norm", opt="rmsprop", batch=2),
    _spec([64] * 8, act="relu", opt="adam", batch=2, loss="ce"),
    _spec([64] * 8, act="gelu", opt="sgd"),
    _spec([64] * 8, norm="batch_norm", opt="sgd", batch=2),
    _spec([64] * 8, act="relu", norm="layer_norm", opt="adam"),
    _spec([32] * 6, act="tanh", norm="batch_norm", opt="sgd", momentum=0.9, batch=4),
    _spec([2] * 8, act="gelu", norm="batch_norm", opt="adamw", batch=2, loss="ce"),
    _spec([32] * 2, opt="adamw", batch=8),
    _spec([128] * 3, act="tanh", norm="batch_norm", opt="adam", batch=16),
    _spec([256] * 2, act="relu", opt="sgd", momentum=0.5, batch=4, loss="bce"),
    # Mid-size networks over batch sizes.
    _spec([512], act="relu", batch=32, loss="ce"),
    _spec([512], act="relu", opt="adam", batch=32, loss="ce"),
    _spec([512, 256], act="gelu", norm="layer_norm", opt="adamw", batch=64),
    _spec([300, 100], act="sigmoid", opt="rmsprop", batch=128),
    _spec([1024], act="relu", batch=128, loss="ce"),
    _spec([1024], act="relu", norm="batch_norm", opt="adam", batch=256, loss="ce"),
    _spec([256] * 4, act="leaky_relu", norm="batch_norm", opt="sgd", batch=512),
    _spec([100] * 3, act="tanh", opt="adam", batch=512, loss="bce"),
    _spec([64], act="relu", batch=512, loss="ce"),
    _spec([2048], act="relu", opt="adam", batch=64, loss="ce"),
    _spec([16], act="sigmoid", opt="sgd", momentum=0.9, batch=64),
    # Wide: bound by the matrices (memory at batch 1, arithmetic at big batches).
    _spec([1024]),
    _spec([1024], opt="adam"),
    _spec([2048], act="relu", loss="ce"),
    _spec([4096], act="relu"),
    _spec([4096], opt="adam"),
    _spec([4096], opt="rmsprop", batch=8),
    _spec([1024] * 2, act="tanh", opt="sgd", momentum=0.9),
    _spec([1024] * 4, act="relu", opt="adam", batch=4, loss="ce"),
    _spec([2048] * 2, act="gelu", norm="layer_norm", opt="sgd"),
    _spec([2048] * 2, act="relu", opt="adamw", batch=32),
    _spec([4096] * 2, act="relu"),
    _spec([4096] * 2, act="relu", opt="adam"),
    _spec([4096] * 4, act="relu"),
    _spec([4096] * 4, act="relu", opt="adam", batch=16, loss="ce"),
    _spec([512] * 8, act="relu", norm="batch_norm", opt="adam", batch=32),
    _spec([4096, 16], act="tanh", opt="sgd", batch=256),
    _spec([8, 4096], act="relu", norm="layer_norm", opt="rmsprop", batch=2),
]


def spec_of(fields: dict[str, Any]) -> ExperimentSpec:
    return ExperimentSpec.model_validate(fields)
