"""When the event stream looks at the store again: every half second while a run is far from
its end, every 50 ms once its last steps are due (so `end` follows the outcome closely), and
never fast for longer than NEAR_END_S (a long evaluation, a stalled run)."""

from __future__ import annotations

import numpy as np

from api.routes.events import NEAR_END_POLL_S, NEAR_END_S, POLL_S, Pace, Snapshot

EMPTY = np.zeros(0)


def snap(step: int, total: int = 10_000, status: str = "running") -> Snapshot:
    return Snapshot(status, None, step, total, EMPTY, EMPTY)


def test_far_from_the_end_it_polls_at_the_normal_pace() -> None:
    pace = Pace()
    assert pace.next_poll_s(snap(0), now=0.0) == POLL_S
    assert pace.next_poll_s(snap(1_000), now=1.0) == POLL_S  # 9 s left at 1,000 steps/s


def test_the_last_second_of_steps_is_watched_closely() -> None:
    pace = Pace()
    pace.next_poll_s(snap(8_000), now=0.0)
    assert pace.next_poll_s(snap(9_200), now=1.0) == NEAR_END_POLL_S  # 0.8 s left
    assert pace.next_poll_s(snap(10_000), now=2.0) == NEAR_END_POLL_S  # evaluating


def test_fast_polling_is_bounded_in_time() -> None:
    pace = Pace()
    pace.next_poll_s(snap(10_000), now=0.0)
    assert pace.next_poll_s(snap(10_000), now=NEAR_END_S / 2) == NEAR_END_POLL_S
    assert pace.next_poll_s(snap(10_000), now=NEAR_END_S + 1) == POLL_S


def test_queued_or_unknown_totals_keep_the_normal_pace() -> None:
    pace = Pace()
    assert pace.next_poll_s(snap(0, status="queued"), now=0.0) == POLL_S
    assert pace.next_poll_s(snap(0, total=0), now=1.0) == POLL_S


def test_a_resumed_run_starts_its_pace_again() -> None:
    pace = Pace()
    pace.next_poll_s(snap(5_000), now=0.0)
    pace.next_poll_s(snap(9_000), now=1.0)  # fast: 4,000 steps/s
    assert pace.next_poll_s(snap(2_000), now=2.0) == POLL_S  # back at its checkpoint


def test_steps_taken_since_the_progress_last_moved_count() -> None:
    """Progress is stored about once a second: 1.5 s after a reading that left 2 s of steps,
    the end is due within the second."""
    pace = Pace()
    pace.next_poll_s(snap(0), now=0.0)
    assert pace.next_poll_s(snap(2_000), now=1.0) == POLL_S  # 8 s left at 1,000 steps/s
    assert pace.next_poll_s(snap(8_000), now=7.0) == POLL_S  # 2 s left
    assert pace.next_poll_s(snap(8_000), now=8.5) == NEAR_END_POLL_S  # 0.5 s left by now
