"""KEY=VALUE arguments, one parser for `train --set`, `submit --set`, `ablate --set/--factor`."""

from __future__ import annotations

from typing import Any

import pytest

from cli.assignments import AssignmentError, parse_assignments, parse_factors, parse_variants


@pytest.mark.parametrize(
    ("pair", "value"),
    [
        ("epochs=2", 2),
        ("lr=0.5", 0.5),
        ("loss=bce", "bce"),
        ("model.hidden=[1,2]", [1, 2]),
        ("lr=null", None),
        ("name=a=b", "a=b"),
    ],
)
def test_values_are_json_when_they_parse_and_strings_otherwise(pair: str, value: Any) -> None:
    key = pair.split("=")[0]
    assert parse_assignments([pair]) == {key: value}


@pytest.mark.parametrize("bad", ["epochs", "=1", " =1"])
def test_an_argument_without_a_key_is_refused_naming_the_flag(bad: str) -> None:
    with pytest.raises(AssignmentError, match=r"--set .*KEY=VALUE"):
        parse_assignments([bad], "--set")


def test_factors_take_comma_lists_or_json_lists() -> None:
    assert parse_factors(["loss=mse,bce", "lr=0.1,0.01", "model.hidden=[[100],[200,10]]"]) == {
        "loss": ["mse", "bce"],
        "lr": [0.1, 0.01],
        "model.hidden": [[100], [200, 10]],
    }
    with pytest.raises(AssignmentError, match="--factor"):
        parse_factors(["loss"])


@pytest.mark.parametrize(
    ("item", "meant"),
    [("epoch=1", "epochs"), ("batchsize=64", "batch_size"), ("hidden=[10]", "model.hidden")],
)
def test_a_mistyped_spec_field_says_what_was_meant(item: str, meant: str) -> None:
    with pytest.raises(AssignmentError, match=rf"did you mean {meant}\?"):
        parse_assignments([item], "--set")
    with pytest.raises(AssignmentError, match=rf"did you mean {meant}\?"):
        parse_factors([item.replace("=", "=1,")])


def test_variants_take_an_optional_label_then_changes() -> None:
    assert parse_variants([["rand1", "latent=uniform", "latent_size=1"], ["loss=mse"]]) == [
        {"label": "rand1", "overrides": {"latent": "uniform", "latent_size": 1}},
        {"overrides": {"loss": "mse"}},
    ]
    with pytest.raises(AssignmentError, match="--variant"):
        parse_variants([["only-a-label"]])
