"""The five presets are the book's chain: each changes exactly one knob of the one before."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.presets import (
    BOOK_CHAIN,
    DESCRIPTIONS,
    PRESETS,
    UnknownPresetError,
    build_spec,
    preset_dict,
)
from core.spec import ExperimentSpec


def flat(spec: ExperimentSpec) -> dict[str, Any]:
    data = spec.model_dump(mode="json")
    model = data.pop("model")
    return {**data, **{f"model.{k}": v for k, v in model.items()}}


def test_chain_order_and_descriptions() -> None:
    assert BOOK_CHAIN == (
        "seed-baseline",
        "seed-bce",
        "seed-leakyrelu",
        "seed-adam",
        "seed-layernorm",
    )
    assert set(DESCRIPTIONS) == set(PRESETS)


def test_baseline_is_the_empty_spec() -> None:
    assert build_spec("seed-baseline") == ExperimentSpec()


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        ("seed-baseline", "seed-bce", {"loss": "bce"}),
        ("seed-bce", "seed-leakyrelu", {"model.activation": "leaky_relu"}),
        ("seed-leakyrelu", "seed-adam", {"optimizer": "adam", "lr": 0.001}),
        ("seed-adam", "seed-layernorm", {"model.normalization": "layer_norm"}),
    ],
)
def test_each_preset_changes_one_knob(before: str, after: str, changed: dict[str, Any]) -> None:
    a, b = flat(build_spec(before)), flat(build_spec(after))
    assert {k: v for k, v in b.items() if a[k] != v} == changed


def test_refinements_keep_the_book_network() -> None:
    for name in BOOK_CHAIN:
        spec = build_spec(name)
        assert spec.model.hidden == [200]
        assert spec.model.output == "sigmoid"
        assert spec.model.negative_slope == 0.02
        assert (spec.epochs, spec.batch_size, spec.log_every) == (3, 1, 10)


def test_overrides_apply_on_top_of_a_preset() -> None:
    spec = build_spec("seed-adam", {"epochs": 1, "model.hidden": [100, 50], "lr": 0.01})
    assert (spec.optimizer, spec.epochs, spec.model.hidden, spec.lr) == (
        "adam",
        1,
        [100, 50],
        0.01,
    )
    assert spec.model.activation == "leaky_relu"


def test_switching_optimizer_switches_default_lr() -> None:
    assert build_spec("seed-leakyrelu", {"optimizer": "adam"}).lr == 0.001
    assert build_spec("seed-adam", {"optimizer": "sgd"}).lr == 0.01


def test_presets_are_not_mutated_by_use() -> None:
    preset_dict("seed-adam")["optimizer"] = "sgd"
    build_spec("seed-adam", {"model.activation": "relu"})
    assert PRESETS["seed-adam"]["optimizer"] == "adam"
    assert PRESETS["seed-adam"]["model"]["activation"] == "leaky_relu"


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(UnknownPresetError, match="seed-baseline, seed-bce"):
        build_spec("seed-nope")


def test_invalid_override_on_a_preset_is_refused() -> None:
    with pytest.raises(ValidationError, match="raw logits"):
        build_spec("seed-bce", {"model.output": "none"})
