"""Pruning rules replayed offline on the sweep study's ground truth (bench/sweep_grid.py).

The ground truth holds every configuration's validation accuracy at each rung on each of its
5 seeds, so a sweep's pruning can be replayed in a second without training: trials arrive
one at a time (configurations drawn uniformly with replacement, as a random search), each is
judged at rungs 1/9 and 1/3 against the trials before it that reached that rung, and trials
start until the steps trained reach the budget. Rules replayed:
- `paired`: core/sweeps/paired.py as the service runs it (band of the top 1/3, its edge on
  the paired seeds, no prune before MIN_TRIALS trials at a rung), on the first `seeds` seeds;
- `paired-best`: the rule it replaced, the same test against the single best trial at the
  rung (a band of one, from the second trial on);
- `asha`: successive halving on one seed (the top max(1, m // 3) of a rung go on).
Per rule: trials, how many trials of a true top-3 configuration were pruned, and the picks'
true ranks. It ranks rules, quickly; the live bench (bench/sweep_bench.py) measures them.

Usage: python bench/sweep_replay.py [--truth bench/results/sweep-truth-*.json] [--reps 200]
       [--budget 1.5] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.sweep_grid import RUNGS, Truth, _ranked  # noqa: E402
from core.sweeps import paired  # noqa: E402

FRACTIONS = [3.0 ** (k - RUNGS + 1) for k in range(RUNGS)]


def judge(rule: str, mine: dict[int, float], at_rung: dict[int, dict[int, float]], n: int) -> bool:
    if rule == "asha":
        value = mine[0]
        ranked = sorted([v[0] for v in at_rung.values()] + [value], reverse=True)
        return value < ranked[paired.band_size(len(ranked)) - 1]
    if rule == "paired-best":
        found = paired.decide(mine, at_rung, looks=RUNGS - 1, number=n, eta=10**9, min_trials=2)
    else:
        found = paired.decide(mine, at_rung, looks=RUNGS - 1, number=n)
    return found.prune


def replay(
    truth: Truth, rule: str, rng: random.Random, budget: float, seeds: int
) -> dict[str, Any]:
    """One search; `budget` in full one-seed runs."""
    width = 1 if rule == "asha" else seeds
    offset = rng.randrange(len(truth.seeds)) if rule == "asha" else 0
    configs = sorted(truth.figures)
    top = set(truth.top(3))
    reached: list[dict[int, dict[int, float]]] = [{} for _ in range(RUNGS)]
    used, log = 0.0, list[tuple[str, str]]()
    while used < budget:
        config = rng.choice(configs)
        number = len(log)
        state = "complete"
        for rung in range(RUNGS):
            figures = truth.figures[config][rung]
            mine = {s: figures[(offset + s) % len(figures)] for s in range(width)}
            used_here = FRACTIONS[rung] - (FRACTIONS[rung - 1] if rung else 0.0)
            used += width * used_here
            if rung < RUNGS - 1 and judge(rule, mine, reached[rung], number):
                reached[rung][number] = mine
                state = "pruned"
                break
            reached[rung][number] = mine
        log.append((config, state))
    complete = [c for c, s in log if s == "complete"]
    pick = max(complete, key=lambda c: statistics.fmean(truth.figures[c][-1])) if complete else None
    return {
        "trials": len(log),
        "top_trials": sum(c in top for c, _ in log),
        "top_pruned": sum(c in top and s == "pruned" for c, s in log),
        "rank": truth.rank(pick) if pick else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    found = sorted((REPO / "bench" / "results").glob("sweep-truth-*.json"))
    p.add_argument("--truth", type=Path, default=found[-1] if found else None)
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--budget", type=float, default=1.5, help="x the one-seed grid's steps")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    truth = _ranked(Truth(**json.loads(args.truth.read_text())))
    runs = args.budget * len(truth.figures)
    print(f"{len(truth.figures)} configurations; budget {runs:.0f} one-seed runs")
    for rule in ("paired", "paired-best", "asha"):
        rows = [replay(truth, rule, random.Random(k), runs, args.seeds) for k in range(args.reps)]
        ranks = [r["rank"] for r in rows if r["rank"]]
        print(
            f"{rule:<12} trials {statistics.fmean(r['trials'] for r in rows):6.1f}  top-3 pruned "
            f"{sum(r['top_pruned'] for r in rows)} of {sum(r['top_trials'] for r in rows)}  "
            f"pick's rank median {statistics.median(ranks)}, top-3 {sum(k <= 3 for k in ranks)}/"
            f"{len(rows)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
