"""`to_pandas()` for the answers (the `pandas` extra), imported only when asked for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainlab.models import AblationSummary, Experiment


def pandas() -> Any:
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas() needs pandas: pip install 'trainlab[pandas]'") from exc
    return pd


def frame(data: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]) -> Any:
    return pandas().DataFrame(data)


def experiments_frame(items: Iterable[Experiment]) -> Any:
    """One row per experiment: id, name, status, preset, created_at, and its metrics."""
    rows = [
        {
            "id": e.id,
            "name": e.name,
            "status": e.status,
            "preset": e.preset,
            "created_at": e.created_at,
            **(e.metrics or {}),
        }
        for e in items
    ]
    return frame(rows)


def summary_frame(summary: AblationSummary) -> Any:
    """One row per arm: n, the metric's mean and 95% interval (`accuracy` for a classifier,
    named after the metric otherwise, e.g. `entropy_bits`), final loss, and its comparison
    (difference in the metric with its interval, p and Holm-adjusted p)."""
    by_arm = {c.arm: c for c in summary.comparisons}
    name = "accuracy" if summary.metric == "test_accuracy" else summary.metric
    rows = []
    for arm in summary.arms:
        acc = summary.figures(arm)
        row: dict[str, Any] = {
            "arm": arm.arm,
            "label": arm.label,
            "n": arm.n,
            name: acc.get("mean"),
            f"{name}_low": acc.get("ci_low"),
            f"{name}_high": acc.get("ci_high"),
            "final_loss": arm.final_loss.get("mean"),
        }
        comparison = by_arm.get(arm.arm)
        diff = summary.figures(comparison) if comparison else {}
        row |= {
            "vs": comparison.baseline if comparison else None,
            "diff": diff.get("mean_diff"),
            "diff_low": diff.get("ci_low"),
            "diff_high": diff.get("ci_high"),
            "p": diff.get("p_value"),
            "p_holm": diff.get("p_holm"),
        }
        rows.append(row)
    return pandas().DataFrame(rows).set_index("arm")
