"""`trainlab keys`: issue a key (printed once), list it by prefix, revoke it; as an operator
runs them, a subprocess against a migrated database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.store import keys
from core.store.session import make_engine, session_scope


def _trainlab(*argv: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINLAB_")}
    env["TRAINLAB_DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run(
        [sys.executable, "-m", "cli", *argv],
        cwd=db.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_create_list_revoke(tmp_path: Path) -> None:
    db = tmp_path / "trainlab.db"
    assert _trainlab("migrate", db=db).returncode == 0
    made = _trainlab("keys", "create", "--name", "alice", "--role", "admin", "--json", db=db)
    assert made.returncode == 0, made.stderr
    issued = json.loads(made.stdout)
    assert issued["key"].startswith(f"tlk_{issued['prefix']}_") and issued["role"] == "admin"
    engine = make_engine(f"sqlite:///{db}")
    try:
        with session_scope(engine) as session:
            found = keys.authenticate(session, issued["key"])
            assert found is not None and found.name == "alice"
    finally:
        engine.dispose()
    listed = _trainlab("keys", "list", "--json", db=db)
    rows = json.loads(listed.stdout)
    assert [(r["prefix"], r["name"], r["role"]) for r in rows] == [
        (issued["prefix"], "alice", "admin")
    ]
    assert issued["key"] not in listed.stdout  # the secret is never shown again
    human = _trainlab("keys", "create", "--name", "bob", db=db)
    assert "not shown again" in human.stdout and "tlk_" in human.stdout
    assert _trainlab("keys", "revoke", issued["prefix"], db=db).returncode == 0
    remaining = json.loads(_trainlab("keys", "list", "--json", db=db).stdout)
    assert [r["name"] for r in remaining] == ["bob"]
    unknown = _trainlab("keys", "revoke", "nope", db=db)
    assert unknown.returncode == 2 and "no API key" in unknown.stderr
    bad_name = _trainlab("keys", "create", "--name", "has space", db=db)
    assert bad_name.returncode == 2
