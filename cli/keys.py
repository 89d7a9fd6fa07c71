"""`trainlab keys create|list|revoke`: API keys, managed by an operator on the server's host.

These commands talk to the database named by the settings directly (no server needed, and
none can be used before the first admin key exists). A new key is printed once and never
again: only its hash is stored.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from core.keys import Role
from core.settings import get_settings
from core.store import keys
from core.store.session import make_engine, session_scope

# Account names are what experiments record as their owner: short, printable, no spaces.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def register(commands: Any) -> None:
    group = commands.add_parser("keys", help="Issue, list and revoke API keys.")
    actions = group.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="Issue a key; it is printed once.")
    create.add_argument("--name", required=True, help="Account name, e.g. alice.")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.member.value)
    create.add_argument("--json", action="store_true", help="Print the key as JSON.")
    create.set_defaults(handler=create_command)
    listing = actions.add_parser("list", help="List keys (prefix, account, role, last use).")
    listing.add_argument("--all", action="store_true", help="Include revoked keys.")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=list_command)
    revoke = actions.add_parser("revoke", help="Revoke a key by its prefix or id.")
    revoke.add_argument("key", help="The prefix (as `keys list` shows it) or the id.")
    revoke.set_defaults(handler=revoke_command)


def create_command(args: argparse.Namespace) -> int:
    if not NAME.match(args.name):
        print("trainlab: --name: 1..64 letters, digits, '.', '_', '@' or '-'", file=sys.stderr)
        return 2
    engine = make_engine(get_settings().effective_database_url)
    try:
        with session_scope(engine) as session:
            key, token = keys.create_key(session, args.name, Role(args.role))
            prefix, role = key.prefix, key.role
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({"name": args.name, "role": role, "prefix": prefix, "key": token}))
        return 0
    print(f"API key for {args.name} ({role}), prefix {prefix}:")
    print(token)
    print("Store it now: it is not shown again. Send it as `Authorization: Bearer <key>`.")
    return 0


def list_command(args: argparse.Namespace) -> int:
    engine = make_engine(get_settings().effective_database_url)
    try:
        with session_scope(engine) as session:
            rows = [
                {
                    "prefix": k.prefix,
                    "id": k.id,
                    "name": k.name,
                    "role": k.role,
                    "created_at": k.created_at.isoformat(),
                    "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                    "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                }
                for k in keys.list_keys(session, include_revoked=args.all)
            ]
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        used = row["last_used_at"] or "never used"
        print(f"{row['prefix']}  {row['name']:<20} {row['role']:<7} {state}, {used}")
    if not rows:
        print("no keys" if args.all else "no active keys")
    return 0


def revoke_command(args: argparse.Namespace) -> int:
    engine = make_engine(get_settings().effective_database_url)
    try:
        with session_scope(engine) as session:
            key = keys.revoke_key(session, args.key)
            print(f"revoked {key.prefix} ({key.name}, {key.role})")
    except keys.KeyNotFound as exc:
        print(f"trainlab: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0
