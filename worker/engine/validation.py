"""The validation split: training records held out, never trained on, to select with.

The rule (README.md, "Sweeps"): permute the indices of the training split with numpy's
PCG64 generator seeded by SPLIT_SEED (a constant, so the split does not depend on the run's
seed and paired seeds see the same split), hold out the last `validation_records` of that
permutation, and train on the rest in their original order (`train_limit` takes the first N of
them). numpy guarantees the same stream for a seed across its versions, so the split is stable.
The test split is not touched.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import torch

from worker.engine.data import DeviceDataset

SPLIT_SEED = 60_000


@dataclass(frozen=True)
class ValidationSet:
    x: torch.Tensor  # [records, 784] float32 on the training device
    labels: torch.Tensor  # [records] int64


def split_indices(records: int, held: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(indices trained on, indices held out), each ascending; disjoint, together all."""
    if not 0 <= held < records:
        raise ValueError(f"cannot hold out {held} of {records} records")
    order = np.random.default_rng(SPLIT_SEED).permutation(records).astype(np.int64)
    return np.sort(order[: records - held]), np.sort(order[records - held :])


_cache: dict[tuple[str, str, int], tuple[DeviceDataset, ValidationSet]] = {}
_lock = threading.Lock()


def split_dataset(data: DeviceDataset, held: int) -> tuple[DeviceDataset, ValidationSet]:
    """`data` whose training tensors are the records trained on, and the held-out records.
    The view's checksum differs from the whole dataset's (it names what the run read), which
    also keeps caches keyed by checksum (sparse batches) apart. Cached per process."""
    device = str(data.train_x.device)
    key = (data.checksum, device, held)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        pool, kept = split_indices(len(data.train_x), held)
        train = torch.from_numpy(pool).to(data.train_x.device)
        val = torch.from_numpy(kept).to(data.train_x.device)
        checksum = hashlib.sha256(f"{data.checksum}:validation:{held}".encode()).hexdigest()
        view = replace(
            data,
            checksum=checksum,
            train_x=data.train_x.index_select(0, train),
            train_labels=data.train_labels.index_select(0, train),
            train_onehot=data.train_onehot.index_select(0, train),
        )
        found = (view, ValidationSet(data.train_x.index_select(0, val), data.train_labels[val]))
        _cache[key] = found
        return found
