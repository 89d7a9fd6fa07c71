"""The spec: defaults are the book's baseline; every bound and bad combination is refused with a
message that names the field and says why."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.spec import (
    MAX_LOSS_POINTS,
    MAX_TOTAL_STEPS,
    ExperimentSpec,
)
from core.spec_paths import apply_overrides


def errors(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        ExperimentSpec.model_validate(data)
    return str(info.value)


def test_empty_spec_is_the_books_baseline() -> None:
    spec = ExperimentSpec()
    assert spec.model.hidden == [200]
    assert (spec.model.activation, spec.model.normalization, spec.model.output) == (
        "sigmoid",
        "none",
        "sigmoid",
    )
    assert (spec.loss, spec.optimizer, spec.lr) == ("mse", "sgd", 0.01)
    assert (spec.epochs, spec.batch_size, spec.log_every) == (3, 1, 10)
    assert spec.total_steps == 180_000
    assert spec.loss_points == 18_000


def test_lr_defaults_follow_the_optimizer() -> None:
    assert ExperimentSpec(optimizer="adam").lr == 0.001
    assert ExperimentSpec(optimizer="sgd", lr=0.5).lr == 0.5


def test_step_counts_round_up_partial_batches() -> None:
    spec = ExperimentSpec(train_limit=1001, batch_size=10, epochs=2)
    assert spec.steps_per_epoch == 101
    assert spec.total_steps == 202


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"epochs": 0}, "epochs", "greater than or equal to 1"),
        ({"epochs": 101}, "epochs", "less than or equal to 100"),
        ({"batch_size": 0}, "batch_size", "greater than or equal to 1"),
        ({"batch_size": 5000}, "batch_size", "less than or equal to 4096"),
        ({"lr": 0}, "lr", "greater than 0"),
        ({"lr": 11}, "lr", "less than or equal to 10"),
        ({"momentum": 1.0}, "momentum", "less than 1"),
        ({"weight_decay": -0.1}, "weight_decay", "greater than or equal to 0"),
        ({"log_every": 0}, "log_every", "greater than or equal to 1"),
        ({"train_limit": 60_001}, "train_limit", "less than or equal to 60000"),
        ({"test_limit": 0}, "test_limit", "greater than or equal to 1"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"model": {"hidden": []}}, "model", "hidden needs at least 1 layer for model.type=mlp"),
        ({"model": {"hidden": [10] * 9}}, "model.hidden", "at most 8 items"),
        ({"model": {"hidden": [5000]}}, "model", "each width must be 1..4096"),
        ({"model": {"negative_slope": 2}}, "model.negative_slope", "less than or equal to 1"),
        ({"model": {"activation": "swish"}}, "model.activation", "'sigmoid'"),
        ({"loss": "hinge"}, "loss", "'mse'"),
        ({"optimizer": "lbfgs"}, "optimizer", "'sgd'"),
        ({"dataset": "cifar10"}, "dataset", "'mnist'"),
        ({"device": "tpu"}, "device", "'cuda'"),
    ],
)
def test_bounds_and_choices_name_the_field(data: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        ExperimentSpec.model_validate(data)
    problems = info.value.errors()
    assert [".".join(map(str, p["loc"])) for p in problems] == [field]
    assert reason in problems[0]["msg"]


def test_total_work_bound_names_the_bound() -> None:
    message = errors({"epochs": 11})  # 660,000 steps at batch size 1
    assert f"{MAX_TOTAL_STEPS:,}" in message
    assert "lower epochs or train_limit, or raise batch_size" in message
    ExperimentSpec(epochs=10)  # exactly at the bound is allowed


def test_loss_point_bound_says_what_log_every_to_use() -> None:
    message = errors({"epochs": 2, "log_every": 1})  # 120,000 points
    assert f"{MAX_LOSS_POINTS:,}" in message
    assert "raise log_every to at least 2" in message


@pytest.mark.parametrize(
    ("data", "why", "instead"),
    [
        ({"loss": "bce", "model": {"output": "none"}}, "raw logits", "model.output=sigmoid"),
        ({"loss": "cross_entropy"}, "applies its own softmax", "model.output=none"),
        (
            {"loss": "cross_entropy", "model": {"output": "softmax"}},
            "squashes them first",
            "model.output=none",
        ),
        ({"model": {"normalization": "batch_norm"}}, "batch statistics", "use layer_norm"),
        (
            {"model": {"normalization": "batch_norm"}, "batch_size": 2, "train_limit": 5},
            "last batch of one record",
            "change train_limit or batch_size",
        ),
        ({"optimizer": "adam", "momentum": 0.9}, "own moment estimates", "leave momentum at 0"),
        ({"optimizer": "adamw", "momentum": 0.5}, "not adamw", "leave momentum at 0"),
    ],
)
def test_nonsense_combinations_say_why_and_what_instead(
    data: dict[str, Any], why: str, instead: str
) -> None:
    message = errors(data)
    assert why in message
    assert instead in message


def test_sensible_combinations_pass() -> None:
    ExperimentSpec(loss="cross_entropy", model={"output": "none"})
    ExperimentSpec(loss="bce", model={"output": "softmax"})
    ExperimentSpec(model={"normalization": "batch_norm"}, batch_size=2)
    ExperimentSpec(optimizer="rmsprop", momentum=0.9)
    ExperimentSpec(optimizer="sgd", momentum=0.9, weight_decay=0.01)


@pytest.mark.parametrize(
    ("data", "field"),
    [({"epoch": 3}, "epoch"), ({"model": {"hiden": [10]}}, "model.hiden")],
)
def test_unknown_keys_are_refused(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ExperimentSpec.model_validate(data)
    problem = info.value.errors()[0]
    assert ".".join(map(str, problem["loc"])) == field
    assert problem["type"] == "extra_forbidden"


def test_every_problem_is_reported() -> None:
    with pytest.raises(ValidationError) as info:
        ExperimentSpec.model_validate({"epochs": 0, "batch_size": 0, "colour": "red"})
    fields = {".".join(map(str, p["loc"])) for p in info.value.errors()}
    assert fields == {"epochs", "batch_size", "colour"}


def test_spec_is_frozen_and_hash_is_stable() -> None:
    spec = ExperimentSpec(seed=3)
    with pytest.raises(ValidationError):
        spec.seed = 4  # type: ignore[misc]
    same = ExperimentSpec.model_validate_json(spec.canonical_json())
    assert same.fingerprint() == spec.fingerprint()
    assert ExperimentSpec(seed=4).fingerprint() != spec.fingerprint()
    assert len(spec.fingerprint()) == 16


def test_overrides_take_dotted_paths_and_nested_dicts() -> None:
    base = {"loss": "mse", "model": {"hidden": [200], "activation": "sigmoid"}}
    merged = apply_overrides(
        base, {"model.activation": "relu", "model": {"hidden": [100, 50]}, "epochs": 1}
    )
    assert merged == {
        "loss": "mse",
        "model": {"hidden": [100, 50], "activation": "relu"},
        "epochs": 1,
    }
    assert base["model"] == {"hidden": [200], "activation": "sigmoid"}  # base untouched


def test_override_creates_missing_sections() -> None:
    assert apply_overrides({}, {"model.output": "none"}) == {"model": {"output": "none"}}


def test_override_into_a_value_that_is_not_a_section_is_refused() -> None:
    with pytest.raises(ValueError, match="'loss' is not a section of the spec"):
        apply_overrides({"loss": "mse"}, {"loss.kind": "bce"})


def test_override_with_unknown_dotted_key_fails_validation() -> None:
    merged = apply_overrides({}, {"model.depth": 3})
    with pytest.raises(ValidationError) as info:
        ExperimentSpec.model_validate(merged)
    assert info.value.errors()[0]["loc"] == ("model", "depth")


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"a" * 1_000_000: 1}, "at most 64 characters"),
        ({"model..hidden": 1}, "field names joined by dots"),
        ({"a.b.c.d": 1}, "field names joined by dots"),
        ({f"k{i}": 1 for i in range(33)}, "the bound is 32"),
        ({"model": {"hidden": [[[1]]]}}, "nested deeper than the spec"),
    ],
)
def test_override_paths_are_bounded_before_any_work(overrides: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        apply_overrides({}, overrides)
    assert len(str(caught.value)) < 200  # the message quotes at most the start of a key


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        ({"epochs": 2.0}, True),  # JSON's 2.0 is the integer 2
        ({"epochs": 2.5}, False),
        ({"epochs": True}, False),
        ({"epochs": "2"}, False),
        ({"lr": 1}, True),
        ({"lr": "0.1"}, False),
        ({"model": {"hidden": [10.0, 20]}}, True),
        ({"model": {"hidden": ["10"]}}, False),
    ],
)
def test_numbers_are_read_as_json_numbers_and_nothing_else(data: dict[str, Any], ok: bool) -> None:
    if ok:
        spec = ExperimentSpec.model_validate(data)
        assert all(isinstance(w, int) for w in spec.model.hidden) and isinstance(spec.epochs, int)
    else:
        errors(data)
