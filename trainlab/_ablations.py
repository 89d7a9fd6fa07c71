"""client.ablations: grids, variants and the book's chain, run by the server. `Ablations` is
Client's, `AsyncAblations` AsyncClient's; each method of the one mirrors the method of the
same name in the other (kept in step by hand, as _sync.py and _async.py are)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import trainlab._calls as _calls
import trainlab.models as models
from trainlab._calls import Compare
from trainlab._policy import POLL_S, ablation_body

if TYPE_CHECKING:
    from trainlab._async import AsyncClient
    from trainlab._sync import Client

# on_progress(step, total steps, ablation status)
OnProgress = Callable[[int, int, str], None]


class Ablations:
    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        *,
        design: str = "grid",
        preset: str | None = None,
        factors: Mapping[str, Sequence[Any]] | None = None,
        overrides: Mapping[str, Any] | None = None,
        seeds: int | Sequence[int] | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> models.Ablation:
        """A grid of `factors` on `preset` (design="grid"), the preset and each of
        `variants=[{"label": ..., "overrides": {...}}]` alone on it (design="variants"), or
        the book's chain (design="book"), times seeds; `metric=` the figure its summary
        compares (default the kind's). Idempotent as experiments.create."""
        body = ablation_body(
            design=design, preset=preset, factors=factors, overrides=overrides, seeds=seeds,
            name=name, extra=extra,
        )  # fmt: skip
        return self._c.send(_calls.create_ablation(body, idempotency_key))

    def get(self, ablation_id: str) -> models.Ablation:
        return self._c.send(_calls.get_ablation(ablation_id))

    def list(self, *, page_size: int = 20) -> Iterator[models.AblationListed]:
        cursor: str | None = None
        while True:
            page = self._c.send(_calls.list_ablations(page_size, cursor))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def summary(
        self, ablation_id: str, *, compare: Compare = "reference", reference: int | None = None
    ) -> models.AblationSummary:
        return self._c.send(_calls.summary(ablation_id, compare, reference))

    def curves(
        self, ablation_id: str, *, max_points: int = 500, smoothing: float = 0.0
    ) -> models.AblationCurves:
        return self._c.send(_calls.curves(ablation_id, max_points, smoothing))

    def wait(
        self,
        ablation_id: str,
        *,
        timeout: float | None = None,
        on_progress: OnProgress | None = None,
        poll_s: float = POLL_S,
    ) -> models.Ablation:
        """The ablation once every member has ended, polled every `poll_s`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.get(ablation_id)
            if on_progress is not None:
                step, total = state.progress.get("step", 0), state.progress.get("total", 0)
                on_progress(int(step), int(total), state.status)
            if state.finished:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"ablation {ablation_id} is still {state.status}")
            time.sleep(poll_s)

    def cancel(self, ablation_id: str) -> models.Ablation:
        return self._c.send(_calls.cancel_ablation(ablation_id))

    def delete(self, ablation_id: str, *, cancel: bool = False) -> models.AblationDeleted:
        return self._c.send(_calls.delete_ablation(ablation_id, cancel))


class AsyncAblations:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
        self,
        *,
        design: str = "grid",
        preset: str | None = None,
        factors: Mapping[str, Sequence[Any]] | None = None,
        overrides: Mapping[str, Any] | None = None,
        seeds: int | Sequence[int] | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> models.Ablation:
        """A grid of `factors` on `preset` (design="grid"), the preset and each of
        `variants=[{"label": ..., "overrides": {...}}]` alone on it (design="variants"), or
        the book's chain (design="book"), times seeds; `metric=` the figure its summary
        compares (default the kind's). Idempotent as experiments.create."""
        body = ablation_body(
            design=design, preset=preset, factors=factors, overrides=overrides, seeds=seeds,
            name=name, extra=extra,
        )  # fmt: skip
        return await self._c.send(_calls.create_ablation(body, idempotency_key))

    async def get(self, ablation_id: str) -> models.Ablation:
        return await self._c.send(_calls.get_ablation(ablation_id))

    async def list(self, *, page_size: int = 20) -> AsyncIterator[models.AblationListed]:
        cursor: str | None = None
        while True:
            page = await self._c.send(_calls.list_ablations(page_size, cursor))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def summary(
        self, ablation_id: str, *, compare: Compare = "reference", reference: int | None = None
    ) -> models.AblationSummary:
        return await self._c.send(_calls.summary(ablation_id, compare, reference))

    async def curves(
        self, ablation_id: str, *, max_points: int = 500, smoothing: float = 0.0
    ) -> models.AblationCurves:
        return await self._c.send(_calls.curves(ablation_id, max_points, smoothing))

    async def wait(
        self,
        ablation_id: str,
        *,
        timeout: float | None = None,
        on_progress: OnProgress | None = None,
        poll_s: float = POLL_S,
    ) -> models.Ablation:
        """The ablation once every member has ended, polled every `poll_s`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = await self.get(ablation_id)
            if on_progress is not None:
                step, total = state.progress.get("step", 0), state.progress.get("total", 0)
                on_progress(int(step), int(total), state.status)
            if state.finished:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"ablation {ablation_id} is still {state.status}")
            await asyncio.sleep(poll_s)

    async def cancel(self, ablation_id: str) -> models.Ablation:
        return await self._c.send(_calls.cancel_ablation(ablation_id))

    async def delete(self, ablation_id: str, *, cancel: bool = False) -> models.AblationDeleted:
        return await self._c.send(_calls.delete_ablation(ablation_id, cancel))
