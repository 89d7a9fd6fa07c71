"""Handing experiments to the broker, and remembering that it happened.

An experiment is committed to the store before its message is sent, so a broker that is down
at submit time loses nothing: `dispatched_at` stays NULL and the reaper sends it later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Engine

from core import store
from core.broker import Broker

logger = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, engine: Engine, broker: Broker) -> None:
        self.engine = engine
        self.broker = broker

    def dispatch(self, experiment_id: str) -> bool:
        """Send the run message and record it; False (logged) when the broker refused it."""
        try:
            self.broker.send_run(experiment_id)
        except Exception:  # broker down: the experiment stays queued and undispatched
            logger.warning("could not send experiment %s to the broker; will retry", experiment_id)
            return False
        with store.session_scope(self.engine) as session:
            store.mark_dispatched(session, experiment_id)
        return True

    def dispatch_all(self, experiment_ids: Iterable[str]) -> list[str]:
        """Send each; the ids whose message reached the broker."""
        return [experiment_id for experiment_id in experiment_ids if self.dispatch(experiment_id)]
