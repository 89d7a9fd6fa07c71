"""The sparse first layer (plain SGD on the CPU): the same training as the dense one.

It sums a record's non-zero pixels only, in another order than the dense product over all 784
(and adds its update per pixel row), so the two agree to float32 rounding, amplified over a few
hundred steps, not bit for bit: the same tolerance as the hand-written step against autograd.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.spec import ExperimentSpec
from tests.worker.engine.test_fastpath import BASE, recorded
from worker.engine import run_training
from worker.engine.checkpoint import read_checkpoint
from worker.engine.data import load_dataset
from worker.engine.evaluate import evaluate
from worker.engine.fastpath import FastStep
from worker.engine.model import build_model, build_optimizer
from worker.engine.sparse import BIAS_ROW, ROWS, sparse_batches

CPU = torch.device("cpu")


def sparse_and_dense(mnist_dir: Path, **data: Any) -> None:
    spec = ExperimentSpec.model_validate({**BASE, **data})
    results, series = [], []
    for sparse in (True, False):
        callbacks, values = recorded()
        results.append(
            run_training(
                spec, data_dir=mnist_dir, callbacks=callbacks, threads=1, sparse_input=sparse
            )
        )
        series.append(torch.tensor(values))
    assert results[0].fingerprint["sparse_input"] is True
    assert results[1].fingerprint["sparse_input"] is False
    torch.testing.assert_close(series[0], series[1], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(
        results[0].predictions.outputs, results[1].predictions.outputs, atol=2e-6
    )


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "leaky_relu", "tanh", "gelu"])
def test_activations(mnist_dir: Path, activation: str) -> None:
    model = {"activation": activation, "hidden": [64, 32], "negative_slope": 0.1}
    sparse_and_dense(mnist_dir, model=model)


@pytest.mark.parametrize(
    ("normalization", "batch_size", "activation"),
    [("layer_norm", 1, "leaky_relu"), ("layer_norm", 3, "relu"), ("batch_norm", 16, "tanh")],
)
def test_normalizations(
    mnist_dir: Path, normalization: str, batch_size: int, activation: str
) -> None:
    model = {"normalization": normalization, "hidden": [64, 32], "activation": activation}
    sparse_and_dense(mnist_dir, model=model, batch_size=batch_size, train_limit=320)


@pytest.mark.parametrize(
    ("output", "loss"),
    [("sigmoid", "mse"), ("sigmoid", "bce"), ("softmax", "bce"), ("none", "cross_entropy")],
)
def test_outputs_and_losses(mnist_dir: Path, output: str, loss: str) -> None:
    sparse_and_dense(mnist_dir, model={"output": output}, loss=loss, batch_size=2)


def test_the_books_recipe_and_a_last_short_batch(mnist_dir: Path) -> None:
    sparse_and_dense(mnist_dir, train_limit=1000, lr=0.05)
    sparse_and_dense(mnist_dir, batch_size=7, train_limit=100, log_every=1)


def test_only_plain_sgd_on_the_cpu_reads_sparse_inputs(mnist_dir: Path) -> None:
    for data, sparse in [({}, True), ({"optimizer": "adam"}, False), ({"momentum": 0.9}, False)]:
        spec = ExperimentSpec.model_validate({**BASE, "train_limit": 20, **data})
        result = run_training(spec, data_dir=mnist_dir, threads=1)
        assert result.fingerprint["sparse_input"] is sparse


@pytest.mark.parametrize("batch_size", [1, 3])
def test_sparse_batches_hold_exactly_the_non_zero_pixels(mnist_dir: Path, batch_size: int) -> None:
    data = load_dataset("mnist", mnist_dir, CPU)
    x = data.train_x[:11]  # 11 records: the last batch of 3 is shorter
    batches = sparse_batches(data.checksum, x, batch_size)
    assert sparse_batches(data.checksum, x, batch_size) is batches  # found once, then cached
    with_bias = torch.cat([x, torch.ones(len(x), 1)], 1)
    rows = torch.split(with_bias, batch_size)
    assert len(batches) == len(rows)
    for batch, dense in zip(batches, rows, strict=True):
        rebuilt = torch.zeros_like(dense)
        starts = [*batch.offsets.tolist(), len(batch.indices)]
        for record in range(len(dense)):
            part = slice(starts[record], starts[record + 1])
            rebuilt[record, batch.indices[part]] = batch.values[part]
            assert batch.indices[part][-1] == BIAS_ROW
            assert bool((batch.indices[part][:-1].diff() > 0).all())
        assert torch.equal(rebuilt, dense)
        assert batch.transposed.shape == (ROWS, len(dense))
        assert torch.equal(batch.transposed.to_dense(), dense.t())


def test_the_modules_are_synced_from_the_working_copy(mnist_dir: Path) -> None:
    spec = ExperimentSpec.model_validate({**BASE, "train_limit": 50})
    model = build_model(spec, CPU)
    step = FastStep([model], [spec], [build_optimizer(spec, list(model.parameters()))])
    assert step.uses_sparse_input
    data = load_dataset("mnist", mnist_dir, CPU)
    before = model[0].weight.detach().clone()
    for i, sparse in enumerate(sparse_batches(data.checksum, data.train_x[:50], 1)):
        one = slice(i, i + 1)
        step.step(data.train_x[one], data.train_onehot[one], data.train_labels[one], sparse, None)
    assert torch.equal(model[0].weight, before)  # the working copy moved, not yet the module
    step.sync()
    rows = step.sparse.rows if step.sparse else None
    assert rows is not None
    assert torch.equal(model[0].weight, rows[:BIAS_ROW].t())
    assert torch.equal(model[0].bias, rows[BIAS_ROW])
    assert not torch.equal(model[0].weight, before)


def test_results_and_checkpoints_carry_the_trained_weights(mnist_dir: Path) -> None:
    spec = ExperimentSpec.model_validate({**BASE, "train_limit": 200})
    result = run_training(spec, data_dir=mnist_dir, threads=1)
    model = build_model(spec, CPU)
    model.load_state_dict(read_checkpoint(result.checkpoint).model_state)
    data = load_dataset("mnist", mnist_dir, CPU)
    tests = spec.test_records
    _, predictions = evaluate(model, spec, data.test_x[:tests], data.test_labels[:tests])
    assert np.array_equal(predictions.outputs, result.predictions.outputs)
