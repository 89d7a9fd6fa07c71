"""A tiny kind of job for the registry tests (core, worker, api): a spec model, a cost, its
own series. Registered only inside the tests' with-blocks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from core import kinds


class FakeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["fake"]
    steps: int = 5


def fake_cost(spec: FakeSpec) -> kinds.SpecCost:
    return kinds.SpecCost(
        parameters=7, buffers=0, optimizer_state=0, checkpoint_bytes=64, memory_bytes=1024,
        steps=spec.steps, samples=spec.steps, loss_points=spec.steps, step_parameters=7.0,
        cpu_seconds=3600.0 * 10_000,
    )  # fmt: skip


FAKE = kinds.Kind(
    name="fake",
    spec_model=FakeSpec,
    cost=fake_cost,
    series=("loss_d", "loss_g"),
    record_outputs="nothing",
    artifacts=("model",),
    views=("curves",),
)
