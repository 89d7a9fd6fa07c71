"""Requests whose answers the soak checks: each one's latency is recorded, and an answer that is
not the one expected (a wrong status, a 5xx, a transport error, a curve that is not the
uninterrupted run's) is a failure (Stats.failures). The mix (tests/integration/soak.py) is made
of these.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.integration.soak_ledger import Ledger, Run, Stats, series_problem
from tests.integration.stack import TERMINAL


class CheckedRequests:
    def __init__(self) -> None:
        self.ledger = Ledger()
        self.stats = Stats()

    def _call(
        self,
        kind: str,
        client: httpx.Client,
        method: str,
        path: str,
        expected: set[int],
        run: Run | None = None,
        if_ended: set[int] | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """The answer when its status is `expected`, or 404 for a run being deleted, or one of
        `if_ended` for a run that has ended meanwhile; else a failure, and None."""
        started = time.perf_counter()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.stats.fail(f"{kind} {method} {path}: {exc!r}")
            return None
        status = response.status_code
        self.stats.record(kind, time.perf_counter() - started, status)
        if status in expected or (run is not None and run.gone and status == 404):
            return response
        if run is not None and status in (if_ended or set()) and self._ended(client, run):
            return response
        self.stats.fail(f"{kind} {method} {path}: {status} {response.text[:300]}")
        return None

    def _ended(self, client: httpx.Client, run: Run, within_s: float = 2.0) -> bool:
        """Whether the run is seen ended (or deleted) within a poll window or a few."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            response = client.get(f"/experiments/{run.id}")
            if response.status_code == 404 and run.gone:
                return True
            if response.status_code == 200:
                self.ledger.see(response.json())
                if run.finished:
                    return True
            time.sleep(0.1)
        return False

    def check_series(self, client: httpx.Client, run: Run) -> None:
        """A finished run's whole curve: exact if it succeeded, a prefix if it was cancelled.
        The curve's own status says it is the finished one (the other API process may still
        answer its last window's read)."""
        for _ in range(20):
            loss = self._call("loss", client, "GET", f"/experiments/{run.id}/loss", {200}, run)
            if loss is None or loss.json()["status"] in TERMINAL:
                break
            time.sleep(0.1)
        if loss is None:
            return
        curve = loss.json()
        if curve["status"] != "succeeded" and curve["status"] != "cancelled":
            self.stats.fail(f"{run.id} ended {curve['status']}")
            return
        problem = series_problem(run, curve["steps"], curve["values"], whole=True)
        if problem:
            self.stats.fail(problem)
        else:
            self.ledger.count(f"checked whole ({curve['status']})")

    def follow_events(self, client: httpx.Client, run: Run, seconds: float) -> None:
        """Read a run's event stream for `seconds` (or to its end): its loss events, put together,
        must be a prefix of the run's series, and all of it when the stream ends `succeeded`."""
        steps: list[int] = []
        values: list[float] = []
        kind: str | None = None
        started = time.perf_counter()
        # A queued run sends nothing after its status: a read waits at most a second.
        timeout = httpx.Timeout(30.0, read=1.0)
        try:
            with client.stream("GET", f"/experiments/{run.id}/events", timeout=timeout) as response:
                self.stats.record("events", time.perf_counter() - started, response.status_code)
                if response.status_code != 200:
                    if not (run.gone and response.status_code == 404):
                        self.stats.fail(f"events {run.id}: {response.status_code}")
                    return
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        kind = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        data = json.loads(line.removeprefix("data:"))
                        if kind == "loss":
                            steps += data["steps"]
                            values += data["values"]
                        elif kind == "end":
                            self._ended_stream(run, data["status"], steps, values)
                            return
                    if time.perf_counter() - started > seconds:
                        break
        except httpx.ReadTimeout:
            pass  # nothing new within the read timeout: this reader's look is over
        except httpx.HTTPError as exc:
            self.stats.fail(f"events {run.id}: {exc!r}")
            return
        self._check(series_problem(run, steps, values, whole=False))

    def _ended_stream(self, run: Run, status: str, steps: list[int], values: list[float]) -> None:
        self.ledger.see({"id": run.id, "status": status, "attempt": 0})
        self._check(series_problem(run, steps, values, whole=True))

    def _check(self, problem: str | None) -> None:
        if problem:
            self.stats.fail(f"events: {problem}")
