"""What `trainlab submit --wait` and `trainlab ablate --wait` print at the end: one
experiment's outcome, and an ablation's summary as a fixed-width table."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, digits: int = 4) -> str:
    return (
        "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    )


def experiment_summary(experiment: dict[str, Any]) -> str:
    metrics = experiment.get("metrics") or {}
    progress = experiment.get("progress") or {}
    lines = [f"experiment {experiment['id']}: {experiment['status']}"]
    if "entropy_bits" in metrics:  # a GAN, judged by a classifier
        lines += [
            f"  label entropy  {_fmt(metrics.get('entropy_bits'))} bits (of 3.3219)",
            f"  frechet        {_fmt(metrics.get('frechet'))}",
            f"  final D, G     {_fmt(metrics.get('final_d_loss'))}, "
            f"{_fmt(metrics.get('final_g_loss'))}",
        ]
    else:
        lines += [
            f"  test accuracy  {_fmt(metrics.get('test_accuracy'))}",
            f"  test loss      {_fmt(metrics.get('test_loss'))}",
        ]
    lines += [
        f"  final loss     {_fmt(metrics.get('final_loss'))}",
        f"  train seconds  {_fmt(metrics.get('train_seconds'), 1)}",
        f"  steps          {progress.get('step')} of {progress.get('total')}",
    ]
    if experiment.get("error"):
        lines.append(f"  error          {experiment['error']}")
    return "\n".join(lines)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def _interval(d: dict[str, Any]) -> str:
    return f"[{_pct(d['ci_low'])}, {_pct(d['ci_high'])}]" if d["ci_low"] is not None else "-"


def _raw_interval(d: dict[str, Any]) -> str:
    return f"[{_fmt(d['ci_low'])}, {_fmt(d['ci_high'])}]" if d["ci_low"] is not None else "-"


def _p(v: Any) -> str:
    return "-" if v is None else f"{v:.3g}"


def summary_table(summary: dict[str, Any]) -> str:
    """The ablation summary as a fixed-width table (accuracy in percent, differences in
    percentage points), each arm with its comparison (against the reference arm, or the arm
    before it), the Holm-adjusted p-value, Cohen's d_z and the seeds for 80% power; then the
    per-record analyses and notes, if any."""
    by_arm = {c["arm"]: c for c in summary.get("comparisons", [])}
    metric = summary.get("metric", "test_accuracy")
    # A classifier's accuracy in percent (differences in points); another kind's figure (a
    # GAN's label entropy, in bits) as it is.
    value, interval = (_pct, _interval) if metric == "test_accuracy" else (_fmt, _raw_interval)
    name, unit = ("acc %", "pp") if metric == "test_accuracy" else (metric, "")
    header = ["arm", "n", name, "95% CI", "loss", "vs", f"diff {unit} [95% CI]".replace("  ", " ")]
    header += ["p", "p Holm", "d_z", "seeds@80%"]
    rows = [header]
    for arm in summary["arms"]:
        acc = arm[metric]
        comparison = by_arm.get(arm["arm"])
        row = [f"{arm['arm']} {arm['label']}", str(arm["n"]), value(acc["mean"]), interval(acc)]
        row.append(_fmt(arm["final_loss"]["mean"]))
        if comparison is None:
            row += ["-"] * 6
        else:
            d = comparison[metric]
            dz, needed = d.get("cohen_dz"), d.get("seeds_needed")
            row += [str(comparison["baseline"]), f"{value(d['mean_diff'])} {interval(d)}"]
            row += [_p(d["p_value"]), _p(d.get("p_holm")), "-" if dz is None else f"{dz:.2f}"]
            row.append("-" if needed is None else str(needed))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines += _record_lines(summary)
    lines += [f"note: {n}" for n in summary.get("notes", [])]
    mode = summary.get("compare", "reference")
    against = "arm k vs arm k-1" if mode == "successive" else f"vs arm {summary['reference']}"
    lines.append(
        f"({summary['test']}, {against}, p Holm-adjusted across the comparisons; "
        f"{summary['method']})"
    )
    return "\n".join(lines)


def _record_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for comparison in summary.get("comparisons", []):
        for r in comparison.get("records") or []:
            lines.append(
                f"records, arm {comparison['arm']} vs {comparison['baseline']}, seed {r['seed']}: "
                f"b={r['b']} c={r['c']} of {r['records']}, diff {_pct(r['accuracy_diff'])} pp "
                f"{_interval(r)}, McNemar p={_p(r['mcnemar_p'])} (Holm {_p(r.get('p_holm'))})"
            )
    return lines
