"""How long a polled answer may be given again without reading the store.

Twenty clients polling one running experiment five times a second would read its row a
hundred times a second, while the worker changes it about once a second (one flush). So an
answer read less than TRAINLAB_POLL_FRESH_S (0.2 s) ago is given again as it is: one read
per window per experiment and process, however many clients poll. Changes made elsewhere (a
worker, another API process) show within the window. A change made through this process (a
cancel, a delete, any request that is not a read) ends every window at once: the `writes`
generation moves, and an answer remembered under an older generation is read again. So a
client that cancels and then polls sees its own cancel.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Hashable

from core.store.cache import LRU

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_generation = itertools.count(1)
_current = 0


def note_write() -> None:
    """A request that may change the store arrived in this process."""
    global _current
    _current = next(_generation)


def _still_fresh(read_at: float, read_in_generation: int, window_s: float) -> bool:
    return read_in_generation == _current and time.monotonic() - read_at < window_s


class FreshAnswers:
    """Answers' bytes by question, each given again while its read is fresh: read less than
    `window_s` ago, with no write through this process since. A window of 0 keeps nothing."""

    def __init__(self, size: int = 1024) -> None:
        # question -> (when its read began, the write generation then, the answer's bytes).
        # An LRU (cachetools' LRUCache behind a lock, core/store/cache.py), not a TTLCache:
        # the window comes with each call (0..2 s, a setting) and a write ends it early, so
        # freshness is checked here either way; a TTLCache with ttl=2 s would only add its
        # expiry bookkeeping (measured: about 2.8 us per get against 1.4 us for the LRU).
        self._answers: LRU[Hashable, tuple[float, int, bytes]] = LRU(size)

    def get(self, question: Hashable, window_s: float) -> bytes | None:
        if window_s <= 0:
            return None
        remembered = self._answers.get(question)
        if remembered is not None and _still_fresh(remembered[0], remembered[1], window_s):
            return remembered[2]
        return None

    @staticmethod
    def read_begins() -> tuple[float, int]:
        """Taken before the store is read: a write that lands during the read ends its window."""
        return time.monotonic(), _current

    def put(
        self, question: Hashable, began: tuple[float, int], answer: bytes, window_s: float
    ) -> None:
        if window_s > 0:
            self._answers.put(question, (*began, answer))

    def forget(self, question: Hashable) -> None:
        self._answers.discard(question)
