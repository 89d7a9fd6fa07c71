"""client.sweeps: Optuna searches run by the server. `Sweeps` is Client's, `AsyncSweeps`
AsyncClient's; each method of the one mirrors the method of the same name in the other
(kept in step by hand, as _sync.py and _async.py are)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import trainlab._sweep_calls as _calls
import trainlab.sweep_models as sm
from trainlab._policy import POLL_S

if TYPE_CHECKING:
    from trainlab._async import AsyncClient
    from trainlab._sync import Client

# on_progress(ended trials, max_trials, sweep status)
OnProgress = Callable[[int, int, str], None]


def _body(
    space: Mapping[str, Mapping[str, Any]],
    preset: str | None,
    spec: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    name: str | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    return _calls.sweep_body(
        space=space, preset=preset, spec=spec, overrides=overrides, name=name, extra=options
    )


class Sweeps:
    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        *,
        space: Mapping[str, Mapping[str, Any]],
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> sm.Sweep:
        """A search over `space` ({"lr": {"type": "log_uniform", "low": ..., "high": ...}})
        on a preset (with overrides) or a spec. `options`: seeds, sampler, pruner, max_trials,
        parallel, validation_records, objective, rungs, sampler_seed, prune_after (the
        server's defaults where not given). Same idempotency as experiments.create: a retry
        with the same `idempotency_key` (one is made when not given) answers the same sweep."""
        body = _body(space, preset, spec, overrides, name, options)
        return self._c.send(_calls.create_sweep(body, idempotency_key))

    def get(self, sweep_id: str) -> sm.Sweep:
        return self._c.send(_calls.get_sweep(sweep_id))

    def list(
        self, *, page_size: int = 20, status: str | None = None, owner: str | None = None
    ) -> Iterator[sm.Sweep]:
        """Every sweep that matches, newest first, page after page along the cursor."""
        cursor: str | None = None
        while True:
            page = self._c.send(_calls.list_sweeps(page_size, cursor, status, owner))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def cancel(self, sweep_id: str) -> sm.Sweep:
        return self._c.send(_calls.cancel_sweep(sweep_id))

    def delete(self, sweep_id: str) -> sm.SweepDeleted:
        return self._c.send(_calls.delete_sweep(sweep_id))

    def importance(self, sweep_id: str) -> sm.SweepImportance:
        return self._c.send(_calls.importance(sweep_id))

    def trials_csv(self, sweep_id: str) -> str:
        return self._c.send(_calls.trials_csv(sweep_id))

    def confirm(self, sweep_id: str, *, top: int = 1, seeds: int = 5) -> sm.SweepConfirmation:
        return self._c.send(_calls.confirm(sweep_id, top, seeds))

    def wait(
        self,
        sweep_id: str,
        *,
        timeout: float | None = None,
        on_progress: OnProgress | None = None,
        poll_s: float = POLL_S,
    ) -> sm.Sweep:
        """The sweep once it has ended (succeeded, cancelled or failed), polled every
        `poll_s`; `on_progress(ended trials, max_trials, status)` after each poll."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.get(sweep_id)
            if on_progress is not None:
                on_progress(state.ended_trials, state.max_trials, state.status)
            if state.finished:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {sweep_id} is still {state.status}")
            time.sleep(poll_s)


class AsyncSweeps:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
        self,
        *,
        space: Mapping[str, Mapping[str, Any]],
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> sm.Sweep:
        body = _body(space, preset, spec, overrides, name, options)
        return await self._c.send(_calls.create_sweep(body, idempotency_key))

    async def get(self, sweep_id: str) -> sm.Sweep:
        return await self._c.send(_calls.get_sweep(sweep_id))

    async def list(
        self, *, page_size: int = 20, status: str | None = None, owner: str | None = None
    ) -> AsyncIterator[sm.Sweep]:
        cursor: str | None = None
        while True:
            page = await self._c.send(_calls.list_sweeps(page_size, cursor, status, owner))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def cancel(self, sweep_id: str) -> sm.Sweep:
        return await self._c.send(_calls.cancel_sweep(sweep_id))

    async def delete(self, sweep_id: str) -> sm.SweepDeleted:
        return await self._c.send(_calls.delete_sweep(sweep_id))

    async def importance(self, sweep_id: str) -> sm.SweepImportance:
        return await self._c.send(_calls.importance(sweep_id))

    async def trials_csv(self, sweep_id: str) -> str:
        return await self._c.send(_calls.trials_csv(sweep_id))

    async def confirm(self, sweep_id: str, *, top: int = 1, seeds: int = 5) -> sm.SweepConfirmation:
        return await self._c.send(_calls.confirm(sweep_id, top, seeds))

    async def wait(
        self,
        sweep_id: str,
        *,
        timeout: float | None = None,
        on_progress: OnProgress | None = None,
        poll_s: float = POLL_S,
    ) -> sm.Sweep:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = await self.get(sweep_id)
            if on_progress is not None:
                on_progress(state.ended_trials, state.max_trials, state.status)
            if state.finished:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {sweep_id} is still {state.status}")
            await asyncio.sleep(poll_s)
