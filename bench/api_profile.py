"""`--profile`: py-spy sampling the API and the worker during the end-to-end run, so that the
time breakdown can be checked against where the processes really spend their CPU.

py-spy attaches to a running pid (ptrace; in a container that may need CAP_SYS_PTRACE) and
with --nonblocking reads the target's memory without pausing it, so the profile does not slow
the run it describes. Each recorder runs pinned to the client cores, off the server's core.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

RATE_HZ = 100


@dataclass
class Profiler:
    outdir: Path
    client_cpus: str | None
    recorders: dict[str, tuple[subprocess.Popen[bytes], Path]] = field(default_factory=dict)

    def start(self, name: str, pid: int, subprocesses: bool = False, gil: bool = False) -> None:
        # The virtual environment's own bin first: it is not on PATH when run as .venv/bin/python.
        beside = Path(sys.executable).parent / "py-spy"
        spy = str(beside) if beside.exists() else shutil.which("py-spy")
        if spy is None:
            print("--profile: py-spy not found (pip install py-spy); no profile")
            return
        out = self.outdir / f"{name}.folded"
        command = [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
        command += ["--rate", str(RATE_HZ), "--nonblocking"]
        # A Celery worker trains in its pool children, not in the process we know the pid of.
        command += ["--subprocesses"] if subprocesses else []
        # Only threads holding the GIL: the API's work is Python, and without this its idle
        # event loop and thread pool (waiting in epoll or on a queue) top the list, because
        # --nonblocking sampling can't always tell a waiting thread from a running one. Not
        # for the worker, whose torch kernels run with the GIL released.
        command += ["--gil"] if gil else []
        if self.client_cpus:
            command = ["taskset", "-c", self.client_cpus, *command]
        log = (self.outdir / f"{name}.log").open("wb")
        self.recorders[name] = (subprocess.Popen(command, stdout=log, stderr=log), out)

    def stop(self) -> dict[str, tuple[int, list[tuple[str, float]]]]:
        """Stop every recorder (SIGINT: py-spy writes its file and exits) and return each
        one's top functions by own time."""
        tops: dict[str, tuple[int, list[tuple[str, float]]]] = {}
        for name, (process, out) in self.recorders.items():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            if process.poll() is None:
                process.kill()
            tops[name] = top_own_time(out) if out.exists() else (0, [])
            if not tops[name][0]:
                log = (self.outdir / f"{name}.log").read_text(errors="replace")
                print(f"--profile: no samples for {name}: {log.strip()[-300:]}")
        self.recorders.clear()
        return tops


def top_own_time(folded: Path, limit: int = 12) -> tuple[int, list[tuple[str, float]]]:
    """Functions by own (leaf) time, as a share of all samples: py-spy's raw format is one
    `frame;frame;...;leaf count` line per distinct stack, root first. Returns the number of
    samples too: a few dozen (a short run's API) say little."""
    own: Counter[str] = Counter()
    total = 0
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        # `func (path/file.py:123)`: one entry per function, not per line of it.
        name, _, where = leaf.partition(" (")
        own[f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})"] += int(count)
        total += int(count)
    return total, [(name, count / total) for name, count in own.most_common(limit)]


def print_tops(tops: dict[str, tuple[int, list[tuple[str, float]]]]) -> None:
    for name, (samples, rows) in tops.items():
        if not rows:
            continue
        print(f"\nprofile: {name}, top functions by own time (share of {samples} samples)")
        for function, share in rows:
            print(f"  {share * 100:5.1f}%  {function}")
