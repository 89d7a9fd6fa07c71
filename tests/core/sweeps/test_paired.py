"""The paired-seed rule: a clearly worse trial stops at its first rung, a tied one does not."""

from __future__ import annotations

from core.spec import ExperimentSpec, group_key
from core.sweeps import paired


def test_a_clearly_worse_trial_is_pruned() -> None:
    best = {0: 0.80, 1: 0.82, 2: 0.81}
    worse = {0: 0.40, 1: 0.45, 2: 0.41}
    decision = paired.decide(worse, {0: best}, looks=2)
    assert decision.prune and decision.reference == 0 and decision.upper is not None
    assert decision.upper < 0 and decision.alpha == 0.025


def test_a_tied_trial_is_not_pruned() -> None:
    best = {0: 0.80, 1: 0.82, 2: 0.81}
    tied = {0: 0.81, 1: 0.80, 2: 0.815}
    assert not paired.decide(tied, {0: best}, looks=2).prune


def test_one_seed_or_no_rival_never_prunes() -> None:
    assert not paired.decide({0: 0.1}, {1: {0: 0.9}}, looks=2).prune
    assert not paired.decide({0: 0.1, 1: 0.1}, {}, looks=2).prune
    assert not paired.decide({0: 0.1, 1: 0.1}, {1: {0: 0.9}}, looks=2).prune  # seeds unshared


def test_loss_objectives_prune_the_higher_loss() -> None:
    decision = paired.decide({0: 2.0, 1: 2.1}, {3: {0: 0.5, 1: 0.6}}, looks=1, maximize=False)
    assert decision.prune and decision.reference == 3


def test_a_spec_without_validation_keeps_its_canonical_json() -> None:
    spec = ExperimentSpec()
    assert "validation" not in spec.canonical_json()
    held = ExperimentSpec(validation_records=100)
    assert held.fingerprint() != spec.fingerprint() and held.train_records == 59_900
    assert group_key(ExperimentSpec(seed=3)) == group_key(spec)


def test_a_decision_names_the_trials_it_was_compared_with() -> None:
    # Trial 1 lacks seed 1 at this rung: not a rival, and not named.
    decision = paired.decide(
        {0: 0.1, 1: 0.12}, {1: {0: 0.9}, 2: {0: 0.5, 1: 0.6}, 3: {0: 0.2, 1: 0.21}}, looks=2
    )
    assert decision.rivals == [2, 3] and decision.reference == 2
    assert decision.as_dict()["rivals"] == [2, 3]
    assert paired.decide({0: 0.1, 1: 0.1}, {1: {0: 0.9}}, looks=2).rivals == []
