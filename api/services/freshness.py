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

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_generation = itertools.count(1)
_current = 0


def note_write() -> None:
    """A request that may change the store arrived in this process."""
    global _current
    _current = next(_generation)


def generation() -> int:
    return _current


def still_fresh(read_at: float, read_in_generation: int, window_s: float) -> bool:
    return read_in_generation == _current and time.monotonic() - read_at < window_s
