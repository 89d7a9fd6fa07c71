"""The book's CNN (model.type=cnn): built as the book builds it, trained on the autograd step
(the hand-written one refuses it), resumed bit for bit, evaluated with each record's own
BatchNorm statistics, never fused, and priced by the cost model as it really is."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from core.cost import estimate
from core.presets import build_spec
from core.spec import ExperimentSpec, group_key
from tests.worker.conftest import RunFn, small_spec
from worker.engine import checkpoint_step
from worker.engine.fastpath import FastStep
from worker.engine.layout import UnsupportedModelError
from worker.engine.model import RecordBatchNorm2d, build_model, build_optimizer

CPU = torch.device("cpu")


def cnn_spec(**overrides: Any) -> ExperimentSpec:
    return small_spec("cnn-mnist", **({"train_limit": 300, "test_limit": 200} | overrides))


def test_the_network_is_the_books() -> None:
    model = build_model(build_spec("cnn-mnist"), CPU)
    kinds = [type(m).__name__ for m in model]
    assert kinds == [
        "Unflatten", "Conv2d", "LeakyReLU", "RecordBatchNorm2d", "Conv2d", "LeakyReLU",
        "RecordBatchNorm2d", "Flatten", "Linear", "Sigmoid",
    ]  # fmt: skip
    assert (model[1].kernel_size, model[1].stride, model[4].kernel_size) == ((5, 5), (2, 2), (3, 3))
    assert model[8].in_features == 250 and model[2].negative_slope == 0.02
    # The same initial weights as the book's nn.Sequential built in that order after seeding.
    torch.manual_seed(0)
    book = nn.Sequential(
        nn.Conv2d(1, 10, kernel_size=5, stride=2), nn.LeakyReLU(0.02), nn.BatchNorm2d(10),
        nn.Conv2d(10, 10, kernel_size=3, stride=2), nn.LeakyReLU(0.02), nn.BatchNorm2d(10),
        nn.Flatten(), nn.Linear(250, 10), nn.Sigmoid(),
    )  # fmt: skip
    assert torch.equal(book[0].weight, model[1].weight)
    assert torch.equal(book[7].weight, model[8].weight)


def test_it_trains_on_the_autograd_step(run: RunFn) -> None:
    result, recorder = run(cnn_spec())
    assert result.status == "completed" and result.steps == 300
    assert result.fingerprint["engine_path"] == "autograd"
    assert len(recorder.values) == 30 and all(math.isfinite(v) for v in recorder.values)
    assert result.metrics["test_accuracy"] > 0.3  # 300 records: well past chance (0.1)


def test_the_fast_path_refuses_it_loudly() -> None:
    spec = build_spec("cnn-mnist")
    model = build_model(spec, CPU)
    optimizer = build_optimizer(spec, list(model.parameters()))
    with pytest.raises(UnsupportedModelError, match=r"module 0 of the model \(Unflatten"):
        FastStep([model], [spec], [optimizer])


def test_resume_continues_the_uninterrupted_series_bit_for_bit(run: RunFn) -> None:
    spec = cnn_spec(epochs=2, train_limit=200)
    full, full_rec = run(spec)
    first, first_rec = run(spec, stop_at=237)
    assert first.status == "stopped" and checkpoint_step(first.checkpoint) == 237
    resumed, rec = run(spec, resume_from=first.checkpoint)
    assert resumed.status == "completed" and rec.steps[0] == 240
    assert first_rec.values + rec.values == full_rec.values
    assert np.array_equal(resumed.predictions.outputs, full.predictions.outputs)


def test_seeds_are_not_fused(mnist_dir: Path) -> None:
    from worker.engine import run_training, run_training_group

    specs = [cnn_spec(train_limit=60, seed=seed) for seed in (1, 2)]
    assert group_key(specs[0]) != group_key(specs[1])  # claimed one by one
    twice = [cnn_spec(train_limit=60, seed=3)] * 2  # even equal specs train one after another
    results = run_training_group(specs + twice, data_dir=mnist_dir, threads=1)
    assert [r.extra["fused_runs"] for r in results] == [1, 1, 1, 1]
    alone = run_training(specs[1], data_dir=mnist_dir, threads=1)
    assert np.array_equal(alone.predictions.outputs, results[1].predictions.outputs)


def test_evaluation_normalizes_each_record_by_itself() -> None:
    """Eval mode is the book's train-mode BatchNorm2d at a batch of one, record by record, and
    leaves the running estimates alone."""
    torch.manual_seed(0)
    norm = RecordBatchNorm2d(4)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    x = torch.randn(5, 4, 6, 6) * 3 + 1
    book = nn.BatchNorm2d(4)
    book.load_state_dict(norm.state_dict())
    expected = torch.cat([book(x[i : i + 1]) for i in range(5)])  # train mode, one at a time
    norm.eval()
    before = norm.running_mean.clone()
    with torch.no_grad():
        got = norm(x)
    torch.testing.assert_close(got, expected.detach(), rtol=0, atol=1e-5)
    assert torch.equal(norm.running_mean, before)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_the_cost_model_counts_what_the_engine_builds(batch_size: int) -> None:
    spec = build_spec(
        "cnn-mnist",
        {"batch_size": batch_size, "train_limit": 600, "model.hidden": [32]}
        | (
            {"model.conv": [{"channels": 8, "kernel": 3, "pool": "max2"}]} if batch_size > 1 else {}
        ),
    )
    cost = estimate(spec)
    model = build_model(spec, CPU)
    assert cost.parameters == sum(p.numel() for p in model.parameters())
    assert cost.buffers == sum(b.numel() for b in model.buffers())
    optimizer = build_optimizer(spec, list(model.parameters()))
    model(torch.rand(batch_size, 784)).sum().backward()
    optimizer.step()
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    assert len(buffer.getvalue()) <= cost.checkpoint_bytes


def test_the_book_recipe_is_priced_as_measured() -> None:
    cost = estimate(build_spec("cnn-mnist"))
    assert cost.parameters == 3_720 and cost.steps == 180_000
    # Measured (bench/book_cnn.py, one thread): 3 epochs in 269 s on a quiet machine, about
    # 1.5 ms a step; 2.5-4.3 ms under load. The estimate errs on the long side.
    assert 420 < cost.cpu_seconds < 700
