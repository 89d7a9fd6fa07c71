"""Two runs of one spec for the store-fault tests: the first trained straight through gives the
reference series, the second is left queued to train under the fault and be compared with it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from core.presets import build_spec
from core.settings import Settings
from core.store import experiments
from core.store.session import session_scope
from worker.fused_job import run_delivery


def trained_twin(engine: Engine, settings: Settings, spec: dict[str, Any]) -> tuple[str, str]:
    """(the reference run, trained; its twin, queued) of the seed-adam preset with `spec`."""
    ids = []
    for _ in range(2):
        with session_scope(engine) as session:
            ids.append(experiments.create_experiment(session, build_spec("seed-adam", spec))[0].id)
    reference, twin = ids
    assert run_delivery(reference, engine, settings) == "succeeded"
    return reference, twin
