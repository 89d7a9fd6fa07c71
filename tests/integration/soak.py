"""The soak's mix: a few clients acting at once on two API processes, for a set time.

Each client loops: it keeps MAX_UNFINISHED runs queued or running (submitting when fewer),
retires the oldest finished run once more than KEEP_FINISHED are kept (its curve checked, then
deleted, as a retention policy does), and otherwise polls one run, lists them, reads a curve,
follows an event stream for a second or two, asks a kept run's model for a prediction or reads
a finished run's stored predictions, and acts on runs as their fate says: about one in seven is
cancelled, one in twenty deleted with cancel=true while it still runs. Its requests alternate
between the two API processes. Some requests are refused on purpose, and their answer is
checked as any other: cancelling a finished run (409), deleting an unfinished one without
cancel=true (409), asking an unfinished run for a prediction (409).

A wrong answer, a 5xx, a transport error or a series that is not the uninterrupted run's is a
failure (Stats.failures, tests/integration/soak_client.py). The runs kept stay bounded, so the
store stays small. What the API processes cache by run (answers, packed series, stored
predictions; each cache bounded) still grows a little with every run that turns over, a few
tens of kB each until about a thousand runs: the runs last a second or two so that this stays
a small part of the 10 % that memory may grow.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.soak_client import CheckedRequests
from tests.integration.soak_ledger import Run, series_problem

CLIENTS = 4
MAX_UNFINISHED = 4
KEEP_FINISHED = 20
# The first runs are kept to the end, and are the ones asked for predictions: each API process
# keeps the decoded models it was asked about (up to 256 MB, api/services/predictors.py), so
# predictions on every run would measure that cache filling over the whole soak, not a leak.
KEEPERS = 4
FATES = {"run": 16, "cancel": 3, "delete": 1}
# Relative weights of what a client does when it neither submits nor retires.
ACTIONS = {
    "get": 25,
    "list": 8,
    "loss": 15,
    "events": 8,
    "predict": 8,
    "predictions": 5,
    "fate": 6,
    "cancel-finished": 2,
    "delete-unfinished": 2,
    "predict-unfinished": 2,
}
WARM_KINDS = {
    "submit",
    "get",
    "list",
    "loss",
    "events",
    "predict",
    "predictions",
    "delete",
    "cancel",
}
PIXELS = {"pixels": [round(i % 29 / 28, 3) for i in range(784)]}


class Mix(CheckedRequests):
    def __init__(self, urls: tuple[str, str], catalogue: list[dict[str, Any]], seed: int) -> None:
        self.urls = urls
        self.catalogue = catalogue
        self.seed = seed
        super().__init__()
        self._phase = 0
        self._actions: dict[str, Callable[[httpx.Client, random.Random], None]] = {
            "get": self._get,
            "list": self._list,
            "loss": self._loss,
            "events": self._events,
            "predict": self._predict,
            "predictions": self._predictions,
            "fate": self._fate,
            "cancel-finished": self._cancel_finished,
            "delete-unfinished": self._delete_unfinished,
            "predict-unfinished": self._predict_unfinished,
        }

    def run_for(self, seconds: float, or_until_warm: float = 0.0) -> float:
        """CLIENTS clients act for `seconds`, and on until every kind of request has been
        answered (`warm()`) if that takes longer, up to `or_until_warm` seconds; then they
        close their connections. Returns the seconds they acted."""
        self._phase += 1
        began = time.monotonic()
        stop = threading.Event()
        threads = [
            threading.Thread(target=self._client, args=(n, stop), daemon=True)
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        stop.wait(seconds)
        while not self.warm() and time.monotonic() - began < or_until_warm:
            stop.wait(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        return time.monotonic() - began

    def warm(self) -> bool:
        """Whether every kind of request that loads code or fills a cache on its first use has
        been answered: a warm-up ends no sooner."""
        with self.stats.lock:
            done = {kind for kind, status in self.stats.answers if status < 300}
        return done >= WARM_KINDS

    def _client(self, number: int, stop: threading.Event) -> None:
        rng = random.Random(f"{self.seed}-{self._phase}-{number}")
        clients = [httpx.Client(base_url=url, timeout=30.0) for url in self.urls]
        kinds, weights = list(ACTIONS), list(ACTIONS.values())
        turn = number
        try:
            while not stop.is_set():
                turn += 1
                client = clients[turn % 2]
                try:
                    if len(self.ledger.unfinished()) < MAX_UNFINISHED:
                        self._submit(client, rng)
                    elif not self._retire(client):
                        self._actions[rng.choices(kinds, weights)[0]](client, rng)
                except Exception:  # a bug here must show, not end this client quietly
                    self.stats.fail(traceback.format_exc())
                time.sleep(rng.uniform(0.005, 0.05))
        finally:
            for client in clients:
                client.close()

    def _submit(self, client: httpx.Client, rng: random.Random) -> None:
        body = rng.choice(self.catalogue)
        fate = rng.choices(list(FATES), list(FATES.values()))[0]
        if self.ledger.counts["submitted"] < KEEPERS:
            fate = "keep"  # submitted first, ended by the end of the warm-up
        response = self._call("submit", client, "POST", "/experiments", {201}, json=body)
        if response is not None:
            self.ledger.add(Run(response.json()["id"], body, fate))

    def _retire(self, client: httpx.Client) -> bool:
        run = self.ledger.oldest_finished_beyond(KEEP_FINISHED)
        if run is None:
            return False
        self.check_series(client, run)
        if self._call("delete", client, "DELETE", f"/experiments/{run.id}", {200}, run):
            run.removed = True
            self.ledger.count("deleted after the check")
        return True

    # The end of a phase ---------------------------------------------------------------------

    def drain(self, timeout_s: float = 180.0) -> list[str]:
        """With no client acting: wait until every run has ended and every run deleted with
        cancel=true is gone (404); returns those that were not by the timeout (stuck)."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.urls[0], timeout=30.0) as client:
            while True:
                listed = client.get("/experiments", params={"limit": 200})
                for item in listed.json()["items"]:
                    self.ledger.see(item)
                for run in self.ledger.runs_where(lambda r: r.gone and not r.removed):
                    if client.get(f"/experiments/{run.id}").status_code == 404:
                        run.removed = True
                waiting = self.ledger.runs_where(
                    lambda r: (not r.gone and not r.finished) or (r.gone and not r.removed)
                )
                if not waiting or time.monotonic() > deadline:
                    return [f"{run.id} {run.status} (gone: {run.gone})" for run in waiting]
                time.sleep(0.5)

    def check_kept(self) -> list[str]:
        """Checks the curve of every run still kept, and returns what the store holds that the
        clients do not know of, or lacks that they keep (nothing, if all is well)."""
        kept = self.ledger.runs_where(lambda r: not r.gone)
        with httpx.Client(base_url=self.urls[1], timeout=30.0) as client:
            for run in kept:
                self.check_series(client, run)
            listed = client.get("/experiments", params={"limit": 200}).json()["items"]
        stored = {item["id"] for item in listed}
        known = {run.id for run in kept}
        return [f"stored, not kept: {i}" for i in stored - known] + [
            f"kept, not stored: {i}" for i in known - stored
        ]

    def _get(self, client: httpx.Client, rng: random.Random) -> None:
        run = self.ledger.pick(rng, lambda r: True)
        if run is not None:
            answer = self._call("get", client, "GET", f"/experiments/{run.id}", {200}, run)
            if answer is not None and answer.status_code == 200:
                self.ledger.see(answer.json())

    def _list(self, client: httpx.Client, rng: random.Random) -> None:
        answer = self._call("list", client, "GET", "/experiments", {200}, params={"limit": 200})
        if answer is not None:
            for item in answer.json()["items"]:
                self.ledger.see(item)

    def _loss(self, client: httpx.Client, rng: random.Random) -> None:
        run = self.ledger.pick(rng, lambda r: True)
        if run is None:
            return
        answer = self._call("loss", client, "GET", f"/experiments/{run.id}/loss", {200}, run)
        if answer is not None and answer.status_code == 200:
            curve = answer.json()
            problem = series_problem(run, curve["steps"], curve["values"], whole=False)
            if problem:
                self.stats.fail(problem)

    def _events(self, client: httpx.Client, rng: random.Random) -> None:
        run = self.ledger.pick(rng, lambda r: not r.finished) or self.ledger.pick(
            rng, lambda r: True
        )
        if run is not None:
            self.follow_events(client, run, seconds=rng.uniform(0.5, 2.5))

    def _predict(self, client: httpx.Client, rng: random.Random) -> None:
        run = self.ledger.pick(rng, lambda r: r.fate == "keep" and r.status == "succeeded")
        if run is None:
            return
        path = f"/experiments/{run.id}/predict"
        answer = self._call("predict", client, "POST", path, {200}, run, json=PIXELS)
        if answer is not None and answer.status_code == 200 and len(answer.json()["outputs"]) != 10:
            self.stats.fail(f"predict {run.id}: {answer.text[:200]}")

    def _predictions(self, client: httpx.Client, rng: random.Random) -> None:
        run = self.ledger.pick(rng, lambda r: r.status == "succeeded")
        if run is not None:
            path = f"/experiments/{run.id}/predictions"
            self._call("predictions", client, "GET", path, {200}, run, params={"records": "0,7"})

    def _fate(self, client: httpx.Client, rng: random.Random) -> None:
        """Cancel, or delete with cancel=true, a run whose fate it is, while it is unfinished."""
        run = self.ledger.claim(rng, lambda r: r.fate in ("cancel", "delete") and not r.finished)
        if run is None:
            return
        if run.fate == "cancel":
            path = f"/experiments/{run.id}/cancel"
            answer = self._call("cancel", client, "POST", path, {200, 202}, run, {409}, json={})
            if answer is not None and answer.status_code != 409:
                self.ledger.see(answer.json())
            return
        run.gone = True
        path = f"/experiments/{run.id}"
        answer = self._call(
            "delete-cancel", client, "DELETE", path, {200, 202}, run, params={"cancel": "true"}
        )
        if answer is None:
            run.gone = False  # the failure is recorded; the run is still there
            return
        run.removed = answer.status_code == 200
        self.ledger.count("deleted with cancel=true")

    def _cancel_finished(self, client: httpx.Client, rng: random.Random) -> None:
        run = self.ledger.pick(rng, lambda r: r.finished)
        if run is not None:
            path = f"/experiments/{run.id}/cancel"
            self._call("cancel-finished", client, "POST", path, {409}, run, json={})

    def _delete_unfinished(self, client: httpx.Client, rng: random.Random) -> None:
        run = self.ledger.claim(rng, lambda r: r.fate == "run" and not r.finished)
        if run is None:
            return
        run.gone = True  # in case it ended meanwhile and is deleted
        path = f"/experiments/{run.id}"
        answer = self._call("delete-unfinished", client, "DELETE", path, {409}, run, {200})
        if answer is not None and answer.status_code == 200:
            run.removed = True
            self.ledger.count("deleted unchecked (ended just before)")
        else:
            run.gone = False
        run.acted = False

    def _predict_unfinished(self, client: httpx.Client, rng: random.Random) -> None:
        run = self.ledger.pick(rng, lambda r: not r.finished)
        if run is not None:
            # Ended meanwhile: a model (200), or none if it was cancelled before its first step.
            ended = {200, 404}
            path = f"/experiments/{run.id}/predict"
            self._call("predict-unfinished", client, "POST", path, {409}, run, ended, json=PIXELS)
