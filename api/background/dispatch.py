"""Handing experiments to the broker, and remembering that it happened.

An experiment is committed to the store before its message is sent, so a broker that is down
at submit time loses nothing: `dispatched_at` stays NULL and the reaper sends it later.

`dispatch_coalesced` is for the submit route, which calls it after its answer has gone out:
under a burst of submissions one caller at a time sends, taking every id the others left
while it was busy, and stamps them all in one transaction (one write instead of one per
experiment). An id left for a sender is sent by it before it stops; if the process dies
first, the experiment is still undispatched in the store and the reaper sends it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

from sqlalchemy import Engine

from core.broker import Broker
from core.store import runs
from core.store.session import session_scope

logger = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        broker: Broker,
        *,
        write_lock: AbstractContextManager[object] | None = None,
    ) -> None:
        self.engine = engine
        self.broker = broker
        # Held around the stamping write (api/deps.py: store_write_lock says why).
        self.write_lock = write_lock if write_lock is not None else nullcontext()
        self._pending: list[str] = []
        self._sending = False
        self._lock = threading.Lock()

    def dispatch_all(self, experiment_ids: Iterable[str]) -> list[str]:
        """Send each, and stamp those sent in one transaction; the ids whose message reached
        the broker (the others, logged, stay undispatched for the reaper)."""
        sent: list[str] = []
        for experiment_id in experiment_ids:
            try:
                self.broker.send_run(experiment_id)
            except Exception:  # broker down: it stays queued and undispatched
                logger.warning(
                    "could not send experiment %s to the broker; will retry", experiment_id
                )
                continue
            sent.append(experiment_id)
        if sent:
            with self.write_lock, session_scope(self.engine) as session:
                for experiment_id in sent:
                    runs.mark_dispatched(session, experiment_id)
        return sent

    def dispatch_coalesced(self, experiment_id: str) -> None:
        """Send `experiment_id`, now or by a caller already sending (see the module doc)."""
        with self._lock:
            self._pending.append(experiment_id)
            if self._sending:
                return
            self._sending = True
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._sending = False
                    return
            try:
                self.dispatch_all(batch)
            except Exception:  # sent, not stamped: the reaper sends it again (a duplicate)
                logger.warning(
                    "could not record the sent ones of %d experiments as dispatched", len(batch)
                )
