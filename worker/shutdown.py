"""How worker processes stop: every one of them within the grace period of the first signal.

A Celery worker is a master process and its pool processes. The rules:

- Pool processes sit in process groups of their own. A signal to the group of `trainlab serve`
  or of the worker (Ctrl+C in a terminal, `kill -TERM -PGID`, a container runtime) reaches the
  master only, and the master alone decides what its pool does. A pool process killed behind
  its master's back in the middle of a warm shutdown is what left masters hung on a lock
  beside a zombie child.
- On its first SIGTERM, SIGINT or SIGQUIT the master (1) arms a kernel alarm for the grace
  period, with SIGALRM's default action, so the master is killed then whatever it is stuck
  on, Python locks included; its pool processes die with it (Celery gives each one a parent-
  death signal, SIGKILL); (2) asks every pool process to hand its run back (HAND_BACK_SIGNAL):
  the job stops at the next flush, saves its checkpoint and puts the experiment back in the
  queue; (3) lets Celery's own handler go on (warm shutdown for SIGTERM/SIGINT: it waits for
  the jobs, which are handing back; cold for SIGQUIT: it kills them, and the reaper resumes
  their runs from the last checkpoint).
- A worker started by `trainlab serve` also gets a parent-death signal (SIGTERM), so it stops
  even when `serve` is killed outright.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# billiard makes every terminating signal (SIGUSR2 included) raise SystemExit in a pool process,
# after Celery's initializer has run; SIGURG is none of those, nothing else sends it to a process
# that owns no socket, and its default action is to ignore it, so a pool process not yet ready
# for it is not hurt.
HAND_BACK_SIGNAL = signal.SIGURG

_hand_back = threading.Event()
_armed = threading.Event()


def hand_back_requested() -> bool:
    """True in a pool process whose master is shutting down: the running job hands back."""
    return _hand_back.is_set()


# In a pool process ---------------------------------------------------------------------------


def prepare_pool_process() -> None:
    """Called as a pool process starts (worker_process_init): its own process group, and the
    hand-back signal."""
    with contextlib.suppress(OSError):  # already a group leader, or not allowed: no harm
        os.setpgid(0, 0)
    signal.signal(HAND_BACK_SIGNAL, _on_hand_back)


def _on_hand_back(_signum: int, _frame: FrameType | None) -> None:
    _hand_back.set()


# In the master -----------------------------------------------------------------------------


def guard_master(grace_s: float) -> None:
    """Put the grace-period guard in front of the master's shutdown signal handlers. Called
    once Celery has installed its own (worker_ready); a signal before that ends the process
    by Python's defaults, and Celery's parent-death signal takes the pool processes along."""
    for signum in SHUTDOWN_SIGNALS:
        previous = signal.getsignal(signum)
        signal.signal(signum, partial(_on_shutdown_signal, grace_s, previous))


def _on_shutdown_signal(
    grace_s: float, previous: Any, signum: int, frame: FrameType | None
) -> None:
    begin_shutdown(grace_s)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def begin_shutdown(grace_s: float) -> None:
    """Arm the deadline (once) and ask the pool processes to hand their runs back."""
    if not _armed.is_set():
        _armed.set()
        arm_deadline(grace_s)
    for pid in children(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(pid, HAND_BACK_SIGNAL)


def arm_deadline(grace_s: float) -> None:
    """Have the kernel end this process `grace_s` from now unless it has exited: SIGALRM with
    its default action needs no Python code to run, so no lock can hold it up."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(max(1, math.ceil(grace_s)))


def exit_with_parent(parent_pid: int, signum: int = signal.SIGTERM) -> None:
    """Receive `signum` when the process that started this one dies (Linux; elsewhere the
    parent stops its children itself)."""
    from billiard.util import set_pdeathsig

    with contextlib.suppress(OSError, AttributeError):
        set_pdeathsig(signum)
    if os.getppid() != parent_pid:  # it died before the line above
        os.kill(os.getpid(), signum)


# Process trees (Linux /proc) ------------------------------------------------------------------


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (empty where there is no /proc)."""
    parents: dict[int, int] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return parents
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # The command name (field 2) may hold spaces and parentheses; fields after it don't.
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def children(pid: int) -> list[int]:
    return [child for child, parent in _parents().items() if parent == pid]


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before children."""
    parents = _parents()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop(0)
        kids = [child for child, parent in parents.items() if parent == current]
        found.extend(kids)
        frontier.extend(kids)
    return found


def kill_tree(pid: int, *, including_root: bool = True) -> None:
    """SIGKILL `pid` and everything below it, collected first (a child whose parent is killed
    first would be re-parented out of reach)."""
    targets = descendants(pid) + ([pid] if including_root else [])
    for target in targets:
        with contextlib.suppress(OSError):
            os.kill(target, signal.SIGKILL)
