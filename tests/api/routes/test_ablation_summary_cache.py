"""GET /ablations/{id}/summary keeps the summary of an ablation whose members have all ended
(api/services/summary_cache.py): the kept answer is the one a fresh computation gives, it is
computed again when a member's run changes, and never kept while a member is still going."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.encoders import jsonable_encoder
from sqlalchemy import Engine, update
from sqlmodel import Session

from api.services import ablation_views, summary_cache
from core.presets import BOOK_CHAIN, build_spec
from core.store import ablations
from core.store import runs as store_runs
from core.store.clock import utcnow
from core.store.models import Status
from core.store.session import session_scope
from core.store.tables import EXPERIMENTS
from tests.api.app_client import AppClient
from tests.api.recorded_runs import RecordedRuns

SUBSET = {"epochs": 1, "train_limit": 200, "test_limit": 50}
SEEDS = 3
# The computation itself, taken before any test counts its calls.
COMPUTE: Callable[..., dict[str, Any]] = ablation_views.summary


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ablation ids whose summary was computed (not answered from the cache), in order."""
    calls: list[str] = []

    def counting(session: Session, ablation: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(ablation.id)
        return COMPUTE(session, ablation, *args, **kwargs)

    monkeypatch.setattr(summary_cache.ablation_views, "summary", counting)
    return calls


def _accuracy(arm: int, seed: int) -> float:
    return 0.80 + 0.03 * arm + 0.01 * seed * (arm % 2)


def _book(
    client: AppClient, runs_: RecordedRuns, *, running: int = 0
) -> tuple[str, list[tuple[str, int]]]:
    """A book ablation over stored runs: the first `running` of its cells claimed but not
    finished; (its id, those unfinished runs' (id, attempt))."""
    unfinished: list[tuple[str, int]] = []
    for arm, preset in enumerate(BOOK_CHAIN):
        for seed in range(SEEDS):
            spec = build_spec(preset, {**SUBSET, "seed": seed})
            if len(unfinished) < running:
                unfinished.append(runs_.start(spec))
            else:
                runs_.finished_run(spec, accuracy=_accuracy(arm, seed), final_loss=0.4 - 0.01 * arm)
    created = client.post(
        "/ablations", json={"design": "book", "overrides": SUBSET, "seeds": SEEDS}
    )
    assert created.status_code == 201 and created.json()["created_experiments"] == 0
    return str(created.json()["id"]), unfinished


def _fresh(engine: Engine, ablation_id: str, **query: Any) -> Any:
    """The summary computed now, without the cache, as the API would serialize it."""
    with Session(engine) as session:
        ablation = ablations.require_ablation(session, ablation_id)
        states = ablations.member_states(session, ablation_id)
        return jsonable_encoder(COMPUTE(session, ablation, states, **query))


def test_a_finished_ablations_summary_is_kept_and_equals_a_fresh_one(
    client: AppClient, runs: RecordedRuns, engine: Engine, computed: list[str]
) -> None:
    ablation_id, _ = _book(client, runs)
    url = f"/ablations/{ablation_id}/summary"
    first = client.get(url).json()
    again = client.get(url).json()
    assert computed == [ablation_id]  # the second answer came from the cache
    assert again == first == _fresh(engine, ablation_id, compare="reference", reference=0)
    # Each question is kept on its own: another reference or mode is computed once too.
    successive = client.get(url, params={"compare": "successive"}).json()
    assert client.get(url, params={"compare": "successive"}).json() == successive
    assert successive == _fresh(engine, ablation_id, compare="successive", reference=0)
    assert successive != first and computed == [ablation_id] * 2
    # The CSV reads the same kept summary.
    assert client.get(f"{url}.csv").status_code == 200 and len(computed) == 2


def test_a_summary_is_computed_again_when_a_member_changes(
    client: AppClient, runs: RecordedRuns, engine: Engine, computed: list[str]
) -> None:
    ablation_id, _ = _book(client, runs)
    url = f"/ablations/{ablation_id}/summary"
    before = client.get(url).json()
    member = next(m for m in _states(engine, ablation_id) if m.arm == 1 and m.seed == 0)
    # The run ends again with another figure (as an operator's repair of a run would).
    with session_scope(engine) as session:
        session.execute(
            update(EXPERIMENTS)
            .where(EXPERIMENTS.c.id == member.experiment_id)
            .values(metrics={"test_accuracy": 0.5, "final_loss": 0.9}, finished_at=utcnow())
        )
    after = client.get(url).json()
    assert len(computed) == 2
    assert after["arms"][1]["per_seed"]["0"]["test_accuracy"] == 0.5
    assert before["arms"][1]["per_seed"]["0"]["test_accuracy"] == _accuracy(1, 0)
    assert after == _fresh(engine, ablation_id, compare="reference", reference=0)
    # A member whose run is no longer ended: never answered from the cache.
    with session_scope(engine) as session:
        session.execute(
            update(EXPERIMENTS)
            .where(EXPERIMENTS.c.id == member.experiment_id)
            .values(status=Status.running.value)
        )
    going = client.get(url).json()
    assert going["arms"][1]["n"] == SEEDS - 1 and going["arms"][1]["finished"] == SEEDS - 1
    assert len(computed) == 3


def test_an_ablation_with_a_run_still_going_is_never_kept(
    client: AppClient, runs: RecordedRuns, engine: Engine, computed: list[str]
) -> None:
    ablation_id, [(running_id, attempt)] = _book(client, runs, running=1)
    url = f"/ablations/{ablation_id}/summary"
    assert client.get(url).json()["arms"][0]["n"] == SEEDS - 1
    assert client.get(url).json()["arms"][0]["finished"] == SEEDS - 1
    assert len(computed) == 2  # both computed: a member is still running
    with session_scope(engine) as session:
        done = store_runs.finish(
            session,
            running_id,
            attempt,
            status=Status.succeeded,
            metrics={"test_accuracy": 0.7, "final_loss": 0.5},
            fingerprint={},
        )
        assert done
    ended = client.get(url).json()
    assert (
        ended["arms"][0]["n"] == SEEDS and ended["arms"][0]["per_seed"]["0"]["test_accuracy"] == 0.7
    )
    assert client.get(url).json() == ended and len(computed) == 3
    # Deleting the ablation: its summary is gone, not answered from what was kept.
    assert client.delete(f"/ablations/{ablation_id}").status_code in (200, 202, 204)
    assert client.get(url).status_code == 404


def _states(engine: Engine, ablation_id: str) -> list[ablations.MemberState]:
    with Session(engine) as session:
        return ablations.member_states(session, ablation_id)
