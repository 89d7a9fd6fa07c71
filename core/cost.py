"""What a spec costs to run and to keep, and the bounds every submission is checked against.

`estimate(spec)` answers every figure of one run (core.kinds.SpecCost: parameters, optimizer
state, checkpoint size, peak memory, steps, records, loss points, step-parameters, CPU time
and the bytes a finished run keeps in the store) with the cost function of the spec's kind (a
classifier's: core/kinds/classifier_cost.py). `CostLimits` (from the settings) and
`violations` / `ablation_violations` say which bound a spec or an ablation passes, and by how
much. Per-user quotas reuse the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel

from core.kinds import SpecCost, kind_of
from core.settings import Settings

__all__ = [
    "AblationCost",
    "CostLimits",
    "SpecCost",
    "ablation_total",
    "ablation_violations",
    "estimate",
    "violations",
]

_MIB = 1_048_576


def estimate(spec: BaseModel) -> SpecCost:
    """Every figure of one run of `spec`, from the spec alone, by its kind's cost function."""
    return kind_of(spec).cost(spec)


@dataclass(frozen=True)
class CostLimits:
    checkpoint_bytes: int
    memory_bytes: int
    run_cpu_hours: float
    ablation_cpu_hours: float
    run_stored_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CostLimits:
        return cls(
            checkpoint_bytes=settings.max_checkpoint_bytes,
            memory_bytes=settings.max_run_memory_bytes,
            run_cpu_hours=settings.max_run_cpu_hours,
            ablation_cpu_hours=settings.max_ablation_cpu_hours,
            run_stored_bytes=settings.max_run_stored_bytes,
        )


def _size(n: float) -> str:
    return f"{n / _MIB:,.1f} MiB" if n < 1024 * _MIB else f"{n / (1024 * _MIB):,.2f} GiB"


def violations(cost: SpecCost, limits: CostLimits) -> list[str]:
    """Each bound one run passes, with its figure, the bound, how far over, and what helps."""
    found = []
    if cost.checkpoint_bytes > limits.checkpoint_bytes:
        found.append(
            f"its checkpoint would be {_size(cost.checkpoint_bytes)} ({cost.parameters:,} "
            f"parameters and {cost.optimizer_state:,} optimizer values); the bound "
            f"(max_checkpoint_bytes) is {_size(limits.checkpoint_bytes)}, "
            f"{cost.checkpoint_bytes / limits.checkpoint_bytes:.1f}x over: use fewer or "
            "narrower hidden layers, or an optimizer that keeps less state (sgd)"
        )
    if cost.memory_bytes > limits.memory_bytes:
        found.append(
            f"it would need about {_size(cost.memory_bytes)} of memory; the bound "
            f"(max_run_memory_bytes) is {_size(limits.memory_bytes)}, "
            f"{cost.memory_bytes / limits.memory_bytes:.1f}x over: lower batch_size or use "
            "fewer or narrower hidden layers"
        )
    if cost.stored_bytes > limits.run_stored_bytes:
        found.append(
            f"it would keep about {_size(cost.stored_bytes)} in the store (weights "
            f"{_size(cost.model_bytes)}, checkpoint {_size(cost.checkpoint_bytes)}, series and "
            f"outputs {_size(cost.series_bytes + cost.outputs_bytes)}); the bound "
            f"(max_run_stored_bytes) is {_size(limits.run_stored_bytes)}, "
            f"{cost.stored_bytes / limits.run_stored_bytes:.1f}x over: use fewer or narrower "
            "hidden layers"
        )
    if cost.cpu_hours > limits.run_cpu_hours:
        found.append(
            f"it would take about {cost.cpu_hours:,.1f} CPU-hours ({cost.step_parameters:.3g} "
            f"step-parameters); the bound (max_run_cpu_hours) is {limits.run_cpu_hours:g}, "
            f"{cost.cpu_hours / limits.run_cpu_hours:.1f}x over: lower epochs or train_limit, "
            "or use a smaller network"
        )
    return found


@dataclass(frozen=True)
class AblationCost:
    runs: int
    step_parameters: float
    cpu_seconds: float
    checkpoint_bytes: int  # all the runs' checkpoints together
    stored_bytes: int  # all that the runs keep in the store together (SpecCost.stored_bytes)

    @property
    def cpu_hours(self) -> float:
        return self.cpu_seconds / 3600

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_hours": self.cpu_hours}


def ablation_total(costs: Iterable[tuple[SpecCost, int]]) -> AblationCost:
    """The total of (cost of one run, how many runs of it) pairs: an arm and its seeds."""
    pairs = list(costs)
    return AblationCost(
        runs=sum(n for _, n in pairs),
        step_parameters=sum(c.step_parameters * n for c, n in pairs),
        cpu_seconds=sum(c.cpu_seconds * n for c, n in pairs),
        checkpoint_bytes=sum(c.checkpoint_bytes * n for c, n in pairs),
        stored_bytes=sum(c.stored_bytes * n for c, n in pairs),
    )


def ablation_violations(total: AblationCost, limits: CostLimits) -> list[str]:
    if total.cpu_hours <= limits.ablation_cpu_hours:
        return []
    return [
        f"its {total.runs:,} runs would take about {total.cpu_hours:,.1f} CPU-hours together; "
        f"the bound (max_ablation_cpu_hours) is {limits.ablation_cpu_hours:g}, "
        f"{total.cpu_hours / limits.ablation_cpu_hours:.1f}x over: use fewer seeds or factor "
        "values, or shorter runs (epochs, train_limit)"
    ]
