"""Which store errors pass and which are final: the one place that tells them apart.

A run's writes are idempotent (loss points keyed by step, checkpoints replaced under the
owner's row lock, state changes that name the attempt), so any write may be tried again. Whether
it is worth trying again depends on the error:

- transient: the store could not be reached or answered "not now": a dropped connection
  (Postgres restarted, `pg_terminate_backend`, network), an admin shutdown, a serialization
  failure or deadlock, SQLite's "database is locked", a pool timeout. The same write succeeds
  once the store is back, so the caller waits and tries again.
- out of space: SQLite's "database or disk is full" (the disk, a file-size limit, or
  `max_page_count`) and PostgreSQL's `disk_full` (SQLSTATE 53100). Transient too: nothing was
  written, and the same write succeeds once an operator frees space, so a run waits (up to
  TRAINLAB_STORE_PATIENCE_S) instead of failing, and the API answers 503 saying so.
- permanent: the store refuses *this* write and always will: a value it cannot hold
  (`DataError`, e.g. SQLite's "string or blob too big"), a constraint our own insert breaks
  (`IntegrityError`), a statement the schema doesn't fit (`ProgrammingError`, SQLite's "no such
  table"). Trying again changes nothing; the caller reports it.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

# SQLite reports schema mismatches as OperationalError; they don't pass with time.
_SQLITE_PERMANENT = (
    "no such table",
    "no such column",
    "has no column named",
    "syntax error",
    "string or blob too big",
)


_SQLITE_FULL = "database or disk is full"
_PG_DISK_FULL = "53100"


def is_transient(error: BaseException) -> bool:
    """True when the same store call may succeed if tried again later."""
    if is_disk_full(error):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.OperationalError):
        message = str(error.orig if error.orig is not None else error).lower()
        return not any(text in message for text in _SQLITE_PERMANENT)
    return isinstance(
        error,
        sa_exc.InterfaceError | sa_exc.DisconnectionError | sa_exc.TimeoutError | ConnectionError,
    )


def is_disk_full(error: BaseException) -> bool:
    """True when the store could not write for want of space (see the module docstring)."""
    origin = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    if getattr(origin, "sqlstate", None) == _PG_DISK_FULL:
        return True
    return isinstance(error, sa_exc.OperationalError) and _SQLITE_FULL in str(origin).lower()


def is_store_error(error: BaseException) -> bool:
    """Any error raised by the store's driver (transient or not)."""
    return isinstance(error, sa_exc.SQLAlchemyError | ConnectionError)


def describe(error: BaseException) -> str:
    """One line naming the error for a log or an experiment's `error` field."""
    origin = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig else error
    first = str(origin).strip().splitlines()[0] if str(origin).strip() else ""
    return f"{type(error).__name__}: {first}"[:500]
