"""`trainlab sweep`: start a hyperparameter search on a server through trainlab.Client, and
with --wait follow it (a bar over its trials, polled once a second) to its leaderboard.

The leaderboard's figures are those the sweep decided on (a classifier's validation figures, a
GAN's judge's): each trial's objective at the last rung every one of its seeds reached (the
full budget for a complete trial, the rung it was pruned at otherwise), mean and 95%
t-interval over its seeds (the mean alone where scipy is missing: the client alone, `pip
install trainlab`). Test figures come only from confirming the winners
(client.sweeps.confirm, an ablation).
Exit codes as `trainlab submit`: 0 succeeded, 1 cancelled or failed, 2 refused, 3 unreachable.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from cli.assignments import AssignmentError, parse_assignments
from cli.client import _bar, _client, _guarded, _with_server
from core.sweeps.objectives import OBJECTIVES, maximizes, percent
from trainlab.sweep_models import Sweep, Trial

CONFIDENCE = 0.95
# Complete trials first (best first), then the pruned ones (latest rung first), then the rest.
_ORDER = {"complete": 0, "pruned": 1}


def sweep_options(args: argparse.Namespace) -> dict[str, Any]:
    try:
        space = json.loads(Path(args.space).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AssignmentError(f"--space {args.space}: {exc}") from None
    if not isinstance(space, dict):
        raise AssignmentError(f"--space {args.space}: a JSON object of spec path -> range")
    options: dict[str, Any] = {
        "space": space, "preset": args.preset, "overrides": parse_assignments(args.set, "--set"),
        "name": args.name, "seeds": args.seeds, "max_trials": args.max_trials,
        "sampler": args.sampler, "pruner": args.pruner, "parallel": args.parallel,
        "validation_records": args.validation_records, "objective": args.objective,
        "prune_after": args.prune_after,
    }  # fmt: skip
    return options


def trial_figure(trial: Trial, objective: str) -> tuple[int, list[float]]:
    """(rung index, per-seed figures) at the last rung every seed of the trial reached."""
    reached = min((len(r.rungs) for r in trial.runs), default=0)
    if reached == 0:
        return -1, []
    return reached - 1, [float(r.rungs[reached - 1][objective]) for r in trial.runs]


def _interval(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    try:
        from scipy import stats
    except ModuleNotFoundError:  # the client alone (`pip install trainlab`): the mean only
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1))
    return mean, t * sd / math.sqrt(len(values))


def _show(value: float | None, objective: str) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}" if percent(objective) else f"{value:.4f}"


def leaderboard(sweep: Sweep) -> str:
    """The trials as a fixed-width table, best first."""
    maximize = maximizes(sweep.objective)
    rows = []
    for trial in sweep.trials:
        rung, values = trial_figure(trial, sweep.objective)
        mean, half = _interval(values)
        sign = -1 if maximize else 1
        key = (_ORDER.get(trial.state, 2), -rung, sign * mean if mean is not None else math.inf)
        figure = _show(mean, sweep.objective)
        if half is not None:
            figure += f" ± {_show(half, sweep.objective)}"
        pruned = "-" if trial.pruned_at_rung is None else str(trial.pruned_at_rung)
        params = ", ".join(f"{k}={v}" for k, v in sorted(trial.params.items()))
        rows.append((key, [str(trial.number), trial.state, pruned, params, figure]))
    rows.sort(key=lambda row: row[0])
    unit = "%" if percent(sweep.objective) else ""
    head = ["trial", "state", "pruned rung", "params", f"{sweep.objective}{unit} (95% CI)"]
    table = [head, *[cells for _, cells in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    budget = sweep.budget
    lines.append(
        f"sweep {sweep.id}: {sweep.status}, {budget.trials} trials, "
        f"{budget.steps} of {budget.steps_if_full} steps ({sweep.figures} figures)"
    )
    return "\n".join(lines)


def sweep_command(args: argparse.Namespace) -> int:
    options = sweep_options(args)
    with _client(args) as client:
        sweep = client.sweeps.create(**options)
        print(f"sweep {sweep.id}: {sweep.max_trials} trials x {len(sweep.seeds)} seeds")
        if not args.wait:
            return 0
        bar, show = _bar("trials", 0, sweep.max_trials, ended=False)
        with bar:
            final = client.sweeps.wait(sweep.id, on_progress=show)
    print(leaderboard(final))
    return 0 if final.status == "succeeded" else 1


def register(commands: Any) -> None:
    sweep = commands.add_parser("sweep", help="Run a hyperparameter sweep on a server.")
    sweep.add_argument("--preset", required=True, help="Base preset of every trial.")
    sweep.add_argument(
        "--space", required=True, metavar="FILE", help='JSON: {"lr": {"type": "log_uniform", ...}}.'
    )
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    sweep.add_argument("--seeds", type=int, default=3, help="Paired seeds per trial (0..N-1).")
    sweep.add_argument("--max-trials", type=int, default=20)
    sweep.add_argument("--sampler", choices=["tpe", "random", "grid", "qmc", "cmaes"])
    sweep.add_argument("--pruner", choices=["paired", "asha", "hyperband", "median", "none"])
    sweep.add_argument("--parallel", type=int, default=None, help="Trials running at once.")
    sweep.add_argument(
        "--prune-after",
        type=int,
        default=None,
        help="Trials that must reach a rung before the paired pruner stops any there.",
    )
    sweep.add_argument("--validation-records", type=int, default=None)
    sweep.add_argument(
        "--objective",
        choices=list(OBJECTIVES),
        help="default: validation_accuracy for a classifier, entropy_bits for a GAN",
    )
    sweep.add_argument("--name")
    sweep.add_argument("--wait", action="store_true", help="Show progress, then the leaderboard.")
    sweep.add_argument("--server", default=None, help="Server URL (default: from settings).")
    sweep.add_argument("--api-key", default=None, help="API key (default: TRAINLAB_API_KEY).")
    sweep.set_defaults(handler=_with_server(_guarded(sweep_command)))
