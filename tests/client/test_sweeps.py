"""client.sweeps, blocking and async, against a live server: a sweep driven by hand (the
driver's passes run by the test; its runs finished in the store as a worker would) prunes
its loser, ends, and confirms its winner; listing pages, importance, trials as CSV, cancel,
delete and wait; every create carries an Idempotency-Key. The request bodies the client
builds are checked against the server's schemas (the answers have none:
tests/client/test_models_match_openapi.py can't apply)."""

from __future__ import annotations

import asyncio
import csv
import inspect
import io
from typing import Any

import pytest
from sqlalchemy import Engine

from api.app import create_app
from api.background.sweeps import SweepDriver
from core.settings import Settings
from core.store import sweeps as sweep_store
from core.store.session import session_scope
from tests.api.sweep_runs import Sent, finish_runs
from tests.conftest import make_settings
from trainlab import AsyncClient, Client, Conflict, NotFound, ValidationError
from trainlab import _sweep_calls as calls
from trainlab._sweeps import AsyncSweeps, Sweeps

SPACE = {"lr": {"type": "choice", "values": [0.5, 0.0001]}}
BASE: dict[str, Any] = {
    "preset": "seed-baseline",
    "overrides": {"train_limit": 500, "test_limit": 100, "epochs": 1, "batch_size": 10},
    "validation_records": 200,
}
ACCURACY = {0.5: 0.8, 0.0001: 0.1}


def test_a_sweep_from_the_client(client: Client, engine: Engine, settings: Settings) -> None:
    # prune_after=2: the second trial may be pruned (the default waits for six at a rung).
    made = client.sweeps.create(space=SPACE, sampler="grid", max_trials=2, parallel=2, seeds=2,
                                name="lr", prune_after=2, **BASE)  # fmt: skip
    assert made.status == "running" and made.figures == "validation" and made.trials == []
    driver = SweepDriver(engine, Sent(), settings)  # type: ignore[arg-type]
    driver.drive(made.id)
    with pytest.raises(TimeoutError):
        client.sweeps.wait(made.id, timeout=0)
    assert finish_runs(engine, made.id, ACCURACY) == 4
    driver.drive(made.id)
    driver.drive(made.id)
    seen: list[tuple[int, int, str]] = []
    final = client.sweeps.wait(made.id, timeout=5, on_progress=lambda *a: seen.append(a))
    assert final.status == "succeeded" and seen[-1] == (2, 2, "succeeded")
    by_lr = {t.params["lr"]: t for t in final.trials}
    assert by_lr[0.0001].state == "pruned" and by_lr[0.0001].pruned_at_rung == 0
    assert by_lr[0.5].state == "complete" and [r.seed for r in by_lr[0.5].runs] == [0, 1]
    assert final.best is not None and final.best["params"] == {"lr": 0.5}
    assert final.budget.trials == 2 and final.ended_trials == 2
    rows = list(csv.DictReader(io.StringIO(client.sweeps.trials_csv(made.id))))
    assert sorted(r["state"] for r in rows) == ["complete", "pruned"]
    assert client.sweeps.importance(made.id).importances == {}  # one complete trial
    confirmed = client.sweeps.confirm(made.id, top=1, seeds=2)
    assert confirmed.seeds == [2, 3] and confirmed.figures == "test"
    assert len(client.ablations.get(confirmed.ablation_id).arms) == 2
    assert client.sweeps.get(made.id).confirm_ablation_id == confirmed.ablation_id
    deleted = client.sweeps.delete(made.id)
    assert deleted.deleted == made.id
    with pytest.raises(NotFound):
        client.sweeps.get(made.id)


def test_list_pages_cancel_and_refusals(client: Client) -> None:
    ids = [client.sweeps.create(space=SPACE, max_trials=2, **BASE).id for _ in range(3)]
    assert [s.id for s in client.sweeps.list(page_size=2)] == ids[::-1]
    cancelled = client.sweeps.cancel(ids[0])
    assert cancelled.status == "cancelling"
    assert [s.id for s in client.sweeps.list(status="cancelling")] == [ids[0]]
    with pytest.raises(Conflict):
        client.sweeps.delete(ids[0])  # not ended yet: its driver hasn't run
    with pytest.raises(ValidationError) as refused:
        client.sweeps.create(space={"lr": {"type": "uniform", "low": 1, "high": 1}}, **BASE)
    assert "space.lr" in str(refused.value)
    with pytest.raises(ValueError, match="not both"):
        client.sweeps.create(space=SPACE, preset="seed-adam", spec={"epochs": 1})


def test_every_create_carries_a_key_and_a_retry_with_it_answers_the_same_sweep(
    client: Client, engine: Engine
) -> None:
    first = client.sweeps.create(space=SPACE, max_trials=2, idempotency_key="sw-1", **BASE)
    again = client.sweeps.create(space=SPACE, max_trials=2, idempotency_key="sw-1", **BASE)
    assert again.id == first.id and [s.id for s in client.sweeps.list()] == [first.id]
    with pytest.raises(Conflict, match="different request body"):
        client.sweeps.create(space=SPACE, max_trials=3, idempotency_key="sw-1", **BASE)
    # Without one given, the client makes a key for each create: two sweeps, each stored
    # with the key its POST carried.
    made = [client.sweeps.create(space=SPACE, max_trials=2, **BASE).id for _ in range(2)]
    with session_scope(engine) as session:
        stored = [sweep_store.require_sweep(session, i).idempotency_key for i in made]
    assert len(set(made)) == 2 and None not in stored and len(set(stored)) == 2
    sent = [calls.create_sweep({}, None).headers["Idempotency-Key"] for _ in range(2)]
    assert sent[0] != sent[1] and all(k.startswith("trainlab-") for k in sent)


def test_the_async_client_mirrors_the_blocking_one(server: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(base_url=server) as client:
            made = await client.sweeps.create(
                space=SPACE, max_trials=2, idempotency_key="async-1", **BASE
            )
            again = await client.sweeps.create(
                space=SPACE, max_trials=2, idempotency_key="async-1", **BASE
            )
            assert again.id == made.id
            got = await client.sweeps.get(made.id)
            assert got.id == made.id and got.space == SPACE
            assert [s.id async for s in client.sweeps.list(page_size=1)] == [made.id]
            assert (await client.sweeps.cancel(made.id)).status == "cancelling"
            with pytest.raises(TimeoutError):
                await client.sweeps.wait(made.id, timeout=0)
            assert (await client.sweeps.importance(made.id)).importances == {}
            assert (await client.sweeps.trials_csv(made.id)).startswith("number,state")

    asyncio.run(scenario())

    def public(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(fn).parameters)
            for name, fn in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert public(Sweeps) == public(AsyncSweeps)
    with Client(base_url=server) as blocking:
        assert type(blocking.sweeps) is Sweeps


def test_the_bodies_match_the_server_schemas() -> None:
    schemas = create_app(make_settings(), lifespan_hooks=[]).openapi()["components"]["schemas"]
    body = calls.sweep_body(
        space=SPACE, preset="seed-adam", spec=None, overrides={"epochs": 1}, name="n",
        extra={"seeds": 2, "sampler": "tpe", "pruner": "paired", "max_trials": 4, "parallel": 2,
               "validation_records": 100, "objective": "validation_loss", "rungs": 2,
               "sampler_seed": 1},
    )  # fmt: skip
    request = schemas["SweepRequest"]
    assert set(body) <= set(request["properties"]) and set(request["required"]) <= set(body)
    # Every option create() documents is a field of the server's request.
    documented = inspect.getdoc(Sweeps.create) or ""
    for option in set(request["properties"]) - {"space", "preset", "spec", "overrides", "name"}:
        assert option in documented, option
    assert set(calls.confirm("x", 1, 2).json) == set(schemas["ConfirmRequest"]["properties"])
