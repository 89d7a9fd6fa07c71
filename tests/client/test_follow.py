"""follow() and wait(): the event stream of a run, resumed with Last-Event-ID each time the
server closes it (TRAINLAB_MAX_STREAM_S), so every loss point arrives exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from core.settings import Settings
from core.store import runs as run_store
from core.store.models import Status
from core.store.session import session_scope
from tests.api.recorded_runs import RecordedRuns, small_spec
from tests.client.conftest import serve
from trainlab import Client


@pytest.fixture
def short_streams(settings: Settings) -> Iterator[Client]:
    """A server whose streams close after 0.5 s: follow() must reconnect to see the end."""
    for url in serve(settings, max_stream_s=0.5):
        with Client(base_url=url) as client:
            yield client


def _finish_later(runs: RecordedRuns, experiment_id: str, attempt: int, total: int) -> None:
    def write() -> None:
        for chunk in range(1, 5):
            time.sleep(0.4)
            runs.write_points(experiment_id, attempt, [chunk * 10], [1.0 / chunk], total)
        labels = np.arange(50, dtype=np.uint8) % 10
        outputs = np.full((50, 10), 0.1, dtype=np.float32)
        with session_scope(runs.engine) as session:
            run_store.finish(
                session, experiment_id, attempt, status=Status.succeeded,
                metrics={"test_accuracy": 1.0}, fingerprint={}, outputs=outputs,
                labels=labels, predicted=labels, step=total,
            )  # fmt: skip

    threading.Thread(target=write, daemon=True).start()


def test_follow_resumes_across_closed_streams(short_streams: Client, runs: RecordedRuns) -> None:
    spec = small_spec()
    experiment_id, attempt = runs.start(spec)
    _finish_later(runs, experiment_id, attempt, spec.total_steps)
    steps: list[int] = []
    kinds: list[str] = []
    for event in short_streams.experiments.follow(experiment_id):
        kinds.append(event.kind)
        if event.kind == "loss":
            steps += event.data["steps"]
    assert steps == [10, 20, 30, 40]  # none missed, none repeated
    assert kinds[-1] == "end" and kinds.count("status") >= 2  # it did reconnect


def test_wait_returns_the_finished_run_and_reports_progress(
    short_streams: Client, runs: RecordedRuns
) -> None:
    spec = small_spec()
    experiment_id, attempt = runs.start(spec)
    _finish_later(runs, experiment_id, attempt, spec.total_steps)
    seen: list[tuple[int, int, str]] = []
    final = short_streams.experiments.wait(
        experiment_id, timeout=60, on_progress=lambda *a: seen.append(a)
    )
    assert final.status == "succeeded" and final.metrics == {"test_accuracy": 1.0}
    assert seen[-1][2] == "succeeded" and any(s[0] > 0 for s in seen)


def test_wait_times_out(client: Client, runs: RecordedRuns) -> None:
    experiment_id, _ = runs.start(small_spec())
    with pytest.raises(TimeoutError):
        client.experiments.wait(experiment_id, timeout=0.5)
