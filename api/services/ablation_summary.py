"""The ablation summary: per-arm statistics and a family of paired comparisons between arms.

Which pairs are compared (`compare`):
- `reference`: every arm against one reference arm (arm 0 by default), as "is arm k better
  than the baseline?".
- `successive`: arm k against arm k-1, for designs where each arm changes one knob of the one
  before (the book's chain), as "did this knob help?".

Each comparison is a paired t-test over the seeds both arms finished, with Cohen's d_z and
the seeds needed for 80 % power (api/services/stats.py). p-values are Holm-adjusted across the
family of comparisons (`p_holm`), each family on its own: the metric (a classifier's test
accuracy, a GAN's label entropy: `metric` names it, and it is the key of its figures), final
loss, and the per-record tests (classifiers only: a GAN stores no per-record outputs).

Final loss is compared only between arms that train with the same loss function: MSE and BCE
values are on different scales, so their difference says nothing about which arm learned
more. Such pairs get `final_loss: null` and a note saying why.

When a pair shares fewer than FEW_SEEDS seeds, the test over seeds has little or no power, so
each shared seed's two runs are also compared record by record on the test set they were both
scored on (McNemar's exact test and a bootstrap interval; api/services/paired_records.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from api.services import paired_records
from api.services.power import ALPHA, TARGET_POWER
from api.services.stats import (
    CONFIDENCE,
    EFFECT_SIZE,
    METHOD,
    TEST_NAME,
    PairedDifference,
    describe_many,
    holm,
    paired_difference,
    paired_differences,
)

CompareMode = Literal["reference", "successive"]
FEW_SEEDS = 3
RECORDS_RULE = (
    f"pairs sharing fewer than {FEW_SEEDS} seeds are also compared record by record, one "
    "analysis per shared seed (the two runs of that seed)"
)

# (arm index, baseline arm index, seed) -> the per-record analysis of that seed's two runs,
# or None when either run has no stored predictions.
RecordsLookup = Callable[[int, int, int], dict[str, Any] | None]


@dataclass(frozen=True)
class ArmResults:
    """The finished runs of one arm, by seed: the figure compared (`metric`: a classifier's
    test accuracy, a GAN's label entropy; core/kinds Kind.summary_metric) and the final loss."""

    index: int
    label: str
    values: Mapping[int, float]
    final_loss: Mapping[int, float]
    loss_function: str | None = None
    metric: str = "test_accuracy"


def comparison_pairs(count: int, compare: CompareMode, reference: int) -> list[tuple[int, int]]:
    """(arm, baseline) positions of the comparisons, in arm order."""
    if compare == "successive":
        return [(k, k - 1) for k in range(1, count)]
    return [(k, reference) for k in range(count) if k != reference]


def _same_loss(arm: ArmResults, base: ArmResults) -> bool:
    return arm.loss_function is not None and arm.loss_function == base.loss_function


def _loss_note(arm: ArmResults, base: ArmResults) -> str:
    return (
        f"final loss not compared: arm {arm.index} trains with {arm.loss_function}, arm "
        f"{base.index} with {base.loss_function}; different loss functions put the loss on "
        "different scales, so their difference means nothing"
    )


def _records(
    arm: ArmResults, base: ArmResults, seeds: Sequence[int], lookup: RecordsLookup | None
) -> list[dict[str, Any]] | None:
    if lookup is None or not 0 < len(seeds) < FEW_SEEDS:
        return None
    found = []
    for seed in seeds:
        analysis = lookup(arm.index, base.index, seed)
        if analysis is not None:
            found.append({"seed": seed, **analysis})
    return found


def _comparison(
    arm: ArmResults,
    base: ArmResults,
    lookup: RecordsLookup | None,
    metric_test: PairedDifference,
    loss_test: PairedDifference | None,
) -> dict[str, Any]:
    difference = metric_test.as_dict()
    return {
        "arm": arm.index,
        "label": arm.label,
        "baseline": base.index,
        "baseline_label": base.label,
        arm.metric: difference,
        "final_loss": None if loss_test is None else loss_test.as_dict(),
        "final_loss_note": None if _same_loss(arm, base) else _loss_note(arm, base),
        "records": _records(arm, base, difference["seeds"], lookup),
    }


def _comparisons(
    arms: Sequence[ArmResults], pairs: list[tuple[int, int]], lookup: RecordsLookup | None
) -> list[dict[str, Any]]:
    """Every comparison, their paired tests computed together (stats.paired_differences);
    final loss only between arms that share a loss function."""
    figures = paired_differences([(arms[k].values, arms[j].values) for k, j in pairs])
    comparable = [(k, j) for k, j in pairs if _same_loss(arms[k], arms[j])]
    losses = paired_differences([(arms[k].final_loss, arms[j].final_loss) for k, j in comparable])
    loss_of = dict(zip(comparable, losses, strict=True))
    return [
        _comparison(arms[k], arms[j], lookup, test, loss_of.get((k, j)))
        for (k, j), test in zip(pairs, figures, strict=True)
    ]


def _adjust(comparisons: list[dict[str, Any]], metric: str) -> None:
    """Holm within each family: the metric, final loss, per-record tests."""
    for key in (metric, "final_loss"):
        tests = [c[key] for c in comparisons if c[key] is not None]
        for test, adjusted in zip(tests, holm([t["p_value"] for t in tests]), strict=True):
            test["p_holm"] = adjusted
    records = [r for c in comparisons for r in c["records"] or []]
    for record, adjusted in zip(records, holm([r["mcnemar_p"] for r in records]), strict=True):
        record["p_holm"] = adjusted


def _arm_rows(arms: Sequence[ArmResults]) -> list[dict[str, Any]]:
    described = describe_many(
        [list(arm.values.values()) for arm in arms]
        + [list(arm.final_loss.values()) for arm in arms]
    )
    return [
        {
            "arm": arm.index,
            "label": arm.label,
            "loss_function": arm.loss_function,
            "n": figures.n,
            arm.metric: figures.as_dict(),
            "final_loss": loss.as_dict(),
            "per_seed": {
                str(s): {arm.metric: arm.values[s], "final_loss": arm.final_loss.get(s)}
                for s in sorted(arm.values)
            },
        }
        for arm, figures, loss in zip(
            arms, described[: len(arms)], described[len(arms) :], strict=True
        )
    ]


def summarize(
    arms: Sequence[ArmResults],
    reference: int = 0,
    *,
    compare: CompareMode = "reference",
    records: RecordsLookup | None = None,
) -> dict[str, Any]:
    """The summary of `arms` (indexed by position) with the comparisons `compare` asks for."""
    if not 0 <= reference < len(arms):
        raise ValueError(f"reference arm {reference} does not exist (arms 0..{len(arms) - 1})")
    metrics = {arm.metric for arm in arms}
    if len(metrics) != 1:
        raise ValueError(f"arms compared on different metrics: {sorted(metrics)}")
    (metric,) = metrics
    pairs = comparison_pairs(len(arms), compare, reference)
    comparisons = _comparisons(arms, pairs, records)
    _adjust(comparisons, metric)
    rows = _arm_rows(arms)
    by_arm = {c["arm"]: c for c in comparisons}
    # Today's per-arm fields, kept: diff_to_reference (reference mode), diff_to_previous.
    for position, row in enumerate(rows):
        mine = by_arm.get(row["arm"])
        if compare == "reference":
            if position == reference:
                itself = paired_difference(arms[position].values, arms[position].values)
                row["diff_to_reference"] = {
                    **itself.as_dict(),
                    "p_holm": None,
                    "note": "the reference arm itself",
                }
            else:
                row["diff_to_reference"] = mine[metric] if mine else None
        else:
            row["diff_to_previous"] = mine[metric] if mine else None
    notes = []
    losses = sorted({str(a.loss_function) for a in arms})
    if len(losses) > 1:
        notes.append(
            f"the arms train with different loss functions ({', '.join(losses)}): final loss is "
            "compared only between arms that share one"
        )
    return {
        "metric": metric,
        "compare": compare,
        "reference": arms[reference].index if compare == "reference" else None,
        "confidence": CONFIDENCE,
        "method": METHOD,
        "test": TEST_NAME,
        "correction": "holm",
        "family_size": sum(c[metric]["p_value"] is not None for c in comparisons),
        "effect_size": EFFECT_SIZE,
        "power": {"alpha": ALPHA, "target": TARGET_POWER, "test": "two-sided paired t-test"},
        "records_method": paired_records.METHOD,
        "records_rule": RECORDS_RULE,
        "notes": notes,
        "arms": rows,
        "comparisons": comparisons,
    }
