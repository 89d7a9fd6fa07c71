"""Small in-process caches for what never changes once written (a finished series, a run's
outputs, a decoded model): keyed by (database URL, experiment id), since ids are random and the
URL keeps databases apart (tests run several).

A run deleted through one process is forgotten by that process's caches at once; the others
learn of it from `forget_deleted`, which each API process's retention pass calls: without it a
deleted run's entries stay until the bound pushes them out, and with several API processes a
team's steady deletions keep every cache full of runs that are gone.

A cache of values whose size varies by orders of magnitude (a 10-point series, an 18,000-point
one; a 600 kB model, a 240 MB one) is bounded by bytes (`sizeof`), not by entries: a count
bound lets a few large values take gigabytes. A value larger than the whole bound is not kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from cachetools import LRUCache
from sqlalchemy import Engine, select
from sqlmodel import Session

from core.store.tables import EXPERIMENTS

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `size` entries, or, with `sizeof`, values of at most `size` bytes together
    (`sizeof(value)` each), the least recently used going first. cachetools' LRUCache is not
    thread-safe on its own (its reads reorder it), so every access holds the lock."""

    def __init__(
        self, size: int, sizeof: Callable[[V], int] | None = None, *, per_run: bool = False
    ) -> None:
        self._size = size
        self._items: LRUCache[K, V] = LRUCache(maxsize=size, getsizeof=sizeof)
        self._sizeof = sizeof
        self._lock = threading.Lock()
        if per_run:  # keyed (database URL, experiment id, ...): `forget_deleted` cleans it
            _PER_RUN.append(self)

    def held_keys(self) -> list[K]:
        with self._lock:
            return list(self._items)

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


_PER_RUN: list[LRU[Any, Any]] = []
# Ids looked up per query when the caches are checked against the store.
_CHECK_BATCH = 500


def forget_deleted(engine: Engine) -> int:
    """Drop from every per-run cache of this process the entries of runs of this database that
    no longer exist (deleted through another process); how many runs that was."""
    url = str(engine.url)
    held = {key[1] for cache in _PER_RUN for key in cache.held_keys() if key[0] == url}
    if not held:
        return 0
    ordered = sorted(held)
    present: set[str] = set()
    with engine.connect() as connection:
        for start in range(0, len(ordered), _CHECK_BATCH):
            chunk = ordered[start : start + _CHECK_BATCH]
            rows = connection.execute(select(EXPERIMENTS.c.id).where(EXPERIMENTS.c.id.in_(chunk)))
            present.update(str(row[0]) for row in rows)
    gone = held - present
    if gone:
        for cache in _PER_RUN:
            cache.discard_where(lambda key: key[0] == url and key[1] in gone)
    return len(gone)
