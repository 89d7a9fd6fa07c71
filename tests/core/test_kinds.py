"""The registry of kinds of job: the classifier is the first, a new kind is dispatched to by
its name and spec model (cost, series), an unknown kind is refused naming the kinds there are,
and specs stored before kinds existed keep their text, fingerprint and group key."""

from __future__ import annotations

import pytest

from core import kinds
from core.cost import CostLimits, estimate, violations
from core.kinds.classifier_cost import estimate as classifier_estimate
from core.presets import BOOK_CHAIN, build_spec
from core.spec import ExperimentSpec, group_key
from tests.conftest import make_settings
from tests.fake_kind import FAKE, FakeSpec

# Fingerprints and group keys of the presets as stored before there were kinds: runs are
# reused by fingerprint and fused by group key, so these must never move.
STORED = {
    "seed-adam": ("803af161063e2a05", "ea55c17f5258082b"),
    "seed-baseline": ("2078db74c8785e0c", "ed10323ea80a0e0b"),
    "seed-bce": ("598917481d6740a3", "9a16d6aa64522db0"),
    "seed-layernorm": ("167e91ef937e1516", "1665c85427c0a3a8"),
    "seed-leakyrelu": ("f92374344cd48473", "67551de6eb9c9daa"),
}


def test_the_classifier_is_the_first_kind() -> None:
    assert kinds.names() == ("classifier", "gan")
    classifier = kinds.get("classifier")
    assert classifier is kinds.CLASSIFIER
    assert classifier.spec_model is ExperimentSpec
    assert classifier.series == ("loss",)
    assert "model" in classifier.artifacts
    spec = build_spec("seed-adam")
    assert kinds.kind_of(spec) is classifier
    assert estimate(spec) == classifier_estimate(spec)


def test_a_spec_without_kind_is_a_classifier_and_stored_specs_do_not_change() -> None:
    assert kinds.kind_name({}) == "classifier"
    for name in BOOK_CHAIN:  # the presets every stored run so far came from
        spec = build_spec(name)
        assert kinds.parse(spec.model_dump(mode="json")) == spec
        assert "kind" not in spec.canonical_json()
        assert (spec.fingerprint(), group_key(spec)) == STORED[name], name
    assert build_spec("seed-adam").canonical_json() == (
        '{"batch_size":1,"dataset":"mnist","device":"auto","epochs":3,"log_every":10,'
        '"loss":"bce","lr":0.001,"model":{"activation":"leaky_relu","hidden":[200],'
        '"negative_slope":0.02,"normalization":"none","output":"sigmoid"},"momentum":0.0,'
        '"optimizer":"adam","seed":0,"test_limit":null,"train_limit":null,"weight_decay":0.0}'
    )


def test_a_registered_kind_gets_its_own_cost_and_outputs() -> None:
    with kinds.registered(FAKE):
        assert kinds.names() == ("classifier", "gan", "fake")
        spec = kinds.parse({"kind": "fake", "steps": 3})
        assert spec == FakeSpec(kind="fake", steps=3)
        assert kinds.kind_of(spec) is FAKE
        assert kinds.get("fake").series == ("loss_d", "loss_g")
        cost = estimate(spec)
        assert (cost.parameters, cost.steps) == (7, 3)
        # The bounds apply to every kind alike: 10,000 CPU-hours is over any run bound.
        found = violations(cost, CostLimits.from_settings(make_settings()))
        assert len(found) == 1 and "max_run_cpu_hours" in found[0]
        # A classifier spec still goes to the classifier.
        assert estimate(ExperimentSpec()) == classifier_estimate(ExperimentSpec())
    assert kinds.names() == ("classifier", "gan")


def test_unknown_kinds_are_refused_by_name() -> None:
    message = "unknown kind of job 'sweep': the kinds are classifier, gan"
    with pytest.raises(kinds.UnknownKindError, match=message):
        kinds.get("sweep")
    with pytest.raises(kinds.UnknownKindError, match=message):
        kinds.parse({"kind": "sweep", "epochs": 3})
    with pytest.raises(kinds.UnknownKindError, match="a spec's kind is a name, not int"):
        kinds.kind_name({"kind": 3})
    # A spec model nobody registered: FAKE's, outside its with-block.
    with pytest.raises(kinds.UnknownKindError, match="FakeSpec is the spec model of no"):
        estimate(FakeSpec(kind="fake"))


def test_a_kind_registers_once() -> None:
    with pytest.raises(ValueError, match="'classifier' is registered already"):
        kinds.register(kinds.CLASSIFIER)
    twin = kinds.Kind("twin", ExperimentSpec, classifier_estimate, ("loss",), "", (), ())
    with pytest.raises(ValueError, match="its spec model belongs to another kind"):
        kinds.register(twin)


def test_a_gan_prices_both_networks_both_series_and_its_samples() -> None:
    from core.cost import estimate
    from core.kinds.gan_spec import GanSpec
    from core.presets import build_any_spec

    spec = build_any_spec("cgan-mnist")
    assert isinstance(spec, GanSpec)
    cost = estimate(spec)
    assert cost.model_bytes > 4 * cost.parameters  # float32 weights of D and G, and a header
    assert cost.series_bytes == 8 * cost.loss_points > 0  # D's series and G's
    # No per-record outputs: the samples' pixels and (conditional) labels instead.
    assert cost.outputs_bytes == len(spec.sample_steps()) * spec.samples * (784 + 1)
    assert cost.stored_bytes == (
        cost.checkpoint_bytes + cost.model_bytes + cost.series_bytes + cost.outputs_bytes
    )
