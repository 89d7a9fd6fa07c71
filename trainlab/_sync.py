"""trainlab.Client: the API from Python, blocking (httpx.Client underneath)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

import trainlab._calls as _calls
import trainlab.models as models
from trainlab._ablations import Ablations
from trainlab._calls import NO_POINTS, Call
from trainlab._config import ClientConfig
from trainlab._gans import Gans
from trainlab._keys import Keys
from trainlab._policy import (
    POLL_S,
    RECONNECTS,
    STREAM_RETRY_S,
    RetryPolicy,
    download_target,
    remaining,
    stream_headers,
    stream_timeout,
)
from trainlab._sse import EventParser
from trainlab._sweeps import Sweeps
from trainlab.errors import (
    ConnectionFailed,
    RateLimited,
    ServerUnavailable,
    error_for,
)

T = TypeVar("T")
OnProgress = Callable[[int, int, str], None]


class Client:
    """`Client(base_url=..., api_key=...)`; both default to TRAINLAB_URL and
    TRAINLAB_API_KEY. Use it as a context manager, or call close()."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        config = ClientConfig.resolve(base_url, api_key)
        self.base_url = config.base_url
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries, max_retry_wait_s)
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.http = httpx.Client(
            base_url=config.base_url, headers=headers, timeout=timeout, transport=transport
        )
        self.experiments = Experiments(self)
        self.ablations = Ablations(self)
        self.sweeps = Sweeps(self)
        self.gans = Gans(self)
        self.keys = Keys(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def me(self) -> models.Caller:
        """Whose key this client sends (name null on an open server)."""
        return self.send(_calls.me())

    def send(self, call: Call[T]) -> T:
        """One call: retried after a 429 as the RetryPolicy allows, else an ApiError."""
        attempt = 0
        while True:
            try:
                response = self.http.request(call.method, call.path, **call.request_args())
            except httpx.TransportError as exc:
                raise ConnectionFailed(f"cannot reach {self.base_url}: {exc}") from exc
            if response.status_code < 400:
                return call.parse(response)
            delay = self.retry.delay(response, attempt)
            if delay is None:
                raise error_for(response)
            attempt += 1
            time.sleep(delay)


class Experiments:
    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        *,
        preset: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        spec: Mapping[str, Any] | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> models.Experiment:
        """Queue one run: a preset with overrides, or a full spec. A retry with the same
        `idempotency_key` (one is made when not given) answers the same run."""
        return self._c.send(
            _calls.create_experiment(
                preset=preset, overrides=overrides, spec=spec, name=name, tags=tags,
                idempotency_key=idempotency_key,
            )
        )  # fmt: skip

    def get(self, experiment_id: str) -> models.Experiment:
        return self._c.send(_calls.get_experiment(experiment_id))

    def list(self, *, page_size: int = 50, **filters: Any) -> Iterator[models.Experiment]:
        """Every experiment that matches (status, tag, preset, dataset, q, sort), page after
        page along the API's cursor."""
        cursor: str | None = None
        while True:
            call = _calls.list_experiments({**filters, "limit": page_size}, cursor)
            page = self._c.send(call)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def loss(
        self,
        experiment_id: str,
        *,
        max_points: int | None = None,
        since_step: int | None = None,
        series: str | None = None,
    ) -> models.LossSeries:
        """A run's loss series (a GAN's: `series="discriminator"` or `"generator"`)."""
        return self._c.send(_calls.loss(experiment_id, max_points, since_step, series))

    def predictions(
        self,
        experiment_id: str,
        *,
        records: Sequence[int] | str | None = None,
        misclassified: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> models.PredictionsPage:
        call = _calls.predictions(experiment_id, records, misclassified, offset, limit)
        return self._c.send(call)

    def follow(
        self,
        experiment_id: str,
        *,
        since_step: int | None = None,
        points: bool = True,
        timeout: float | None = None,
    ) -> Iterator[models.Event]:
        """The run's events (status, progress, loss, end) until `end`, or until `timeout`
        seconds have passed. A stream that drops, or that the server closes after its time,
        is resumed with Last-Event-ID: no loss point is missed or repeated. points=False:
        status and progress only."""
        last: int | None = since_step if points else NO_POINTS
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while (left := remaining(deadline)) is None or left > 0:
            parser = EventParser()
            got = False
            try:
                with self._c.http.stream(
                    "GET", _calls.events_path(experiment_id), headers=stream_headers(last),
                    timeout=stream_timeout(self._c.timeout, left),
                ) as response:  # fmt: skip
                    if response.status_code >= 400:
                        response.read()
                        raise error_for(response)
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        last = parser.last_id if parser.last_id is not None else last
                        if event is not None:
                            got = True
                            yield event
                            if event.kind == "end" or remaining(deadline) == 0:
                                return
            except httpx.TransportError as exc:
                if remaining(deadline) == 0:
                    return
                if failures >= RECONNECTS:
                    raise ConnectionFailed(f"event stream of {experiment_id}: {exc}") from exc
            failures = 0 if got else failures + 1
            time.sleep(min(parser.retry_s or POLL_S, remaining(deadline) or POLL_S))

    def wait(
        self,
        experiment_id: str,
        *,
        timeout: float | None = None,
        on_progress: OnProgress | None = None,
    ) -> models.Experiment:
        """The run once it has ended, noticed over its event stream (polling once a second
        while the stream can't be had). `on_progress(step, total, status)` as it moves."""
        deadline = None if timeout is None else time.monotonic() + timeout
        state = self.get(experiment_id)
        stream_after = 0.0
        while True:
            if on_progress is not None:
                on_progress(state.progress.step, state.progress.total, state.status)
            if state.finished:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"experiment {experiment_id} is still {state.status}")
            if time.monotonic() >= stream_after:
                try:
                    self._watch(experiment_id, state.status, deadline, on_progress)
                except (ConnectionFailed, RateLimited, ServerUnavailable):
                    stream_after = time.monotonic() + STREAM_RETRY_S
                    time.sleep(POLL_S)
            else:
                time.sleep(POLL_S)
            state = self.get(experiment_id)

    def _watch(
        self,
        experiment_id: str,
        status: str,
        deadline: float | None,
        on_progress: OnProgress | None,
    ) -> None:
        for event in self.follow(experiment_id, points=False, timeout=remaining(deadline)):
            if event.kind in ("status", "end"):
                status = str(event.data.get("status", status))
            elif event.kind == "progress" and on_progress is not None:
                on_progress(int(event.data["step"]), int(event.data["total_steps"]), status)
            if event.kind == "end":
                return

    def cancel(self, experiment_id: str) -> models.Experiment:
        return self._c.send(_calls.cancel_experiment(experiment_id))

    def delete(self, experiment_id: str, *, cancel: bool = False) -> models.ExperimentDeleted:
        return self._c.send(_calls.delete_experiment(experiment_id, cancel))

    def download_model(self, experiment_id: str, path: str | Path) -> Path:
        """The final weights (.safetensors), streamed to `path` (or into it, a folder, under
        the server's file name); returns the file written."""
        with self._c.http.stream("GET", _calls.model_path(experiment_id)) as response:
            if response.status_code >= 400:
                response.read()
                raise error_for(response)
            target = download_target(path, response)
            partial = target.with_name(target.name + ".part")
            with partial.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        partial.replace(target)
        return target

    def predict(
        self,
        experiment_id: str,
        *,
        pixels: Sequence[float] | Sequence[Sequence[float]] | None = None,
        png: bytes | None = None,
    ) -> models.Prediction:
        return self._c.send(_calls.predict(experiment_id, pixels, png))
