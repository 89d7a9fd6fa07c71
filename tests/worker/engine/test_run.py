"""run_training end to end on small CPU subsets: the series, the callbacks, stopping, metrics,
per-record outputs and the fingerprint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.worker.conftest import RunFn, small_spec
from worker.engine import run_training
from worker.engine.checkpoint import checkpoint_step

METRIC_KEYS = {
    "test_accuracy",
    "test_loss",
    "per_class_accuracy",
    "confusion_matrix",
    "train_seconds",
    "steps_per_second",
    "final_loss",
    "loss_points",
}


def test_loss_falls_over_a_few_hundred_steps(run: RunFn) -> None:
    for preset in ("seed-baseline", "seed-adam"):
        result, rec = run(small_spec(preset))
        first, last = np.mean(rec.values[:5]), np.mean(rec.values[-10:])
        assert last < 0.6 * first, (preset, first, last)
        assert result.status == "completed"


def test_series_has_one_point_every_log_every_steps(run: RunFn) -> None:
    spec = small_spec("seed-adam", log_every=7)
    result, rec = run(spec, flush_interval_s=0.01)
    assert rec.steps == [7 * k for k in range(1, 600 // 7 + 1)]
    assert result.metrics["loss_points"] == len(rec.values) == spec.loss_points
    assert all(np.isfinite(rec.values))
    # chunks arrive in order, never repeated
    firsts = [chunk[0] for chunk, _ in rec.chunks]
    assert firsts == sorted(firsts)
    assert rec.progress[-1] == (600, 600)
    assert all(b[0] >= a[0] for a, b in zip(rec.progress, rec.progress[1:], strict=False))


def test_same_spec_and_seed_give_a_bit_identical_series(run: RunFn) -> None:
    spec = small_spec("seed-layernorm")
    first, rec1 = run(spec)
    second, rec2 = run(spec)
    assert rec1.values == rec2.values
    assert np.array_equal(first.predictions.outputs, second.predictions.outputs)
    _, rec3 = run(small_spec("seed-layernorm", seed=1))
    assert rec3.values != rec1.values


def test_outputs_for_every_test_record(run: RunFn) -> None:
    result, _ = run(small_spec("seed-leakyrelu", test_limit=321))
    p = result.predictions
    assert p.outputs.shape == (321, 10) and p.outputs.dtype == np.float32
    assert p.labels.shape == p.predicted.shape == (321,)
    assert p.labels.dtype == p.predicted.dtype == np.uint8
    assert p.labels[19] == 4  # the book's record 19 is a handwritten 4
    assert np.array_equal(p.predicted, p.outputs.argmax(axis=1))
    assert ((p.outputs >= 0) & (p.outputs <= 1)).all()  # sigmoid outputs


def test_logits_are_reported_as_probabilities(run: RunFn) -> None:
    result, _ = run(small_spec(loss="cross_entropy", model={"output": "none"}, optimizer="adam"))
    sums = result.predictions.outputs.sum(axis=1)
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)


def test_metrics_agree_with_the_predictions(run: RunFn) -> None:
    result, rec = run(small_spec("seed-adam"))
    m, p = result.metrics, result.predictions
    assert set(m) >= METRIC_KEYS
    confusion = np.array(m["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == 500
    assert m["test_accuracy"] == pytest.approx(float((p.predicted == p.labels).mean()))
    assert m["test_accuracy"] == pytest.approx(np.trace(confusion) / 500)
    assert np.array_equal(confusion.sum(axis=1), np.bincount(p.labels, minlength=10))
    for c in range(10):
        assert m["per_class_accuracy"][c] == pytest.approx(confusion[c, c] / confusion[c].sum())
    assert m["final_loss"] == pytest.approx(np.mean(rec.values[-100:]))
    assert 0 < m["test_loss"] < 1
    assert m["train_seconds"] > 0 and m["steps_per_second"] > 0
    assert result.steps == result.total_steps == 600
    assert checkpoint_step(result.checkpoint) == 600


def test_absent_classes_have_no_accuracy(run: RunFn) -> None:
    result, _ = run(small_spec(test_limit=3))  # test records 0..2 are a 7, a 2 and a 1
    per_class = result.metrics["per_class_accuracy"]
    assert [c for c in range(10) if per_class[c] is not None] == [1, 2, 7]


def test_stopping_through_the_callback_keeps_the_partial_series(run: RunFn) -> None:
    spec = small_spec("seed-bce")
    full, full_rec = run(spec)
    stopped, rec = run(spec, stop_at=234)
    assert stopped.status == "stopped"
    assert stopped.steps == 234
    assert rec.steps == list(range(10, 231, 10))
    assert rec.values == full_rec.values[:23]
    assert stopped.metrics["loss_points"] == 23
    # evaluated on the model as it was at the stop, not as a finished run would be
    assert stopped.predictions.outputs.shape == (500, 10)
    assert not np.array_equal(stopped.predictions.outputs, full.predictions.outputs)
    assert checkpoint_step(stopped.checkpoint) == 234


def test_a_stop_before_the_first_point_gives_an_empty_series(run: RunFn) -> None:
    result, rec = run(small_spec(), stop_at=3)
    assert (result.status, result.steps, rec.values) == ("stopped", 3, [])
    assert result.metrics["final_loss"] is None


def test_checkpoints_arrive_at_the_interval(run: RunFn) -> None:
    spec = small_spec("seed-adam", train_limit=200)
    _, rec = run(spec, flush_interval_s=0.0, checkpoint_interval_s=1e-9)
    assert [step for _, step in rec.checkpoints] == list(range(1, 201))
    for data, step in rec.checkpoints[::50]:
        assert checkpoint_step(data) == step


def test_fingerprint(run: RunFn) -> None:
    spec = small_spec("seed-adam")
    result, _ = run(spec, threads=1)
    fp = result.fingerprint
    assert fp["torch"] == torch.__version__
    assert fp["device"] == "cpu" and fp["device_name"]
    assert fp["threads"] == 1
    assert fp["spec_hash"] == spec.fingerprint()
    assert fp["dataset"] == "mnist"
    assert len(fp["dataset_checksum"]) == 64
    assert fp["deterministic_algorithms"] is torch.are_deterministic_algorithms_enabled()
    assert fp["flush_denormal"] is True
    assert result.device == "cpu"


def test_device_argument_overrides_the_spec(mnist_dir: Path) -> None:
    spec = small_spec(device="cuda", train_limit=20, test_limit=20)
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        run_training(spec, data_dir=mnist_dir)
    result = run_training(spec, data_dir=mnist_dir, device="cpu")
    assert result.device == "cpu"


def test_the_result_says_where_the_time_went(run: RunFn) -> None:
    result, _ = run(small_spec("seed-adam"))
    timings = result.timings
    assert set(timings) == {"load_s", "train_s", "evaluate_s", "save_s"}
    assert all(value >= 0 for value in timings.values()) and timings["train_s"] > 0
    # The loop's own clock and the phase's agree (the phase adds only the final sync).
    assert timings["train_s"] >= result.metrics["train_seconds"] - 1e-3
