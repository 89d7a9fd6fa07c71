"""The validation split: fixed and seed-independent, never trained on; rungs report figures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from core.spec import ExperimentSpec
from worker.engine import RunCallbacks, run_training
from worker.engine.data import load_dataset
from worker.engine.runner import _prepare
from worker.engine.validation import split_indices

DATA = Path(os.environ.get("TEST_DATA_DIR", "../shared/data"))


def test_the_split_is_fixed_disjoint_and_whole() -> None:
    train, held = split_indices(60_000, 200)
    again, held_again = split_indices(60_000, 200)
    assert np.array_equal(held, held_again) and np.array_equal(train, again)
    assert len(held) == 200 and not set(train.tolist()) & set(held.tolist())
    assert len(train) + len(held) == 60_000


def test_a_run_reports_validation_figures_at_its_rungs() -> None:
    seen: list[dict[str, float]] = []
    spec = ExperimentSpec.model_validate(
        {"train_limit": 300, "validation_records": 100, "test_limit": 50, "epochs": 1,
         "batch_size": 10, "validation_rungs": [1 / 3, 1.0]}
    )  # fmt: skip
    result = run_training(
        spec, data_dir=DATA, allow_download=False,
        callbacks=RunCallbacks(on_rung=lambda _step, figures: seen.append(figures)),
    )  # fmt: skip
    assert [f["step"] for f in seen] == [10, 30] == spec.rung_steps
    assert result.metrics["rungs"] == seen and result.metrics["validation_records"] == 100
    assert result.metrics["validation_accuracy"] == seen[-1]["validation_accuracy"]


def test_a_run_resumed_from_a_checkpoint_at_a_rung_still_reports_that_rung() -> None:
    """A checkpoint can be taken at a rung's step before the rung's figures are reported (a
    flush comes first); a worker killed in between resumes from that step, and the rung must
    not be skipped: a sweep waits for every rung of every run before it judges a trial."""
    spec = ExperimentSpec.model_validate(
        {"train_limit": 300, "validation_records": 100, "test_limit": 50, "epochs": 1,
         "batch_size": 10, "validation_rungs": [1 / 3, 1.0]}
    )  # fmt: skip
    uninterrupted: list[dict[str, float]] = []
    kept: dict[int, bytes] = {}
    reported_at: dict[int, int] = {}

    def keep(data: bytes, step: int) -> None:
        kept[step] = data
        reported_at[step] = len(uninterrupted)  # rungs reported when it was taken

    run_training(
        spec, data_dir=DATA, allow_download=False, flush_interval_s=0.0,
        checkpoint_interval_s=1e-9,
        callbacks=RunCallbacks(on_rung=lambda _s, f: uninterrupted.append(f), on_checkpoint=keep),
    )  # fmt: skip
    assert reported_at[10] == 0  # the checkpoint at step 10 came before rung 10's figures
    for step, expected in ((10, uninterrupted), (30, uninterrupted[1:])):
        result = run_training(
            spec, data_dir=DATA, allow_download=False, resume_from=kept[step],
        )  # fmt: skip
        assert result.metrics["rungs"] == expected, step  # what on_rung was given


def test_a_stop_asked_for_at_a_rung_takes_effect_at_that_rung() -> None:
    # A pruner decides on a rung's figures: the run must end there, not a flush later (the
    # flush interval here is longer than the whole run, so only the rung can stop it).
    verdict: list[int] = []
    spec = ExperimentSpec.model_validate(
        {"train_limit": 900, "validation_records": 100, "test_limit": 50, "epochs": 1,
         "batch_size": 1, "validation_rungs": [1 / 9, 1 / 3, 1.0]}
    )  # fmt: skip
    calls = RunCallbacks(
        on_rung=lambda step, _figures: verdict.append(step),
        should_stop=lambda: bool(verdict),
    )
    result = run_training(
        spec, data_dir=DATA, allow_download=False, callbacks=calls, flush_interval_s=3600.0
    )
    assert verdict == [100] == spec.rung_steps[:1]
    assert result.status == "stopped" and result.steps == 100
    assert result.metrics["rungs"] == [result.metrics["rungs"][0]]
    assert result.metrics["loss_points"] == 10  # its points up to the rung, flushed


def test_a_run_trains_on_the_split_and_validates_on_exactly_the_held_out_records() -> None:
    """What the run prepares is the documented split, taken once: the records trained on are
    every training record but the held-out ones, and validation reads exactly those."""
    spec = ExperimentSpec.model_validate({"validation_records": 500, "epochs": 1})
    run = _prepare(spec, None, "cpu", DATA, False)
    whole = load_dataset(spec.dataset, DATA, run.device, allow_download=False)
    trained, held = split_indices(len(whole.train_x), 500)
    assert run.validation is not None
    assert len(run.data.train_x) == len(trained) == spec.train_records
    assert np.array_equal(run.data.train_labels.numpy(), whole.train_labels[trained].numpy())
    assert np.array_equal(run.validation.labels.numpy(), whole.train_labels[held].numpy())
    assert np.array_equal(run.validation.x.numpy(), whole.train_x[held].numpy())


def test_a_run_that_skips_the_test_set_reports_validation_only() -> None:
    spec = ExperimentSpec.model_validate(
        {"train_limit": 300, "validation_records": 100, "epochs": 1, "batch_size": 10,
         "evaluate_test": False}
    )  # fmt: skip
    result = run_training(spec, data_dir=DATA, allow_download=False)
    assert "test_accuracy" not in result.metrics and "test_loss" not in result.metrics
    assert len(result.predictions.labels) == 0 == len(result.predictions.outputs)
    assert 0.0 <= result.metrics["validation_accuracy"] <= 1.0


def test_skipping_the_test_set_needs_a_validation_split_and_is_left_out_of_dumps() -> None:
    with pytest.raises(ValidationError, match="evaluate_test=false needs validation_records"):
        ExperimentSpec.model_validate({"evaluate_test": False})
    plain = ExperimentSpec.model_validate({})
    assert "evaluate_test" not in plain.model_dump(mode="json")  # fingerprints unchanged
    held = ExperimentSpec.model_validate({"evaluate_test": False, "validation_records": 10})
    assert held.model_dump(mode="json")["evaluate_test"] is False
    assert (
        held.fingerprint()
        != ExperimentSpec.model_validate({"validation_records": 10}).fingerprint()
    )
