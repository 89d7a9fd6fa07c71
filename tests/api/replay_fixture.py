"""A store whose every byte is fixed, for the replay test (tests/api/test_replay.py).

What normally varies is pinned while the store is built and read:
- time: `core.store.clock.utcnow` calls `datetime.now` through its module, so swapping that
  module's `datetime` for one whose `now` answers a hand-moved clock pins every timestamp the
  store writes (column defaults included), wherever `utcnow` was imported;
- ids: the modules of `core` that use `uuid` (models.new_id) get uuid4s from a counter,
  hashed so they look like real ones (all 32 hex digits, no telling order);
- key tokens: the modules of `core` that use `secrets` (core/keys.py) get bytes from a counter.
Only `core` is patched: a uuid4 drawn elsewhere (kombu's message ids) neither shifts the
store's ids nor needs pinning, since no answer shows it.

Runs are written through the store's own functions as a worker writes them (create, claim,
points with heartbeats, weights, finish), the clock moved one second before each write; the
two ablations are made through POST /ablations, as a user makes them, and the runs the grid
one adds are then finished the same way.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

import core.keys
import core.store.clock
import core.store.models
from core.keys import Role
from core.presets import BOOK_CHAIN, build_spec
from core.spec import ExperimentSpec
from core.store import ablations, artifacts, experiments, runs, series_points
from core.store import keys as store_keys
from core.store import runs as store_runs
from core.store.models import Status
from core.store.session import session_scope
from tests.api.app_client import AppClient
from tests.api.replay_weights import BANDS_OVERRIDES, band_network

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
# The requests are all answered at this instant (the clock stands still while they run, so
# how long the test takes, or how often a key is looked up again, changes no timestamp).
ASKED_AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SUBSET = {"epochs": 1, "train_limit": 200, "test_limit": 50}
# Accuracy of (book arm, seed): arms improve, seeds scatter.
BOOK_ACCURACY = [
    [0.80, 0.82, 0.81],
    [0.85, 0.86, 0.88],
    [0.90, 0.87, 0.91],
    [0.91, 0.92, 0.92],
    [0.95, 0.93, 0.97],
]


class PinnedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


def _counted_bytes(label: str) -> Callable[[int], bytes]:
    counter = itertools.count(1)

    def take(size: int) -> bytes:
        number = next(counter)
        out = b""
        while len(out) < size:
            out += hashlib.sha256(f"{label}:{number}:{len(out)}".encode()).digest()
        return out[:size]

    return take


def pin(monkeypatch: pytest.MonkeyPatch, clock: PinnedClock) -> None:
    """Pin time, ids and key secrets in `core` for the rest of the test."""

    class PinnedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return clock.now.astimezone(tz) if tz is not None else clock.now.replace(tzinfo=None)

    monkeypatch.setattr(core.store.clock, "datetime", PinnedDatetime)
    ids = _counted_bytes("id")
    token = _counted_bytes("secret")
    fake_uuid = SimpleNamespace(UUID=uuid.UUID, uuid4=lambda: uuid.UUID(bytes=ids(16), version=4))
    fake_secrets = SimpleNamespace(
        compare_digest=secrets.compare_digest,
        token_bytes=token,
        token_hex=lambda n=32: token(n).hex(),
        token_urlsafe=lambda n=32: base64.urlsafe_b64encode(token(n)).rstrip(b"=").decode(),
    )
    patched = {"uuid": 0, "secrets": 0}
    for name, module in list(sys.modules.items()):
        if name != "core" and not name.startswith("core."):
            continue
        if getattr(module, "uuid", None) is uuid:
            monkeypatch.setattr(module, "uuid", fake_uuid)
            patched["uuid"] += 1
        if getattr(module, "secrets", None) is secrets:
            monkeypatch.setattr(module, "secrets", fake_secrets)
            patched["secrets"] += 1
    # If ids or tokens are drawn some other way now, the recordings could not be replayed:
    # say so here rather than as a diff of every answer.
    assert patched["uuid"] and patched["secrets"], f"nothing to pin in core: {patched}"
    assert core.store.models.new_id() != core.store.models.new_id()
    assert core.keys.new_key().prefix != core.keys.new_key().prefix


@dataclass
class ReplayStore:
    """What the requests refer to: experiment and ablation ids by name, tokens by account."""

    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)


def small_spec(preset: str, **overrides: Any) -> ExperimentSpec:
    return build_spec(preset, {**SUBSET, **overrides})


class Builder:
    def __init__(self, engine: Engine, clock: PinnedClock, made: ReplayStore) -> None:
        self.engine = engine
        self.clock = clock
        self.made = made

    def key(self, account: str, role: Role, *, revoked: bool = False) -> None:
        self.clock.tick()
        with session_scope(self.engine) as session:
            key, token = store_keys.create_key(session, account, role)
            self.made.tokens[account] = token
            self.made.key_ids[account] = key.id
            self.made.prefixes[account] = key.prefix
        if revoked:
            self.clock.tick()
            with session_scope(self.engine) as session:
                store_keys.revoke_key(session, self.made.prefixes[account])

    def create(
        self, label: str, spec: ExperimentSpec, *, preset: str | None, tags: Sequence[str] = ()
    ) -> str:
        self.clock.tick()
        with session_scope(self.engine) as session:
            experiment, _ = experiments.create_experiment(
                session, spec, name=label, tags=list(tags), preset=preset, owner="alice",
                key_id=self.made.key_ids["alice"], cost=0.01,
            )  # fmt: skip
            self.made.ids[label] = experiment.id
        return self.made.ids[label]

    def claim(self, experiment_id: str) -> int:
        self.clock.tick()
        with session_scope(self.engine) as session:
            attempt = runs.claim(session, experiment_id, worker="replay-worker", stale_after_s=60)
        assert attempt is not None
        return attempt

    def points(self, experiment_id: str, attempt: int, spec: ExperimentSpec, upto: int) -> None:
        """The first `upto` loss points of the run's fixed curve, one flush per four."""
        steps = [spec.log_every * (i + 1) for i in range(upto)]
        values = [round(2.0 / (1 + 0.004 * s) + 0.01 * (s % 7), 6) for s in steps]
        for start in range(0, upto, 4):
            self.clock.tick()
            with session_scope(self.engine) as session:
                chunk = slice(start, start + 4)
                series_points.append_loss(
                    session, experiment_id, attempt, steps[chunk], values[chunk]
                )
                runs.heartbeat(
                    session, experiment_id, attempt, step=steps[chunk][-1],
                    total_steps=spec.total_steps, device="cpu",
                )  # fmt: skip

    def finish(
        self,
        experiment_id: str,
        attempt: int,
        spec: ExperimentSpec,
        *,
        accuracy: float,
        wrong: Sequence[int] = (),
        weights: bytes | None = None,
    ) -> None:
        """Finish as the job does: the rest of the points, the weights, metrics and outputs
        (labels are record index mod 10; `wrong` records are predicted one class higher)."""
        self.points(experiment_id, attempt, spec, spec.loss_points)
        records = spec.test_records
        labels = (np.arange(records) % 10).astype(np.uint8)
        predicted = labels.copy()
        predicted[list(wrong)] = (predicted[list(wrong)] + 1) % 10
        outputs = np.full((records, 10), 0.0625, dtype=np.float32)
        outputs[np.arange(records), predicted] = 0.4375 + 0.0625 * (np.arange(records) % 8)
        metrics = {
            "test_accuracy": accuracy,
            "final_loss": round(0.5 - accuracy / 4, 6),
            "test_loss": round(0.6 - accuracy / 4, 6),
            "phases": {"load": 0.25, "train": 3.5, "evaluate": 0.125},
        }
        self.clock.tick()
        with session_scope(self.engine) as session:
            if weights is not None:
                assert artifacts.save_model(
                    session, experiment_id, attempt, step=spec.total_steps, data=weights,
                    keep_checkpoint=False,
                )  # fmt: skip
            assert runs.finish(
                session, experiment_id, attempt, status=Status.succeeded, metrics=metrics,
                fingerprint={"torch": "replayed", "device": "cpu"}, outputs=outputs,
                labels=labels, predicted=predicted, step=spec.total_steps,
            )  # fmt: skip

    def finished(
        self,
        label: str,
        preset: str,
        *,
        accuracy: float,
        tags: Sequence[str] = (),
        wrong: Sequence[int] = (),
        **overrides: Any,
    ) -> str:
        spec = small_spec(preset, **overrides)
        experiment_id = self.create(label, spec, preset=preset, tags=tags)
        self.finish(experiment_id, self.claim(experiment_id), spec, accuracy=accuracy, wrong=wrong)
        return experiment_id


def build(engine: Engine, clock: PinnedClock, client: AppClient) -> ReplayStore:
    """The fixed store. `client` is the app serving `engine`, for the two ablations."""
    made = ReplayStore()
    runs = Builder(engine, clock, made)
    runs.key("ops", Role.admin)
    runs.key("alice", Role.member)
    runs.key("bob", Role.viewer)
    runs.key("carol", Role.member, revoked=True)

    runs.finished("adam-a", "seed-adam", accuracy=0.9, tags=["replay", "adam"], seed=7,
                  wrong=range(0, 5))  # fmt: skip
    runs.finished("adam-b", "seed-adam", accuracy=0.86, tags=["replay"], seed=8,
                  wrong=range(3, 10))  # fmt: skip
    runs.finished("baseline-a", "seed-baseline", accuracy=0.8, seed=7, wrong=range(0, 10, 2))
    bands_spec = small_spec("seed-adam", seed=9, **BANDS_OVERRIDES)
    bands = runs.create("bands", bands_spec, preset="seed-adam", tags=["model"])
    runs.finish(
        bands, runs.claim(bands), bands_spec, accuracy=0.5, weights=band_network(bands_spec, bands)
    )
    for arm, preset in enumerate(BOOK_CHAIN):
        for seed in range(3):
            runs.finished(
                f"book-{arm}-{seed}", preset, accuracy=BOOK_ACCURACY[arm][seed], seed=seed,
                wrong=range(seed, 50 - 40 * arm // 4, 5),
            )  # fmt: skip

    made.ids["book"] = _post_ablation(
        client, clock, made, {"name": "book", "design": "book", "overrides": SUBSET, "seeds": 3}
    )
    grid_request = {
        "name": "act-grid",
        "preset": "seed-bce",
        "overrides": SUBSET,
        "factors": {"model.activation": ["sigmoid", "leaky_relu"]},
        "seeds": [4],
    }
    made.ids["grid"] = _post_ablation(client, clock, made, grid_request)
    with session_scope(engine) as session:
        members = ablations.members_with_experiments(session, [made.ids["grid"]])[made.ids["grid"]]
        cells = [(m.arm, e.id, ExperimentSpec.model_validate(e.spec)) for m, e in members]
    for arm, experiment_id, spec in cells:
        made.ids[f"grid-{arm}"] = experiment_id
        wrong = range(0, 12) if arm == 0 else range(10, 14)
        accuracy = 1 - len(wrong) / spec.test_records
        runs.finish(experiment_id, runs.claim(experiment_id), spec, accuracy=accuracy, wrong=wrong)

    live_spec = small_spec("seed-bce", seed=5)
    live = runs.create("live", live_spec, preset="seed-bce", tags=["replay"])
    runs.points(live, runs.claim(live), live_spec, 8)
    runs.create("waiting", small_spec("seed-baseline", seed=6), preset="seed-baseline",
                tags=["replay", "queued"])  # fmt: skip
    broken = runs.create("broken", small_spec("seed-leakyrelu", seed=5), preset="seed-leakyrelu")
    runs.claim(broken)
    clock.tick()
    with session_scope(engine) as session:
        assert store_runs.fail(session, broken, "the worker ran out of memory (replayed)")
    dropped = runs.create("dropped", small_spec("seed-bce", seed=6), preset=None)
    clock.tick()
    with session_scope(engine) as session:
        experiments.request_cancel(session, dropped)
    clock.now = ASKED_AT
    return made


def _post_ablation(
    client: AppClient, clock: PinnedClock, made: ReplayStore, body: dict[str, Any]
) -> str:
    clock.tick()
    answer = client.post(
        "/ablations", json=body, headers={"Authorization": f"Bearer {made.tokens['alice']}"}
    )
    assert answer.status_code == 201, answer.text
    ablation_id: str = answer.json()["id"]
    return ablation_id
