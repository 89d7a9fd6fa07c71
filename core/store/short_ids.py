"""Short ids: the full id that a unique prefix of one stands for.

Ids are 32 lowercase hex characters (uuid4().hex); people read and type the first 8 (the
dashboard and the CLI show those). One indexed range query on the primary key finds the ids a
prefix starts: every id starting with `p` lies in [p, p + "g"), since "g" sorts after every hex
digit (in C and in the usual linguistic collations alike); the LIKE keeps the answer exact
whatever the collation.
"""

from __future__ import annotations

import re
from typing import Literal

from sqlalchemy import select
from sqlmodel import Session, col

from core.store.errors import AmbiguousId
from core.store.models import Ablation, Experiment
from core.store.sweep_tables import Sweep

FULL_LENGTH = 32
MIN_PREFIX = 8
MAX_CANDIDATES = 10  # listed in a 409; one more is fetched to know that there are more
_HEX = re.compile(r"^[0-9a-f]+$")

Kind = Literal["experiment", "ablation", "sweep"]
_IDS = {"experiment": col(Experiment.id), "ablation": col(Ablation.id), "sweep": col(Sweep.id)}


def candidates(session: Session, kind: Kind, prefix: str) -> list[str]:
    """Up to MAX_CANDIDATES + 1 ids of `kind` that start with `prefix`, in order."""
    if not _HEX.match(prefix):
        return []  # no id has anything but lowercase hex digits
    column = _IDS[kind]
    query = (
        select(column)
        .where(column >= prefix, column < prefix + "g", column.like(f"{prefix}%"))
        .order_by(column)
        .limit(MAX_CANDIDATES + 1)
    )
    return list(session.execute(query).scalars())


def resolve_id(session: Session, kind: Kind, given: str) -> str:
    """The full id that `given` stands for: itself when it is as long as an id (or longer) or
    starts no id (the caller's own lookup answers "not found" as it always has), the one id it
    starts, or AmbiguousId when it starts several."""
    if len(given) >= FULL_LENGTH:
        return given
    found = candidates(session, kind, given)
    if not found:
        return given
    if len(found) > 1:
        raise AmbiguousId(kind, given, found[:MAX_CANDIDATES], more=len(found) > MAX_CANDIDATES)
    return found[0]
