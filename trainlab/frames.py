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
    """One row per arm: n, accuracy mean and 95% interval, final loss, and its comparison
    (difference in accuracy with its interval, p and Holm-adjusted p)."""
    by_arm = {c.arm: c for c in summary.comparisons}
    rows = []
    for arm in summary.arms:
        acc = arm.test_accuracy
        row: dict[str, Any] = {
            "arm": arm.arm,
            "label": arm.label,
            "n": arm.n,
            "accuracy": acc.get("mean"),
            "accuracy_low": acc.get("ci_low"),
            "accuracy_high": acc.get("ci_high"),
            "final_loss": arm.final_loss.get("mean"),
        }
        comparison = by_arm.get(arm.arm)
        diff = comparison.test_accuracy if comparison else {}
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
