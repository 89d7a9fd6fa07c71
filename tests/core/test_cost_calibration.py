"""The cost model's time per step against figures bench/cost_calibration.py measured.

Nothing here is timed: MEASURED holds the engine's CPU milliseconds per training step as the
bench recorded them (the median of four runs, each the median of three timed runs at one
thread after a warm-up, data loaded) on the project's reference machine: a 2-core Intel Xeon
with 4 MiB of L2 a core, torch 2.14.1, shared (load average 4.5 to 7.8), 2026-12-07. The
estimate must stay within 1.5x of each either way: a change to core/kinds/classifier_cost.py's
formula or costs that breaks this needs the bench run again (`make bench-cost`) and its
figures here.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.kinds.classifier_cost import STEP_SECONDS, step_features, step_seconds
from core.spec import ExperimentSpec

GOAL = 1.5


def _spec(hidden: list[int], act: str, norm: str, opt: str, batch: int, **extra: Any) -> Any:
    loss = extra.pop("loss", "mse")
    output = "none" if loss == "cross_entropy" else "sigmoid"
    return {
        "model": {"hidden": hidden, "activation": act, "normalization": norm, "output": output},
        "optimizer": opt,
        "batch_size": batch,
        "loss": loss,
        **extra,
    }


# (what the spec is, the spec, measured CPU ms per step)
MEASURED = [
    ("the book's recipe, plain SGD", _spec([200], "sigmoid", "none", "sgd", 1), 0.030),
    ("the book's, Adam, LayerNorm", _spec([200], "sigmoid", "layer_norm", "adam", 1), 0.294),
    ("8 layers of 1 unit, GELU", _spec([1] * 8, "gelu", "layer_norm", "adam", 1), 0.372),
    ("8 x 64, BatchNorm, RMSprop", _spec([64] * 8, "sigmoid", "batch_norm", "rmsprop", 2), 1.123),
    ("SGD with momentum", _spec([32] * 6, "tanh", "batch_norm", "sgd", 4, momentum=0.9), 0.460),
    ("batch 256", _spec([1024], "relu", "batch_norm", "adam", 256, loss="cross_entropy"), 6.59),
    ("AdamW at 64", _spec([512, 256], "gelu", "layer_norm", "adamw", 64), 1.96),
    ("a 4096-unit layer, RMSprop", _spec([4096], "sigmoid", "none", "rmsprop", 8), 13.2),
    ("20 M parameters, Adam", _spec([4096] * 2, "relu", "none", "adam", 1), 44.6),
    ("54 M parameters, plain SGD", _spec([4096] * 4, "relu", "none", "sgd", 1), 45.9),
    ("a sparse first layer at 256", _spec([4096, 16], "tanh", "none", "sgd", 256), 48.0),
]  # fmt: skip


@pytest.mark.parametrize(("what", "fields", "measured_ms"), MEASURED, ids=[m[0] for m in MEASURED])
def test_the_estimate_is_within_the_goal_of_what_the_bench_measured(
    what: str, fields: dict[str, Any], measured_ms: float
) -> None:
    estimated_ms = step_seconds(ExperimentSpec.model_validate(fields)) * 1e3
    assert 1 / GOAL <= estimated_ms / measured_ms <= GOAL, (what, estimated_ms, measured_ms)


def test_every_cost_prices_a_feature_and_none_is_negative() -> None:
    features: set[str] = set()
    for _, fields, _ in MEASURED:
        features |= step_features(ExperimentSpec.model_validate(fields)).keys()
    assert set(STEP_SECONDS) <= features  # a misspelt cost would silently price nothing
    assert all(cost >= 0 for cost in STEP_SECONDS.values())
