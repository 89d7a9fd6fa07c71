"""Experiments side by side: aligned (optionally smoothed) loss curves, and per-record outputs
with the records where predictions disagree and a paired per-record analysis of each
experiment against the first one. Routes (api/routes/compare.py) parse and shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlmodel import Session

from api.services import curves
from api.services.paired_records import METHOD, compare_runs
from api.services.stats import holm
from core.errors import Conflict, invalid
from core.store import artifacts, experiments, series
from core.store.models import Experiment

PAIRING_RULE = "each experiment against the first one listed (second - first)"


def load(session: Session, ids: list[str]) -> list[Experiment]:
    """The runs compared, named (`who`) and nothing more: their series and predictions are
    read apart."""
    return experiments.require_experiments(session, ids, names_only=True)


def who(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": experiment.id,
        "name": experiment.name,
        "preset": experiment.preset,
        "status": experiment.status,
    }


def loss_comparison(
    session: Session, found: list[Experiment], *, max_points: int | None, smoothing: float
) -> dict[str, Any]:
    """Loss curves on one shared step axis (NaN where a run has no point), smoothed, then
    downsampled keeping each bucket's min and max (max_points None: every point)."""
    smoothed = [
        (steps, curves.tensorboard_ema(values, smoothing))
        for steps, values in series.read_series_many(session, [e.id for e in found])
    ]
    aligned = curves.align(smoothed)
    small = curves.downsample_aligned(aligned, max_points)[0] if max_points else aligned
    return {
        "steps": small.steps.tolist(),
        "smoothing": smoothing,
        "max_points": max_points,
        "curves": [
            {**who(e), "points": int(s.size), "values": curves.json_floats(small.values[i])}
            for i, (e, (s, _)) in enumerate(zip(found, smoothed, strict=True))
        ],
    }


@dataclass(frozen=True)
class Scored:
    """The stored predictions of experiments compared side by side, on their shared records."""

    experiments: list[Experiment]
    blobs: list[artifacts.PredictionsBlob]
    shared: int  # test records every one of them evaluated (a prefix of the split)


def scored(session: Session, found: list[Experiment]) -> Scored:
    """Their predictions: Conflict for one that has none yet, InvalidFields when they were
    evaluated on different test records."""
    blobs = []
    for experiment in found:
        blob = artifacts.read_predictions(session, experiment.id)
        if blob is None:
            raise Conflict(
                f"experiment {experiment.id} has no predictions ({experiment.status}); "
                "they are stored when a run succeeds",
            )
        blobs.append(blob)
    shared = min(b.records for b in blobs)
    labels = blobs[0].labels[:shared]
    if any(not np.array_equal(b.labels[:shared], labels) for b in blobs[1:]):
        invalid(
            "experiments",
            "these experiments were evaluated on different test records (another dataset?)",
        )
    return Scored(found, blobs, shared)


def paired_analysis(found: list[Experiment], blobs: list[artifacts.PredictionsBlob]) -> list[Any]:
    """Every experiment after the first against the first, Holm-adjusted across the pairs."""
    pairs = [
        compare_runs(found[0].id, blobs[0], e.id, b)
        for e, b in zip(found[1:], blobs[1:], strict=True)
    ]
    for pair, adjusted in zip(pairs, holm([p["mcnemar_p"] for p in pairs]), strict=True):
        pair["p_holm"] = adjusted
    return pairs


def predictions_comparison(
    scored: Scored, *, wanted: list[int], disagreements_limit: int
) -> dict[str, Any]:
    """Each experiment's 10 outputs for the `wanted` records, the records (over all the test
    records they share) where their predicted labels are not all the same, and the paired
    per-record analysis of each experiment against the first."""
    found, blobs = scored.experiments, scored.blobs
    labels = blobs[0].labels[: scored.shared]
    predicted = np.stack([b.predicted[: scored.shared] for b in blobs])
    disagree = np.flatnonzero((predicted != predicted[0]).any(axis=0))
    return {
        "experiments": [
            {**who(e), "records": b.records, "accuracy": float((b.predicted == b.labels).mean())}
            for e, b in zip(found, blobs, strict=True)
        ],
        "records": [_record(r, labels, predicted, found, blobs) for r in wanted],
        "disagreements": {
            "compared_records": scored.shared,
            "count": int(disagree.size),
            "records": [
                {
                    "index": int(r),
                    "label": int(labels[r]),
                    "predicted": [int(p) for p in predicted[:, r]],
                }
                for r in disagree[:disagreements_limit]
            ],
        },
        "paired": paired_analysis(found, blobs),
        "paired_rule": PAIRING_RULE,
        "paired_method": METHOD,
    }


def _record(
    r: int,
    labels: Any,
    predicted: Any,
    found: list[Experiment],
    blobs: list[artifacts.PredictionsBlob],
) -> dict[str, Any]:
    return {
        "index": r,
        "label": int(labels[r]),
        "agree": bool((predicted[:, r] == predicted[0, r]).all()),
        "experiments": [
            {
                **who(e),
                "predicted": int(b.predicted[r]),
                "correct": bool(b.predicted[r] == b.labels[r]),
                "outputs": curves.json_floats(b.outputs[r].astype(np.float64)),
            }
            for e, b in zip(found, blobs, strict=True)
        ],
    }
