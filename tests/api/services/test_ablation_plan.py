"""Ablation designs expand to the right arms and cells, and refuse what they must."""

from __future__ import annotations

import pydantic
import pytest

from api.services.ablation_plan import Plan, PlanError
from api.services.ablation_plan import build_plan as build_plan_within
from core.cost import CostLimits
from core.presets import BOOK_CHAIN, build_spec
from core.submissions import MAX_EXPERIMENTS, AblationRequest
from tests.conftest import make_settings

LIMITS = CostLimits.from_settings(make_settings())


def build_plan(request: AblationRequest) -> Plan:
    """The plan within the default cost bounds."""
    return build_plan_within(request, LIMITS)


def test_grid_is_the_full_product_in_factor_order_with_shared_seeds() -> None:
    request = AblationRequest(
        preset="seed-baseline",
        overrides={"epochs": 1, "train_limit": 500},
        factors={"loss": ["mse", "bce"], "model.activation": ["sigmoid", "leaky_relu"]},
        seeds=2,
    )
    plan = build_plan(request)
    assert [a.label for a in plan.arms] == [
        "loss=mse, model.activation=sigmoid",
        "loss=mse, model.activation=leaky_relu",
        "loss=bce, model.activation=sigmoid",
        "loss=bce, model.activation=leaky_relu",
    ]
    assert plan.seeds == [0, 1]
    assert [(c.arm, c.seed) for c in plan.cells] == [(a, s) for a in range(4) for s in (0, 1)]
    last = plan.cells[-1].spec
    assert (last.loss, last.model.activation, last.seed, last.epochs) == ("bce", "leaky_relu", 1, 1)
    assert "seed" not in plan.arms[0].spec
    # Shared seeds: the same seed list in every arm, so arms pair up per seed.
    for arm in range(4):
        assert sorted(c.seed for c in plan.cells if c.arm == arm) == [0, 1]


def test_book_design_is_the_five_preset_chain() -> None:
    plan = build_plan(AblationRequest(design="book", overrides={"epochs": 1}, seeds=[7, 11]))
    assert [a.label for a in plan.arms] == list(BOOK_CHAIN)
    assert len(plan.cells) == 10
    adam = next(c for c in plan.cells if c.arm == 3 and c.seed == 11)
    expected = build_spec("seed-adam", {"epochs": 1, "seed": 11})
    assert adam.spec.canonical_json() == expected.canonical_json()
    assert adam.preset == "seed-adam"


def test_a_grid_without_factors_is_one_arm_on_a_base_spec() -> None:
    plan = build_plan(AblationRequest(base={"optimizer": "adam"}, seeds=1))
    assert len(plan.arms) == 1 and plan.arms[0].label == "base"
    assert plan.cells[0].spec.optimizer == "adam"


def _refusal(**body: object) -> PlanError:
    with pytest.raises(PlanError) as caught:
        build_plan(AblationRequest.model_validate(body))
    return caught.value


def test_the_grid_size_times_seeds_is_bounded() -> None:
    error = _refusal(factors={"lr": [0.001 * (i + 1) for i in range(20)]}, seeds=11)
    assert error.loc == ("seeds",)
    assert "220 experiments" in error.message and str(MAX_EXPERIMENTS) in error.message
    huge = _refusal(factors={f"k{i}": list(range(20)) for i in range(5)})
    assert huge.loc == ("factors",)


def test_bad_arms_name_the_arm_and_the_field() -> None:
    error = _refusal(factors={"loss": ["mse", "cross_entropy"]})
    assert error.loc[:2] == ("arms", 1)
    assert "loss=cross_entropy" in error.message and "model.output" in error.message
    assert _refusal(factors={"model.hidden": [[0]]}).loc[:2] == ("arms", 0)
    assert _refusal(factors={"nonsense": [1]}).loc[:2] == ("arms", 0)


def test_requests_that_contradict_themselves_are_refused() -> None:
    assert _refusal(design="book", factors={"loss": ["bce"]}).loc == ("factors",)
    assert _refusal(preset="nope").loc == ("preset",)
    assert _refusal(preset="seed-bce", base={"loss": "mse"}).loc == ("base",)
    assert _refusal(factors={"seed": [1, 2]}).loc == ("factors", "seed")
    assert _refusal(overrides={"seed": 3}).loc == ("overrides", "seed")
    assert _refusal(factors={"loss": ["mse", "mse"]}).loc == ("factors", "loss")


@pytest.mark.parametrize("seeds", [0, 51, [], [1, 1], [-1]])
def test_seed_counts_and_lists_are_checked(seeds: object) -> None:
    with pytest.raises(pydantic.ValidationError, match="seeds"):
        AblationRequest.model_validate({"seeds": seeds})


# The book's rand(1) seed: one knob, three fields (the generator's input follows the seed).
RAND1 = {"latent": "uniform", "latent_size": 1, "generator.widths": [1, 200, 784]}


def test_variants_are_the_base_then_each_variant_alone() -> None:
    # The book's GAN knobs one at a time, on the same seeds as the base.
    plan = build_plan(
        AblationRequest.model_validate(
            {
                "design": "variants",
                "preset": "gan-mnist",
                "overrides": {"epochs": 1, "train_limit": 500},
                "variants": [
                    {"label": "rand(1)", "overrides": RAND1},
                    {"overrides": {"loss": "mse"}},
                ],
                "seeds": 2,
            }
        )
    )
    assert [a.label for a in plan.arms] == ["base", "rand(1)", "loss=mse"]
    assert [a.overrides for a in plan.arms][1] == RAND1
    assert [(c.arm, c.seed) for c in plan.cells] == [(a, s) for a in range(3) for s in (0, 1)]
    base, rand1, mse = (plan.cells[i].spec for i in (0, 2, 4))
    assert (base.latent, base.latent_size, base.loss) == ("normal", 100, "bce")
    # Each variant changes only its own knobs; the shared overrides reach every arm.
    assert (rand1.latent, rand1.latent_size, rand1.loss) == ("uniform", 1, "bce")
    assert (mse.latent, mse.latent_size, mse.loss) == ("normal", 100, "mse")
    assert {c.spec.train_limit for c in plan.cells} == {500}


def test_variants_are_refused_where_they_make_no_sense() -> None:
    assert _refusal(design="variants", preset="seed-bce").loc == ("variants",)
    one = [{"overrides": {"loss": "mse"}}]
    assert _refusal(variants=one, preset="seed-bce").loc == ("variants",)
    assert _refusal(design="book", variants=one).loc == ("variants",)
    both = _refusal(design="variants", preset="seed-bce", variants=one, factors={"lr": [0.1]})
    assert both.loc == ("factors",)
    twice = _refusal(design="variants", preset="seed-bce", variants=one + one)
    assert twice.loc == ("variants", 1, "overrides")
    named = [{"label": "x", "overrides": {"lr": 0.1}}, {"label": "x", "overrides": {"lr": 0.2}}]
    assert _refusal(design="variants", preset="seed-bce", variants=named).loc == (
        "variants",
        1,
        "label",
    )
    seeded = [{"overrides": {"seed": 4}}]
    assert _refusal(design="variants", preset="seed-bce", variants=seeded).loc == (
        "variants",
        0,
        "overrides",
        "seed",
    )
    bad = _refusal(design="variants", preset="seed-bce", variants=[{"overrides": {"loss": "x"}}])
    assert bad.loc[:3] == ("arms", 1, "loss") and "arm 1 (loss=x)" in bad.message


def test_variants_count_against_the_experiment_bound() -> None:
    many = [{"overrides": {"lr": 0.001 * (i + 1)}} for i in range(19)]
    error = _refusal(design="variants", preset="seed-bce", variants=many, seeds=11)
    assert error.loc == ("seeds",) and "20 arms x 11 seeds" in error.message
