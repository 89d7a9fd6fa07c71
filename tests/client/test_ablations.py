"""Ablations from Python: the book's chain over recorded runs (all reused, nothing trains),
its summary and curves as frames and plots, idempotent creates, cancel and delete."""

from __future__ import annotations

import matplotlib
import pytest

from core.presets import BOOK_CHAIN, build_spec
from tests.api.recorded_runs import RecordedRuns
from trainlab import Client, Conflict
from trainlab.models import AblationSummary

matplotlib.use("Agg")

SUBSET = {"epochs": 1, "train_limit": 200, "test_limit": 50}


def _record_book(runs: RecordedRuns) -> None:
    for arm, preset in enumerate(BOOK_CHAIN):
        for seed in range(3):
            spec = build_spec(preset, {**SUBSET, "seed": seed})
            runs.finished_run(spec, accuracy=0.8 + 0.03 * arm + 0.004 * seed, final_loss=0.3)


def test_book_ablation_summary_curves_frames_and_plots(client: Client, runs: RecordedRuns) -> None:
    _record_book(runs)
    made = client.ablations.create(design="book", overrides=SUBSET, seeds=3, name="book")
    assert len(made.arms) == 5 and made.model_extra and made.model_extra["created_experiments"] == 0
    final = client.ablations.wait(made.id, timeout=10)
    assert final.finished and final.status_counts["succeeded"] == 15
    summary = client.ablations.summary(made.id, compare="successive")
    assert summary.compare == "successive" and len(summary.comparisons) == 4
    frame = summary.to_pandas()
    assert list(frame.index) == [0, 1, 2, 3, 4] and frame.loc[1, "vs"] == 0
    assert frame.loc[1, "diff"] == pytest.approx(0.03)
    ax = summary.plot()
    assert len(ax.get_yticklabels()) == 4
    curves = client.ablations.curves(made.id, max_points=50)
    assert [a.arm for a in curves.arms] == [0, 1, 2, 3, 4] and curves.arms[0].seeds == 3
    assert set(curves.to_pandas().columns) >= {"arm", "step", "mean", "low", "high"}
    assert len(curves.plot().get_lines()) == 5
    assert [a.id for a in client.ablations.list(page_size=1)] == [made.id]


def test_two_posts_with_one_key_make_one_ablation(client: Client) -> None:
    body = {"preset": "seed-baseline", "overrides": SUBSET, "seeds": 2,
            "factors": {"optimizer": ["sgd", "adam"]}}  # fmt: skip
    first = client.ablations.create(**body, idempotency_key="ab-1")  # type: ignore[arg-type]
    again = client.ablations.create(**body, idempotency_key="ab-1")  # type: ignore[arg-type]
    assert again.id == first.id and len(list(client.ablations.list())) == 1
    assert again.model_extra and again.model_extra["created_experiments"] == 0
    assert len(list(client.experiments.list())) == 4  # the first POST's runs, no more
    with pytest.raises(Conflict):
        client.ablations.create(**{**body, "seeds": 3}, idempotency_key="ab-1")  # type: ignore[arg-type]
    cancelled = client.ablations.cancel(first.id)
    assert cancelled.model_extra and cancelled.model_extra["cancel_requested"] == 4
    deleted = client.ablations.delete(first.id)
    assert len(deleted.deleted_experiments) == 4


def test_a_gan_summary_reads_its_metric_into_frames_and_the_forest() -> None:
    """A GAN ablation's summary names its metric; the client's frame and forest plot read
    that figure (in bits, unscaled) where a classifier's read test accuracy."""
    stats = {"mean": 2.8, "ci_low": 2.5, "ci_high": 3.1, "n": 2}
    diff = {"mean_diff": 2.575, "ci_low": 1.0, "ci_high": 4.1, "p_value": 0.01, "p_holm": 0.01}
    summary = AblationSummary.model_validate(
        {
            "metric": "entropy_bits",
            "compare": "reference",
            "reference": 0,
            "test": "paired t-test",
            "method": "m",
            "arms": [
                {"arm": 0, "label": "uniform", "n": 2, "entropy_bits": stats,
                 "final_loss": {"mean": 0.3}},
                {"arm": 1, "label": "normal", "n": 2, "entropy_bits": stats,
                 "final_loss": {"mean": 0.3}},
            ],
            "comparisons": [
                {"arm": 1, "label": "normal", "baseline": 0, "baseline_label": "uniform",
                 "entropy_bits": diff}
            ],
        }
    )  # fmt: skip
    frame = summary.to_pandas()
    assert frame.loc[1, "entropy_bits"] == 2.8 and frame.loc[1, "diff"] == 2.575
    assert "accuracy" not in frame.columns
    ax = summary.plot()
    assert ax.get_xlabel() == "entropy_bits difference (95% CI)"
    assert ax.lines[1].get_xdata()[0] == pytest.approx(2.575)  # not x100
