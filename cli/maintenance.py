"""`trainlab prune`: remove old finished experiments, for operators, straight on the store
(TRAINLAB_DATABASE_URL), no server needed.

    trainlab prune --older-than 30d [--status failed,cancelled] [--dry-run]

removes every experiment that finished (with one of the given outcomes; all by default) before
the cutoff, with its rows and blobs, except members of an ablation (delete those through
DELETE /ablations/{id}); then runs the retention pass (runs whose deletion waited for their
end, loss rows of ended runs, their checkpoints). It prints each experiment it removes and the
payload bytes freed. Disk space comes back as the database reuses it (PostgreSQL after its
autovacuum; a SQLite file keeps its size until VACUUM, reusing the pages meanwhile).
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import Any

from core.settings import get_settings
from core.store.models import TERMINAL

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
BATCH = 100


def register(commands: Any) -> None:
    prune = commands.add_parser(
        "prune", help="Remove old finished experiments and redundant rows from the store."
    )
    prune.add_argument(
        "--older-than",
        required=True,
        type=duration,
        metavar="AGE",
        help="Finished longer ago than this: 30d, 12h, 90m, 2w, 45s.",
    )
    prune.add_argument(
        "--status",
        type=statuses,
        default=sorted(s.value for s in TERMINAL),
        metavar="LIST",
        help="Only these outcomes, comma-separated (default: succeeded,failed,cancelled).",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="Print what would go; change nothing."
    )
    prune.set_defaults(handler=prune_command)


def duration(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a number and a unit, e.g. 30d, 12h, 90m, 2w"
        )
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def statuses(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    known = sorted(s.value for s in TERMINAL)
    unknown = [s for s in chosen if s not in known]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"{text!r}: choose among {', '.join(known)} (only finished runs are pruned)"
        )
    return chosen


def human_bytes(amount: int) -> str:
    value = float(amount)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def prune_command(args: argparse.Namespace) -> int:
    from core.store import pruning, retention
    from core.store.clock import utcnow
    from core.store.session import make_engine, session_scope

    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    verb = "would remove" if args.dry_run else "removed"
    try:
        cutoff = utcnow() - args.older_than
        with session_scope(engine) as session:
            candidates, kept = pruning.prune_candidates(
                session, finished_before=cutoff, statuses=args.status
            )
        freed = 0
        for start in range(0, len(candidates), BATCH):
            chunk = candidates[start : start + BATCH]
            with session_scope(engine) as session:
                ids = [c.experiment_id for c in chunk]
                sizes = (
                    retention.footprints(session, ids)
                    if args.dry_run
                    else retention.remove_experiments(session, ids)
                )
            for candidate in chunk:
                size = sizes.get(candidate.experiment_id)
                if size is None:
                    continue  # removed meanwhile by someone else
                freed += size.bytes
                finished = candidate.finished_at.date() if candidate.finished_at else "?"
                label = f"  {candidate.name}" if candidate.name else ""
                print(
                    f"{verb} {candidate.experiment_id}  {candidate.status:<9} finished "
                    f"{finished}  {human_bytes(size.bytes)}{label}"
                )
        sweep = pruning.sweep_until_done(
            engine, keep_checkpoints=settings.keep_checkpoints, dry_run=args.dry_run
        )
    finally:
        engine.dispose()
    print(
        f"{verb} {len(candidates)} experiments finished before {cutoff:%Y-%m-%d %H:%M} UTC "
        f"({', '.join(args.status)}); kept {kept} that an ablation counts as members"
    )
    print(
        f"retention: {len(sweep.deleted)} experiments whose deletion waited for their end, "
        f"{len(sweep.compacted)} series compacted, {len(sweep.checkpoints_dropped)} "
        "checkpoints dropped"
    )
    total = freed + sweep.freed_bytes
    print(f"{'would free' if args.dry_run else 'freed'} {human_bytes(total)} ({total} bytes)")
    return 0
