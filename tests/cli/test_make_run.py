"""`make run` ends with Ctrl-C: serve's clean exit on SIGINT (130) is a success for make, any
other failure of serve is still one. Run against a stand-in `trainlab` that exits as told."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
@pytest.mark.parametrize(("serve_exits", "make_succeeds"), [(130, True), (1, False), (0, True)])
def test_make_run_exits_0_when_serve_stopped_on_sigint(
    tmp_path: Path, serve_exits: int, make_succeeds: bool
) -> None:
    fake = tmp_path / "trainlab"
    fake.write_text(f"#!/bin/sh\nexit {serve_exits}\n")
    fake.chmod(0o755)
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "run", f"BIN={tmp_path}", "RUN_STAMP="],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode == 0) == make_succeeds, done.stderr
    assert ("Error 130" in done.stderr) is False
