"""Small in-process caches for what never changes once written (a finished series, a run's
outputs): keyed by (database URL, experiment id), since ids are random and the URL keeps
databases apart (tests run several)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from sqlmodel import Session

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def discard(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def cache_key(session: Session, experiment_id: str) -> tuple[str, str]:
    return (str(session.get_bind().engine.url), experiment_id)
