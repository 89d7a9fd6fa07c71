"""AsyncClient mirrors Client; a 429's Retry-After is honoured within the client's bounds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from core.keys import Role
from core.settings import Settings
from tests.api.recorded_runs import RecordedRuns, small_spec
from tests.client.conftest import make_key, serve
from trainlab import AsyncClient, Client, NotFound, RateLimited


def test_async_client_mirrors_the_client(server: str, runs: RecordedRuns) -> None:
    done = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.2)

    async def scenario() -> None:
        async with AsyncClient(base_url=server) as client:
            made = await client.experiments.create(
                preset="seed-adam", overrides={"epochs": 1}, idempotency_key="a"
            )
            again = await client.experiments.create(
                preset="seed-adam", overrides={"epochs": 1}, idempotency_key="a"
            )
            assert again.id == made.id
            ids = [e.id async for e in client.experiments.list(page_size=1)]
            assert sorted(ids) == sorted([made.id, done.id])
            assert (await client.experiments.loss(done.id)).steps == done.steps
            kinds = [e.kind async for e in client.experiments.follow(done.id)]
            assert kinds[0] == "status" and "loss" in kinds and kinds[-1] == "end"
            final = await client.experiments.wait(done.id, timeout=5)
            assert final.status == "succeeded"
            with pytest.raises(NotFound):
                await client.ablations.get("nopenope")

    asyncio.run(scenario())


@pytest.fixture
def limited(settings: Settings) -> Iterator[str]:
    """Two requests a second per key (loopback addresses have no limit of their own)."""
    yield from serve(settings, auth="required", rate_limit_key="2/second")


def test_429_is_retried_after_retry_after(limited: str, engine: Engine) -> None:
    key = make_key(engine, "alice", Role.member)
    with Client(base_url=limited, api_key=key) as client:
        began = time.monotonic()
        for _ in range(5):
            list(client.experiments.list())
        assert time.monotonic() - began >= 0.9  # it waited for the limit's window
    with Client(base_url=limited, api_key=key, max_retry_wait_s=0.0) as impatient:
        with pytest.raises(RateLimited) as refused:
            for _ in range(5):
                list(impatient.experiments.list())
        assert refused.value.retry_after is not None and refused.value.retry_after > 0
