"""Decide a sweep's paired prunes again from what the store holds, and compare.

Every decision the driver stored names the rung, the trials it was compared with (`rivals`:
those that had every seed's figure at that rung then) and what it found. Taking the stored
rung figures of the trial and of those rivals, core/sweeps/paired.py must give the very same
decision, to the last bit; and a trial's state must follow from its decisions (pruned at the
first rung that said prune, complete only after a keep at every rung but the last). Used by
the driver's tests and by every sweep drill, on GET /sweeps/{id}'s answer."""

from __future__ import annotations

from typing import Any

from core.sweeps import paired


def _at(trial: dict[str, Any], rung: int, objective: str) -> dict[int, float]:
    """The trial's per-seed figures at rung `rung` (its runs' stored rungs, in step order)."""
    return {
        run["seed"]: float(run["rungs"][rung][objective])
        for run in trial["runs"]
        if len(run["rungs"]) > rung
    }


def assert_decisions_reproduce(view: dict[str, Any]) -> int:
    """Check every decision of a paired sweep's answer; returns how many there were."""
    assert view["pruner"] == "paired", view["pruner"]
    objective, seeds = view["objective"], view["seeds"]
    looks = len(view["rungs"]) - 1
    by_number = {t["number"]: t for t in view["trials"]}
    checked = 0
    for trial in view["trials"]:
        decisions = trial["decisions"]
        where = f"trial {trial['number']}"
        assert [d["rung"] for d in decisions] == list(range(len(decisions))), (where, decisions)
        for stored in decisions:
            rung = stored["rung"]
            mine = _at(trial, rung, objective)
            assert sorted(mine) == seeds, (where, rung, "judged without every seed's figure")
            others = {n: _at(by_number[n], rung, objective) for n in stored["rivals"]}
            assert trial["number"] not in others and all(
                sorted(o) == seeds for o in others.values()
            )
            maximize = view["maximize"]
            again = paired.decide(
                mine, others, looks=looks, maximize=maximize, number=trial["number"],
                min_trials=stored["min_trials"],
            ).as_dict()  # fmt: skip
            assert {"rung": rung, **again} == stored, (where, rung, again, stored)
            checked += 1
        prunes = [d["prune"] for d in decisions]
        if trial["state"] == "pruned":
            assert prunes and prunes[-1] and not any(prunes[:-1]), (where, decisions)
            assert trial["pruned_at_rung"] == len(decisions) - 1, where
        else:
            assert not any(prunes) and trial["pruned_at_rung"] is None, (where, decisions)
        if trial["state"] == "complete":
            assert len(decisions) == looks, (where, "complete before every rung was judged")
    return checked
