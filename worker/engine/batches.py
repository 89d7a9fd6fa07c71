"""The training batches of a spec, in record order: views of the device-resident dataset, plus
(for the sparse first layer) each batch's non-zero entries, found once per dataset."""

from __future__ import annotations

from typing import NamedTuple

import torch

from core.spec import ExperimentSpec
from worker.engine.data import DeviceDataset
from worker.engine.sparse import SparseBatch, sparse_batches

Tensor = torch.Tensor


class Batch(NamedTuple):
    x: Tensor  # [B, 784]
    onehot: Tensor  # [B, 10]
    labels: Tensor  # [B] int64
    sparse: SparseBatch | None


def train_batches(data: DeviceDataset, spec: ExperimentSpec, *, sparse: bool) -> list[Batch]:
    records, size = spec.train_records, spec.batch_size
    x = data.train_x[:records]
    xs = torch.split(x, size)
    onehots = torch.split(data.train_onehot[:records], size)
    labels = torch.split(data.train_labels[:records], size)
    inputs: list[SparseBatch | None] = (
        list(sparse_batches(data.checksum, x, size)) if sparse else [None] * len(xs)
    )
    return [Batch(*parts) for parts in zip(xs, onehots, labels, inputs, strict=True)]
