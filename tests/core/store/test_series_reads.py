"""read_run_series against a store that changes between its statements: each statement sees
the store as of its start, so a run deleted after its status was read must read as gone,
never as a finished run with fewer points than it recorded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from core.store import retention, series
from core.store.session import session_scope
from tests.core.store.helpers import finish, running, write_loss

POINTS = 40


@contextmanager
def deleted_after_status_read(engine: Engine, experiment_id: str) -> Iterator[None]:
    """Deletes the experiment (committed, on another connection) right after the first read
    of its state, before the reader's next statement."""
    done = False

    def delete_once(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal done
        if done or "experiments.status" not in statement:
            return
        done = True
        with session_scope(engine) as other:
            retention.delete_experiment(other, experiment_id, cancel=False)

    event.listen(engine, "after_cursor_execute", delete_once)
    try:
        yield
    finally:
        event.remove(engine, "after_cursor_execute", delete_once)
    assert done, "the state read was not seen"


def test_a_run_deleted_between_its_status_and_its_points_reads_as_gone(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    write_loss(engine, experiment_id, attempt, range(1, POINTS + 1), [0.5] * POINTS)
    assert finish(engine, experiment_id, attempt)
    with deleted_after_status_read(engine, experiment_id), session_scope(engine) as session:
        read = series.read_run_series(session, experiment_id)
    # Gone, or (a store that reads one snapshot throughout) whole: never succeeded with none.
    assert read is None or read.steps.size == POINTS, (read and read.status, read and read.steps)


def test_a_finished_run_that_recorded_no_points_still_reads(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    assert finish(engine, experiment_id, attempt)
    with session_scope(engine) as session:
        read = series.read_run_series(session, experiment_id)
    assert read is not None and read.status == "succeeded" and read.steps.size == 0
