"""The driver's kept study (core/sweeps/study_cache.py) asks what a study rebuilt from the same
stored trials asks: trial by trial, as trials run, report rungs and end, for each sampler."""

from __future__ import annotations

import random

import optuna
import pytest

from core.sweeps import study
from core.sweeps.space import Param, parse_space
from core.sweeps.study_cache import StudyCache

SPACE = parse_space({
    "lr": {"type": "log_uniform", "low": 1e-4, "high": 0.1},
    "model.activation": {"type": "choice", "values": ["sigmoid", "leaky_relu"]},
    "model.hidden": {"type": "choice", "values": [[100], [200]]},
})  # fmt: skip
GRID_SPACE = parse_space({
    "model.activation": {"type": "choice", "values": ["sigmoid", "leaky_relu"]},
    "model.hidden": {"type": "choice", "values": [[100], [200], [300]]},
})  # fmt: skip


def _progress(records: list[study.TrialRecord], rng: random.Random) -> None:
    """What the store would show a pass later: running trials report a rung or end."""
    for k, r in enumerate(records):
        if r.state not in ("queued", "running") or rng.random() < 0.3:
            continue
        step = study.rung_resource(len(r.intermediate))
        rungs = {**r.intermediate, step: rng.random()}
        state = rng.choice(["running", "pruned", "complete", "failed"])
        value = rng.random() if state == "complete" else None
        attrs = {**r.system_attrs, "seen": len(rungs)}
        records[k] = study.TrialRecord(r.number, r.params, state, value, rungs, attrs)


@pytest.mark.parametrize(
    ("sampler", "space"),
    [("tpe", SPACE), ("random", SPACE), ("cmaes", SPACE), ("qmc", SPACE), ("grid", GRID_SPACE)],
)
def test_the_kept_study_asks_what_a_rebuilt_one_asks(sampler: str, space: dict[str, Param]) -> None:
    rng = random.Random(4)
    cache = StudyCache()
    records: list[study.TrialRecord] = []
    for number in range(30 if sampler != "grid" else 6):
        rebuilt = study.ask(space, records, sampler=sampler, seed=3, maximize=True)
        kept = cache.ask("s", space, records, sampler=sampler, seed=3, maximize=True)
        assert kept == rebuilt, number
        records.append(study.TrialRecord(number, rebuilt[0], "queued", system_attrs=rebuilt[1]))
        _progress(records, rng)
    assert cache.rebuilds == 1  # built once, brought up to date from then on


def test_a_store_that_moved_otherwise_rebuilds() -> None:
    cache = StudyCache()
    records: list[study.TrialRecord] = []
    for number in range(3):
        params, attrs = cache.ask("s", SPACE, records, sampler="tpe", seed=1, maximize=True)
        records.append(study.TrialRecord(number, params, "complete", 0.5, {}, attrs))
    assert cache.rebuilds == 1
    # An ended trial's figure differs from what the kept study saw: built again.
    first = records[0]
    records[0] = study.TrialRecord(0, first.params, "complete", 0.9, {}, first.system_attrs)
    again = cache.ask("s", SPACE, records, sampler="tpe", seed=1, maximize=True)
    assert cache.rebuilds == 2
    assert again == study.ask(SPACE, records, sampler="tpe", seed=1, maximize=True)
    # A trial asked but never stored (its commit rolled back): fewer records, built again.
    retried = cache.ask("s", SPACE, records, sampler="tpe", seed=1, maximize=True)
    assert cache.rebuilds == 3 and retried == again
    cache.drop("s")
    cache.ask("s", SPACE, records, sampler="tpe", seed=1, maximize=True)
    assert cache.rebuilds == 4


def test_qmc_asks_distinct_points_across_rebuilds_as_one_long_lived_study() -> None:
    """A sweep's study is rebuilt from the store (another process, a restart): QMC must go on
    along its sequence, not start it again, and ask what one study kept all along asks."""
    distributions = {path: param.distribution() for path, param in SPACE.items()}
    with study.quiet():
        long_lived = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.QMCSampler(seed=2, scramble=True)
        )
        expected = [long_lived.ask(distributions).params for _ in range(8)]
    cache = StudyCache()
    records: list[study.TrialRecord] = []
    for number in range(8):
        rebuilt = study.ask(SPACE, records, sampler="qmc", seed=2, maximize=True)
        assert rebuilt[0] == expected[number], number
        assert cache.ask("s", SPACE, records, sampler="qmc", seed=2, maximize=True) == rebuilt
        state = "complete" if number % 2 else "running"
        records.append(study.TrialRecord(number, rebuilt[0], state, 0.5, {}, rebuilt[1]))
    lrs = [r.params["lr"] for r in records]
    assert len(set(lrs)) == len(lrs)  # no point asked twice
    assert cache.rebuilds == 1  # the kept study serves QMC too
