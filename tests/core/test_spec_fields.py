"""Every kind's fields are known to the one list the API's 422s and the CLI's typo check use."""

from __future__ import annotations

import pytest

from core import kinds
from core.presets import PRESETS
from core.spec_fields import did_you_mean, spec_paths


def _leaf_paths(value: object, prefix: str = "") -> list[str]:
    if not isinstance(value, dict):
        return [prefix.rstrip(".")]
    return [p for key, child in value.items() for p in _leaf_paths(child, f"{prefix}{key}.")]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_field_of_every_preset_is_a_known_path(preset: str) -> None:
    # A preset of any kind: the CLI must take `--set`/`--variant` on each of its fields.
    spec = kinds.parse(PRESETS[preset]).model_dump(mode="json")
    for path in _leaf_paths(spec):
        assert path in spec_paths(), path
        assert did_you_mean(path) is None, path


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("discriminator.normalisation", "discriminator.normalization"),
        ("generator.optimiser", "generator.optimizer"),
        ("latent_sise", "latent_size"),
        ("model.activaton", "model.activation"),
        ("epoch", "epochs"),
    ],
)
def test_a_typo_of_any_kind_names_the_field_meant(typo: str, meant: str) -> None:
    assert did_you_mean(typo) == meant


def test_each_path_is_listed_once() -> None:
    assert len(spec_paths()) == len(set(spec_paths()))
