"""The summary of an ablation whose members have all ended, kept in this process.

Such a summary can no longer change: a run's status, metrics and predictions are written
once, when it ends (core/store/runs.py `finish`); an ablation's members are fixed when it is
made; and a member's run cannot be deleted while an ablation counts it
(core/store/retention.py). Computing it is most of the read's cost (for 50 arms x 5 seeds, a
hundred paired t-tests with their seeds-needed searches, and 250 runs' metrics), while
checking that it still holds is one narrow read of the members (MemberState: no JSON).

So an entry is kept with the members it was computed from (arm, seed, run, status, end time)
and answered only while a fresh read of them is identical: any change in who the members
are, how they stand or when they ended computes it again. An ablation with a member
still queued or running is never kept. With several API processes each keeps its own, each
checked against the store, so none answers a stale summary.

Callers get the cached dict itself: they serialize it and must not change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from api.services import ablation_views
from api.services.ablation_summary import CompareMode
from core.store.ablations import MemberState
from core.store.cache import LRU
from core.store.models import TERMINAL_VALUES, Ablation

# (database URL, ablation id, compare, reference); a 50-arm summary is some 200 kB.
Key = tuple[str, str, str, int]
ENTRIES = 64
_kept: LRU[Key, tuple[tuple[MemberState, ...], dict[str, Any]]] = LRU(ENTRIES)


def summary(
    session: Session,
    ablation: Ablation,
    states: Sequence[MemberState],
    *,
    compare: CompareMode,
    reference: int,
) -> dict[str, Any]:
    """ablation_views.summary, from this process's cache while every member has ended and
    none has changed since it was computed."""
    members = tuple(states)
    ended = bool(members) and all(m.status in TERMINAL_VALUES for m in members)
    key = (str(session.get_bind().engine.url), ablation.id, compare, reference)
    if ended:
        found = _kept.get(key)
        if found is not None and found[0] == members:
            return found[1]
    answer = ablation_views.summary(
        session, ablation, members, compare=compare, reference=reference
    )
    if ended:
        _kept.put(key, (members, answer))
    else:
        _kept.discard(key)
    return answer
