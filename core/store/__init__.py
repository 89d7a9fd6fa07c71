"""The experiment store: tables (schema owned by Alembic, see migrations/), engines and
sessions, and every read and write of experiments, their runs, results and ablations.

Callers import the submodule that does what they need and call through it
(`from core.store import runs`; `runs.claim(...)`): the module name says what a call touches.
Only SQL lives here: the API, the worker and the CLI build no queries of their own.
Functions take a Session and commit nothing; state changes are conditional UPDATEs naming the
state they expect, so concurrent callers (API processes, the reaper, workers) can't both win.
"""
