"""The shutdown rules, with real processes and real signals: the kernel alarm ends a process
however it hangs; the guard in front of a master's handlers asks its children to hand back and
ends a master whose own shutdown hangs; a process started with exit_with_parent stops when its
parent is killed outright; kill_tree leaves nothing of a tree behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import REPO
from worker.shutdown import descendants, kill_tree


def _python(code: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env)


def _wait_for(path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} never written")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_deadline_ends_a_process_stuck_on_a_lock() -> None:
    stuck = _python(
        """
        import threading
        from worker.shutdown import arm_deadline
        lock = threading.Lock()
        lock.acquire()
        arm_deadline(1)
        lock.acquire()  # never released: a hang no Python code can get out of
        """
    )
    started = time.monotonic()
    assert stuck.wait(timeout=20) == -signal.SIGALRM
    assert time.monotonic() - started < 10


def test_a_master_whose_shutdown_hangs_still_ends_and_its_children_hand_back(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "handed-back"
    ready = tmp_path / "ready"
    master = _python(
        """
        import os, signal, sys, threading, time
        from pathlib import Path
        from worker import shutdown
        marker, ready = Path(sys.argv[1]), Path(sys.argv[2])
        child = os.fork()
        if child == 0:  # a pool process
            shutdown.prepare_pool_process()
            while not shutdown.hand_back_requested():
                time.sleep(0.01)
            marker.write_text(str(os.getpgid(0) == os.getpid()))
            time.sleep(60)
            os._exit(0)
        hang = threading.Lock()
        hang.acquire()
        # Celery's handler, stuck: the master would wait for ever.
        signal.signal(signal.SIGTERM, lambda *_: hang.acquire())
        shutdown.guard_master(1)
        ready.write_text(str(child))
        while True:
            time.sleep(1)
        """,
        str(marker),
        str(ready),
    )
    child = int(_wait_for(ready))
    try:
        started = time.monotonic()
        master.send_signal(signal.SIGTERM)
        assert master.wait(timeout=20) == -signal.SIGALRM
        assert time.monotonic() - started < 10
        # The child got the hand-back signal, in a process group of its own.
        assert _wait_for(marker) == "True"
    finally:
        kill_tree(child)


def test_a_process_started_with_exit_with_parent_stops_with_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    parent = _python(
        """
        import os, subprocess, sys, textwrap, time
        code = textwrap.dedent('''
            import os, sys, time
            from worker.shutdown import exit_with_parent
            exit_with_parent(int(sys.argv[1]))
            open(sys.argv[2], "w").write(str(os.getpid()))
            time.sleep(120)
        ''')
        subprocess.Popen([sys.executable, "-c", code, str(os.getpid()), sys.argv[1]])
        time.sleep(120)
        """,
        str(pid_file),
    )
    grandchild = int(_wait_for(pid_file))
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(grandchild)
    finally:
        kill_tree(grandchild)


def test_kill_tree_leaves_nothing_behind() -> None:
    shell = subprocess.Popen(["sh", "-c", "sleep 100 & sleep 100 & wait"])
    deadline = time.monotonic() + 10
    while len(descendants(shell.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    below = descendants(shell.pid)
    assert len(below) == 2
    kill_tree(shell.pid)
    shell.wait(timeout=10)  # killed, or ended on its own once its children were
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in below) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(_alive(pid) for pid in below)
