"""Small in-process caches for what never changes once written (a finished series, a run's
outputs): keyed by (database URL, experiment id), since ids are random and the URL keeps
databases apart (tests run several)."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache
from sqlmodel import Session

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `size` entries, the least recently used going first. cachetools' LRUCache is
    not thread-safe on its own (its reads reorder it), so every access holds the lock."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: LRUCache[K, V] = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)  # a hit makes it the most recently used

    def discard(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def put(self, key: K, value: V) -> None:
        if self._size <= 0:
            return  # nothing kept (LRUCache would refuse the item as too large)
        with self._lock:
            self._items[key] = value


def cache_key(session: Session, experiment_id: str) -> tuple[str, str]:
    return (str(session.get_bind().engine.url), experiment_id)
