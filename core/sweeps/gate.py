"""How many trials must have reached a rung before a sweep's pruner can stop one there.

A run of a sweep waits at a judged rung for the driver's verdict (worker/rungs.py); where no
verdict can stop it, the wait is pure overhead. Below this count no pruner of ours prunes:

- `paired` (core/sweeps/paired.py): nothing before the sweep's `prune_after` trials (default
  MIN_TRIALS) are at the rung, and never with the trial alone (no rival to pair with);
- Optuna's `asha`, `hyperband`, `median` (core/sweeps/study.py): successive halving keeps the
  top 1/3, at least one, so a trial alone at a rung is kept; the median pruner compares with
  complete trials, which have every rung. So two trials at least.

The count the worker compares with (core/store/sweep_rungs.py rung_gate) counts every trial with a
run at that rung, more than the driver counts (it needs every seed), never fewer: a run goes
on without waiting only where, at that moment, no verdict could have stopped it. A verdict
that stops it later still does, at its next judged rung or through the run's cancel.
"""

from __future__ import annotations

ETA = 3  # the paired band keeps the top 1/ETA of a rung, as successive halving with this factor
MIN_TRIALS = 2 * ETA  # trials at a rung (the judged one included) before any paired prune there


def least_at_rung(pruner: str, prune_after: int | None) -> int:
    """Trials at a rung (the judged one included) below which `pruner` prunes none there."""
    if pruner == "paired":
        return max(2, MIN_TRIALS if prune_after is None else prune_after)
    return 2
