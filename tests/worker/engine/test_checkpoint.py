"""Checkpoints: a resumed run continues the very same series; a wrong checkpoint is refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from tests.worker.conftest import RunFn, small_spec
from worker.engine import CheckpointError, checkpoint_step
from worker.engine.checkpoint import FORMAT, read_checkpoint


@pytest.mark.parametrize("preset", ["seed-baseline", "seed-layernorm"])
def test_resume_continues_the_uninterrupted_series_bit_for_bit(run: RunFn, preset: str) -> None:
    # Two epochs of 300 records: the stop at 437 is mid-way through the second epoch.
    spec = small_spec(preset, epochs=2, train_limit=300)
    full, full_rec = run(spec)
    first, first_rec = run(spec, stop_at=437)
    assert first.status == "stopped" and checkpoint_step(first.checkpoint) == 437

    resumed, rec = run(spec, resume_from=first.checkpoint)
    assert resumed.status == "completed"
    assert rec.steps[0] == 440  # only points after the checkpoint's step
    assert first_rec.steps + rec.steps == full_rec.steps
    assert first_rec.values + rec.values == full_rec.values
    assert np.array_equal(resumed.predictions.outputs, full.predictions.outputs)
    assert resumed.metrics["final_loss"] == full.metrics["final_loss"]
    assert resumed.metrics["test_accuracy"] == full.metrics["test_accuracy"]
    assert resumed.metrics["train_seconds"] > first.metrics["train_seconds"]
    assert resumed.extra["resumed_from_step"] == 437


def test_resume_from_a_periodic_checkpoint(run: RunFn) -> None:
    spec = small_spec("seed-adam")
    full, full_rec = run(spec)
    _, rec = run(spec, flush_interval_s=0.0, checkpoint_interval_s=1e-9, stop_at=150)
    data, step = rec.checkpoints[100]
    resumed, after = run(spec, resume_from=data)
    assert step == 101
    assert after.steps == full_rec.steps[10:]
    assert after.values == full_rec.values[10:]
    assert np.array_equal(resumed.predictions.outputs, full.predictions.outputs)


def test_resuming_a_finished_run_trains_nothing(run: RunFn) -> None:
    spec = small_spec(train_limit=100)
    done, _ = run(spec)
    again, rec = run(spec, resume_from=done.checkpoint)
    assert (again.status, again.steps, rec.values) == ("completed", 100, [])
    assert np.array_equal(again.predictions.outputs, done.predictions.outputs)


def test_checkpoint_of_another_spec_is_refused(run: RunFn) -> None:
    adam, _ = run(small_spec("seed-adam", train_limit=50))
    with pytest.raises(CheckpointError, match="another experiment spec"):
        run(small_spec("seed-baseline", train_limit=50), resume_from=adam.checkpoint)
    with pytest.raises(CheckpointError, match="another experiment spec"):
        run(small_spec("seed-adam", train_limit=50, seed=1), resume_from=adam.checkpoint)


def test_the_device_field_does_not_change_identity(run: RunFn) -> None:
    # A run lost on a GPU worker may be continued on a CPU one.
    first, _ = run(small_spec("seed-adam", train_limit=50, device="cpu"), stop_at=20)
    spec = small_spec("seed-adam", train_limit=50, device="auto")
    resumed, _ = run(spec, resume_from=first.checkpoint, device="cpu")
    assert resumed.steps == 50


@pytest.mark.parametrize(
    "data",
    [b"", b"not a checkpoint", b"PK\x03\x04" + b"\x00" * 40],
)
def test_corrupt_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(CheckpointError):
        checkpoint_step(data)


def test_truncated_checkpoint_is_refused(run: RunFn) -> None:
    result, _ = run(small_spec(train_limit=50))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        run(
            small_spec(train_limit=50), resume_from=result.checkpoint[: len(result.checkpoint) // 2]
        )


def test_foreign_torch_file_is_refused() -> None:
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buffer)
    with pytest.raises(CheckpointError, match=f"not a {FORMAT} file"):
        checkpoint_step(buffer.getvalue())


def test_checkpoint_describes_itself(run: RunFn) -> None:
    spec = small_spec("seed-layernorm", train_limit=60)
    result, rec = run(spec)
    checkpoint = read_checkpoint(result.checkpoint)
    assert checkpoint.spec_json == spec.canonical_json()
    assert (checkpoint.step, checkpoint.total_steps) == (60, 60)
    assert checkpoint.loss_tail == rec.values
    assert checkpoint.train_seconds == result.metrics["train_seconds"]
    assert set(checkpoint.model_state) == {
        "0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"
    }  # fmt: skip
    state = checkpoint.optimizer_state["state"]
    assert float(state[0]["step"]) == 60.0
    assert set(state[0]) == {"step", "exp_avg", "exp_avg_sq"}
