"""The in-process caches are bounded by the bytes they hold, not by their entries."""

from __future__ import annotations

from core.store import artifacts, series
from core.store.cache import LRU


def test_a_byte_bounded_cache_never_holds_more_than_its_bound() -> None:
    cache: LRU[str, bytes] = LRU(1000, len)
    for name in "abcdefgh":
        cache.put(name, bytes(300))
        assert cache.total <= 1000
    assert cache.total == 900 and len(cache) == 3 and cache.get("h") is not None
    cache.put("huge", bytes(1001))  # larger than the whole bound: not kept, nothing evicted
    assert cache.get("huge") is None and cache.total == 900
    cache.discard_where(lambda key: key in {"g", "h"})
    assert cache.total == 300 and cache.get("f") is not None


def test_the_store_caches_are_bounded_by_bytes() -> None:
    assert series._series_cache.total <= series.SERIES_CACHE_BYTES
    assert artifacts._predictions_cache.total <= artifacts.PREDICTIONS_CACHE_BYTES
    # Bytes, not entries: a count bound of 64 would be a total under a hundred.
    assert series.SERIES_CACHE_BYTES > 1_000_000 and artifacts.PREDICTIONS_CACHE_BYTES > 1_000_000
