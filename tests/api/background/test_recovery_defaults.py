"""The shipped timing defaults are the ones the fault drills measured (README: settings and
reliability). Raising one past what was drilled fails here, before an operator finds out."""

from __future__ import annotations

from api.background.reaper import DISPATCH_GRACE_S
from core.settings import Settings

# The defaults `make drills` ran with ([defaults] variants), and the worst recovery each
# path allows with them; the drills measured at most the figures in the README.
DRILLED = {
    "heartbeat_timeout_s": 15.0,
    "reaper_interval_s": 5.0,
    "resend_lost_after_s": 10.0,
    "flush_interval_s": 1.0,
}
GOAL_S = 30.0


def test_no_timing_default_is_above_what_the_drills_ran() -> None:
    defaults = Settings.model_fields
    for name, drilled in DRILLED.items():
        assert defaults[name].default <= drilled, f"{name}: drills ran at {drilled}"


def test_every_recovery_path_fits_the_goal_at_the_defaults() -> None:
    heartbeat, interval, resend, flush = (Settings.model_fields[n].default for n in DRILLED)
    # A dead worker's run: silent for the timeout (plus the beat in flight), seen by a pass.
    assert heartbeat + flush + interval <= GOAL_S
    # A lost message: its delivery (or send) older than the bound, seen by a pass (an audit
    # runs every pass while the bound / 4 is shorter than a pass).
    assert resend / 4 <= interval
    assert resend + interval <= GOAL_S
    # An answered run its API process died before sending: the grace, then a pass.
    assert DISPATCH_GRACE_S + interval <= GOAL_S
