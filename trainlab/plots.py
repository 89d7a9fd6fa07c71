"""`plot()` for the answers (the `plot` extra): matplotlib, imported only when asked for.
Each draws on `ax` (a new figure's when None) and returns the axes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainlab.models import AblationCurves, AblationSummary, LossSeries, PredictionRecord


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plot() needs matplotlib: pip install 'trainlab[plot]'") from exc
    return plt.figure().add_subplot()


def _nan(values: list[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def loss(series: LossSeries, ax: Any = None) -> Any:
    ax = _axes(ax)
    ax.plot(series.steps, _nan(series.values), label=series.experiment_id[:8])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    return ax


def curves(curves: AblationCurves, ax: Any = None) -> Any:
    ax = _axes(ax)
    for arm in curves.arms:
        (line,) = ax.plot(curves.steps, _nan(arm.mean), label=f"{arm.arm} {arm.label}")
        ax.fill_between(
            curves.steps, _nan(arm.low), _nan(arm.high), color=line.get_color(), alpha=0.2
        )
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss (mean over seeds, band: {curves.band})")
    ax.legend()
    return ax


def forest(summary: AblationSummary, ax: Any = None) -> Any:
    """One row per comparison: the difference in the metric (a classifier's test accuracy in
    percentage points, a GAN's label entropy in bits) with its 95% interval, and a line at zero."""
    ax = _axes(ax)
    accuracy = summary.metric == "test_accuracy"
    scale = 100.0 if accuracy else 1.0
    rows = [c for c in summary.comparisons if summary.figures(c).get("mean_diff") is not None]
    for y, c in enumerate(rows):
        d = summary.figures(c)
        mean = scale * d["mean_diff"]
        if d.get("ci_low") is not None and d.get("ci_high") is not None:
            ax.plot([scale * d["ci_low"], scale * d["ci_high"]], [y, y], color="black")
        ax.plot([mean], [y], "o", color="black")
    ax.axvline(0.0, color="grey", linestyle="--")
    ax.set_yticks(range(len(rows)), [f"{c.label} vs {c.baseline_label}" for c in rows])
    ax.invert_yaxis()
    unit = "test accuracy difference, pp" if accuracy else f"{summary.metric} difference"
    ax.set_xlabel(f"{unit} (95% CI)")
    return ax


def outputs(record: PredictionRecord, ax: Any = None) -> Any:
    ax = _axes(ax)
    colors = [
        "tab:green" if i == record.label else "tab:red" if i == record.predicted else "tab:grey"
        for i in range(len(record.outputs))
    ]
    ax.bar(range(len(record.outputs)), record.outputs, color=colors)
    ax.set_xticks(range(len(record.outputs)))
    ax.set_xlabel("class")
    ax.set_ylabel("output")
    ax.set_title(f"record {record.index}: label {record.label}, predicted {record.predicted}")
    return ax
