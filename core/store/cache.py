"""Small in-process caches for what never changes once written (a finished series, a run's
outputs, a decoded model): keyed by (database URL, experiment id), since ids are random and the
URL keeps databases apart (tests run several).

A cache of values whose size varies by orders of magnitude (a 10-point series, an 18,000-point
one; a 600 kB model, a 240 MB one) is bounded by bytes (`sizeof`), not by entries: a count
bound lets a few large values take gigabytes. A value larger than the whole bound is not kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache
from sqlmodel import Session

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `size` entries, or, with `sizeof`, values of at most `size` bytes together
    (`sizeof(value)` each), the least recently used going first. cachetools' LRUCache is not
    thread-safe on its own (its reads reorder it), so every access holds the lock."""

    def __init__(self, size: int, sizeof: Callable[[V], int] | None = None) -> None:
        self._size = size
        self._items: LRUCache[K, V] = LRUCache(maxsize=size, getsizeof=sizeof)
        self._sizeof = sizeof
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)  # a hit makes it the most recently used

    def discard(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def discard_where(self, matches: Callable[[K], bool]) -> None:
        """Drop every entry whose key `matches` (a deleted run's, whatever else its key holds)."""
        with self._lock:
            for key in [key for key in self._items if matches(key)]:
                self._items.pop(key, None)

    def put(self, key: K, value: V) -> None:
        if self._size <= 0:
            return  # nothing kept (LRUCache would refuse the item as too large)
        if self._sizeof is not None and self._sizeof(value) > self._size:
            return  # larger than the whole bound: never kept (LRUCache would refuse it)
        with self._lock:
            self._items[key] = value

    @property
    def total(self) -> int:
        """What the cache holds now: bytes with `sizeof`, else entries."""
        with self._lock:
            return int(self._items.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def cache_key(session: Session, experiment_id: str) -> tuple[str, str]:
    return (str(session.get_bind().engine.url), experiment_id)
