"""The paired-seed rule: a trial outside a rung's top band and clearly worse than its edge
stops; one in the band, a tied one, or one among too few trials does not."""

from __future__ import annotations

from core.spec import ExperimentSpec, group_key
from core.sweeps import paired


def _field(*means: float) -> dict[int, dict[int, float]]:
    """Trials 0.. with these means on three seeds (a small, fixed per-seed wobble)."""
    return {n: {0: m, 1: m + 0.01, 2: m - 0.005} for n, m in enumerate(means)}


# Six trials at the rung: the band keeps the top 6 // 3 = 2; its edge is the 2nd best.
SIX = _field(0.90, 0.86, 0.84, 0.83, 0.80, 0.79)


def test_a_clearly_worse_trial_outside_the_band_is_pruned() -> None:
    worse = {0: 0.40, 1: 0.45, 2: 0.41}
    decision = paired.decide(worse, SIX, looks=2, number=6)
    # Seven trials: the band keeps 2, its edge is trial 1 (0.86), not the best (trial 0).
    assert decision.prune and decision.reference == 1 and decision.band == 2
    assert decision.upper is not None and decision.upper < 0 and decision.alpha == 0.025
    assert decision.rivals == [0, 1, 2, 3, 4, 5]


def test_a_good_but_not_best_trial_inside_the_band_is_kept() -> None:
    # Clearly worse than the best (0.90, on every seed) but second of seven: ASHA keeps it,
    # and so does the band, where the old rule (against the best alone) stopped it.
    second = {0: 0.87, 1: 0.88, 2: 0.865}
    decision = paired.decide(second, SIX, looks=2, number=6)
    assert not decision.prune and "top 2 of 7" in decision.reason
    against_best = paired.decide(second, SIX, looks=2, number=6, eta=10**9, min_trials=2)
    assert against_best.prune and against_best.reference == 0


def test_outside_the_band_but_not_clearly_worse_than_its_edge_is_kept() -> None:
    # Below the edge (trial 1) on the mean, but not on every seed: no confidence.
    close = {0: 0.87, 1: 0.84, 2: 0.855}
    decision = paired.decide(close, SIX, looks=2, number=6)
    assert not decision.prune and decision.reference == 1
    assert decision.upper is not None and decision.upper >= 0


def test_too_few_trials_at_the_rung_never_prune() -> None:
    worse = {0: 0.40, 1: 0.45, 2: 0.41}
    few = {n: SIX[n] for n in range(paired.MIN_TRIALS - 2)}  # with this one: MIN_TRIALS - 1
    decision = paired.decide(worse, few, looks=2, number=9)
    assert not decision.prune and "none pruned before" in decision.reason
    # One more trial at the rung and the same figures are pruned.
    more = {**few, 7: SIX[paired.MIN_TRIALS - 2]}
    assert paired.decide(worse, more, looks=2, number=9).prune


def test_a_tied_trial_is_not_pruned() -> None:
    tied = {0: 0.855, 1: 0.87, 2: 0.86}
    assert not paired.decide(tied, SIX, looks=2, number=6).prune


def test_one_seed_or_no_rival_never_prunes() -> None:
    assert not paired.decide({0: 0.1}, {1: {0: 0.9}}, looks=2).prune
    assert not paired.decide({0: 0.1, 1: 0.1}, {}, looks=2).prune
    assert not paired.decide({0: 0.1, 1: 0.1}, {1: {0: 0.9}}, looks=2).prune  # seeds unshared


def test_loss_objectives_prune_the_higher_loss() -> None:
    losses = {n: {s: 0.5 + 0.01 * n + 0.001 * s for s in range(2)} for n in range(6)}
    decision = paired.decide({0: 2.0, 1: 2.1}, losses, looks=1, maximize=False, number=6)
    # Lowest loss first: the band keeps trials 0 and 1; its edge is trial 1.
    assert decision.prune and decision.reference == 1


def test_the_band_is_the_top_third() -> None:
    assert [paired.band_size(m) for m in (1, 2, 3, 5, 6, 9, 10)] == [1, 1, 1, 1, 2, 3, 3]


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
