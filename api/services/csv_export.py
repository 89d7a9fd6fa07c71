"""CSV exports of curves and summaries: tidy tables (one observation per row) that pandas,
R or a spreadsheet read directly. Plain text here; api/http/csv_response.py serves it as a
download.

Numbers are written at full precision (Python's shortest round-trip repr; losses at float32
precision, as stored); missing values are empty cells. Text cells (names, labels) that a
spreadsheet would run as a formula (starting with = + - @ or a control character) get a
leading apostrophe, the OWASP advice against CSV injection.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class Number(str):
    """Text that is already a number (a float32 printed at its own precision, or several
    numbers joined by ";"): written as is, never mistaken for a formula."""


Cell = str | int | float | None


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return repr(float(value)) if np.isfinite(value) else ""
    if isinstance(value, int | np.integer):
        return str(int(value))
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def _float32(value: float | None) -> Number | None:
    # The shortest text that reads back as the same float32 (0.1, not 0.10000000149011612).
    if value is None or not np.isfinite(value):
        return None
    return Number(str(np.float32(value)))


def loss_csv(steps: Any, values: Any, series: str = "loss") -> str:
    """One experiment's loss series: step, then the series' name (a classifier's: loss;
    float32 as stored; NaN is an empty cell)."""
    rows = zip(np.asarray(steps).tolist(), np.asarray(values).tolist(), strict=True)
    return to_csv(("step", series), ((int(s), _float32(v)) for s, v in rows))


def compare_loss_csv(comparison: dict[str, Any]) -> str:
    """Curves of a comparison, long format: experiment_id, name, step, loss (steps where an
    experiment has no point are left out)."""
    rows = []
    for curve in comparison["curves"]:
        for step, value in zip(comparison["steps"], curve["values"], strict=True):
            if value is not None:
                rows.append((curve["experiment_id"], curve["name"], step, _float32(value)))
    return to_csv(("experiment_id", "name", "step", "loss"), rows)


def arm_curves_csv(curves: dict[str, Any]) -> str:
    """Mean curve per arm with its min/max band, long format."""
    rows = []
    for arm in curves["arms"]:
        for i, step in enumerate(curves["steps"]):
            if arm["mean"][i] is None:
                continue
            low, high = arm["low"][i], arm["high"][i]
            rows.append((arm["arm"], arm["label"], arm["seeds"], step, arm["mean"][i], low, high))
    return to_csv(("arm", "label", "seeds", "step", "mean_loss", "low", "high"), rows)


SUMMARY_HEADER = (
    "arm",
    "label",
    "loss_function",
    "n",
    "expected",
    "finished",
    "accuracy_mean",
    "accuracy_std",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "final_loss_mean",
    "compared_with",
    "n_pairs",
    "accuracy_diff",
    "diff_ci_low",
    "diff_ci_high",
    "p_value",
    "p_holm",
    "cohen_dz",
    "seeds_needed",
    "final_loss_diff",
    "final_loss_p_holm",
    "record_seeds",
    "record_b",
    "record_c",
    "record_accuracy_diff",
    "record_ci_low",
    "record_ci_high",
    "mcnemar_p",
    "mcnemar_p_holm",
)


def _joined(records: list[dict[str, Any]], key: str) -> Cell:
    # Several per-record analyses (one per shared seed) share one cell, separated by ";".
    if not records:
        return None
    if len(records) == 1:
        value: Cell = records[0][key]
        return value
    return Number(";".join(_cell(r[key]) for r in records))


def summary_header(metric: str) -> tuple[str, ...]:
    """The columns, the compared figure's named after it: `accuracy_*` for a classifier's
    test accuracy (as ever), `entropy_bits_*` for a GAN's label entropy."""
    name = "accuracy" if metric == "test_accuracy" else metric
    return tuple(
        name + column.removeprefix("accuracy") if column.startswith("accuracy") else column
        for column in SUMMARY_HEADER
    )


def summary_csv(summary: dict[str, Any]) -> str:
    """One row per arm: its statistics, then its comparison (against the reference, or the
    arm before) when it has one."""
    metric = summary.get("metric", "test_accuracy")
    by_arm = {c["arm"]: c for c in summary["comparisons"]}
    rows = []
    for arm in summary["arms"]:
        acc, loss = arm[metric], arm["final_loss"]
        row: list[Cell] = [
            arm["arm"],
            arm["label"],
            arm["loss_function"],
            arm["n"],
            arm.get("expected"),
            arm.get("finished"),
            acc["mean"],
            acc["std"],
            acc["ci_low"],
            acc["ci_high"],
            loss["mean"],
        ]
        c = by_arm.get(arm["arm"])
        if c is None:
            row += [None] * (len(SUMMARY_HEADER) - len(row))
        else:
            d, fl, records = c[metric], c["final_loss"] or {}, c["records"] or []
            row += [c["baseline"], d["n_pairs"], d["mean_diff"], d["ci_low"], d["ci_high"]]
            row += [d["p_value"], d["p_holm"], d["cohen_dz"], d["seeds_needed"]]
            row += [fl.get("mean_diff"), fl.get("p_holm")]
            keys = ("seed", "b", "c", "accuracy_diff", "ci_low", "ci_high", "mcnemar_p", "p_holm")
            row += [_joined(records, k) for k in keys]
        rows.append(row)
    return to_csv(summary_header(metric), rows)
