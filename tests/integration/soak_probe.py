"""The soak's stack and what it measures: two `serve --no-worker` and two `trainlab worker`
processes on one PostgreSQL database and one Redis of the soak's own, sampled every second.

Per process (each API, each worker's master, and each worker's pool processes summed, since a
pool process may be replaced): resident memory (VmRSS) and open file descriptors, read from
/proc. Per process too, its PostgreSQL connections: each process names itself in its database
URL (`application_name`), so pg_stat_activity tells them apart. And the Redis server's
clients, all processes together (Redis cannot tell whose a connection is).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.conftest import free_port
from tests.integration.services import DrillPostgres, DrillRedis
from tests.integration.soak_rules import Series
from tests.integration.stack import Stack, start_services_stack
from worker.shutdown import descendants

APIS = ("api0", "api1")
WORKERS = ("worker0", "worker1")
PROBE_NAME = "soak-probe"
# Deletions that wait for a run to stop are carried out by the API's retention pass: every 5 s
# here, so that the drain at the end does not wait out the default 30 s.
SOAK_SETTINGS = {"TRAINLAB_RETENTION_INTERVAL_S": "5"}


def _named(url: str, name: str) -> str:
    return f"{url}?application_name={name}"


@dataclass
class SoakStack:
    stack: Stack  # its `api` is api0, its workers worker0 and worker1
    api1: subprocess.Popen[bytes]
    urls: tuple[str, str]  # api0's and api1's base URLs


def start_soak_stack(workdir: Path, pg: DrillPostgres, broker: DrillRedis) -> SoakStack:
    url = pg.create_database(f"soak_{uuid.uuid4().hex[:8]}")
    stack = start_services_stack(
        workdir,
        database_url=_named(url, APIS[0]),
        broker_url=broker.url,
        workers=0,
        settings=SOAK_SETTINGS,
    )
    try:
        port = free_port()
        api1 = stack.spawn_with(
            ["serve", "--no-worker"],
            APIS[1],
            {"TRAINLAB_PORT": str(port), "TRAINLAB_DATABASE_URL": _named(url, APIS[1])},
        )
        for name in WORKERS:
            stack.start_worker(TRAINLAB_DATABASE_URL=_named(url, name))
        other = Stack(base_url=f"http://127.0.0.1:{port}", env=stack.env, workdir=workdir)
        other.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return SoakStack(stack, api1, (stack.base_url, other.base_url))


def process_roles(soak: SoakStack) -> dict[str, Callable[[], list[int]]]:
    """Each measured role and how to find its processes now."""
    api0, api1 = soak.stack.api_pid, soak.api1.pid
    roles: dict[str, Callable[[], list[int]]] = {
        APIS[0]: lambda: [api0],
        APIS[1]: lambda: [api1],
    }
    for name, worker in zip(WORKERS, soak.stack.workers, strict=True):
        roles[name] = lambda w=worker: [w.pid]  # type: ignore[misc]
        roles[f"{name} pool"] = lambda w=worker: descendants(w.pid)  # type: ignore[misc]
    return roles


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


class Sampler(threading.Thread):
    """Samples every figure each `interval_s` into `series` (name -> [(seconds, value)]),
    seconds counted from the sampler's start (`now()`)."""

    def __init__(
        self, soak: SoakStack, pg: DrillPostgres, broker: DrillRedis, interval_s: float = 1.0
    ) -> None:
        super().__init__(daemon=True, name="soak-sampler")
        self.roles = process_roles(soak)
        self.database = soak.stack.env["TRAINLAB_DATABASE_URL"].rsplit("/", 1)[1].split("?")[0]
        self.conninfo = f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        self.broker = broker.client()
        self.interval_s = interval_s
        self.series: dict[str, list[tuple[float, float]]] = {}
        self._origin = time.monotonic()
        self._done = threading.Event()
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self._origin

    def get(self, name: str) -> Series:
        with self._lock:
            return list(self.series[name])

    def names(self) -> list[str]:
        with self._lock:
            return list(self.series)

    def run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, application_name=PROBE_NAME) as probe:
            while not self._done.is_set():
                self._sample(probe)
                self._done.wait(self.interval_s)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=30)

    def _sample(self, probe: psycopg.Connection[tuple[object, ...]]) -> None:
        at = self.now()
        figures: dict[str, float] = {}
        for role, pids in self.roles.items():
            rss, fds = 0.0, 0
            for pid in pids():
                try:
                    rss, fds = rss + _rss_mb(pid), fds + _fds(pid)
                except (FileNotFoundError, ProcessLookupError):
                    continue  # it ended between the listing and the read
            figures[f"{role} rss MB"] = rss
            figures[f"{role} fds"] = fds
        connections = dict.fromkeys((*APIS, *WORKERS), 0)
        rows = probe.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name <> %s "
            "AND backend_type = 'client backend' GROUP BY 1",  # not autovacuum's
            [self.database, PROBE_NAME],
        ).fetchall()
        for name, count in rows:
            connections[str(name)] = int(str(count))
        for name, count in connections.items():
            figures[f"{name} pg connections"] = count
        # Every connected client but this probe's own.
        figures["redis clients"] = len(self.broker.client_list()) - 1
        with self._lock:
            for name, value in figures.items():
                self.series.setdefault(name, []).append((at, value))


# A line that says something went wrong: a traceback, or a record at ERROR or CRITICAL (the
# services' own format, "... ERROR name: ...", and Celery's, "[... ERROR/MainProcess] ...").
_TROUBLE = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b")
_WARNING = re.compile(r"\bWARNING\b")


def log_lines(workdir: Path) -> tuple[list[str], int]:
    """Every troubled line in the stack's logs (named by its log), and how many warnings."""
    trouble: list[str] = []
    warnings = 0
    for path in sorted(workdir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if _TROUBLE.search(line):
                trouble.append(f"{path.stem}: {line}")
            elif _WARNING.search(line):
                warnings += 1
    return trouble, warnings
