"""`trainlab backup` and `trainlab restore`: the store to one file and back, for operators,
straight on the store (TRAINLAB_DATABASE_URL), no server needed.

    trainlab backup --to PATH       # safe while runs train: a consistent snapshot
    trainlab restore --from PATH [--replace] [--fail-without-checkpoint]

A backup is pg_dump's custom format (PostgreSQL) or a SQLite database written by the online
backup API, and carries the schema revision. A restore goes into an empty database (or, with
--replace, one whose servers are stopped), migrates an older backup to this release's schema,
refuses a newer one, and puts the runs that were training back in the queue to resume from
their last checkpoint (core/store/restored.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from cli.maintenance import human_bytes
from core.settings import get_settings


def register(commands: Any) -> None:
    backup = commands.add_parser(
        "backup", help="Write a consistent snapshot of the store to a file (safe while running)."
    )
    backup.add_argument("--to", required=True, type=Path, metavar="PATH", dest="target")
    backup.set_defaults(handler=backup_command)
    restore = commands.add_parser(
        "restore", help="Load a backup into an empty store; runs that were training resume."
    )
    restore.add_argument("--from", required=True, type=Path, metavar="PATH", dest="source")
    restore.add_argument(
        "--replace",
        action="store_true",
        help="Drop what the target database holds first (stop its API and workers before).",
    )
    restore.add_argument(
        "--fail-without-checkpoint",
        action="store_true",
        help="Fail runs that were training with no checkpoint yet, instead of restarting them.",
    )
    restore.set_defaults(handler=restore_command)


def backup_command(args: argparse.Namespace) -> int:
    from core.store.backup import BackupRefused, backup

    settings = get_settings()
    started = time.monotonic()
    try:
        taken = backup(settings.effective_database_url, args.target, pg_bin_dir=settings.pg_bin_dir)
    except BackupRefused as refused:
        print(f"trainlab backup: {refused}", file=sys.stderr)
        return 1
    size = args.target.stat().st_size
    print(
        f"backed up the {taken.backend} store at schema revision {taken.revision} to "
        f"{args.target} ({human_bytes(size)}) in {time.monotonic() - started:.2f} s"
    )
    return 0


def restore_command(args: argparse.Namespace) -> int:
    from core.store.backup import BackupRefused, restore
    from core.store.restored import reconcile
    from core.store.session import make_engine, session_scope

    settings = get_settings()
    url = settings.effective_database_url
    started = time.monotonic()
    try:
        found = restore(url, args.source, replace=args.replace, pg_bin_dir=settings.pg_bin_dir)
    except BackupRefused as refused:
        print(f"trainlab restore: {refused}", file=sys.stderr)
        return 1
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            done = reconcile(session, fail_without_checkpoint=args.fail_without_checkpoint)
    finally:
        engine.dispose()
    print(
        f"restored the {found.backend} backup {args.source} (schema revision {found.revision}, "
        f"now at head) in {time.monotonic() - started:.2f} s"
    )
    print(
        f"runs that were training: {len(done.requeued)} requeued to resume from their "
        f"checkpoint, {len(done.restarted)} requeued from the start (no checkpoint yet), "
        f"{len(done.failed)} failed (no checkpoint), {len(done.cancelled)} cancelled"
    )
    for label, ids in (
        ("resumes", done.requeued),
        ("restarts", done.restarted),
        ("failed", done.failed),
        ("cancelled", done.cancelled),
    ):
        for experiment_id in ids:
            print(f"  {label} {experiment_id}")
    return 0
