"""The first layer on sparse inputs: only the pixels that are not 0 take part.

About 80 % of MNIST's pixels are exactly 0, and a 0 input adds nothing to the first layer's
product, contributes a zero column to its weight gradient and leaves that column unchanged
under plain SGD. So with plain SGD the first layer keeps a working copy of its weights
transposed and extended by the bias, `rows` [785, runs * width]: row p holds what pixel p
feeds to every unit of every run, row 784 the biases (an input that is always 1). Then

- forward is one `embedding_bag`: the sum of the rows of the batch's non-zero pixels, each
  scaled by its value (the bias row by 1), for all runs at once;
- the update is one sparse-times-dense `addmm_`: rows[p] += x[p] * g for each non-zero entry.

The sums run over the non-zero pixels only, in another order than a dense product, so a run
agrees with the dense first layer to float32 rounding, not bit for bit. Fused and alone it
runs the same kernels per run, so there it is bit for bit. The module's own weights stay the
source of truth for evaluation and checkpoints: `sync_to` writes the working copy back.

Adam (and every optimizer but plain SGD) changes every weight at every step, through moments
laid out like the module's weight, so it keeps the dense first layer.

The non-zero entries of the training records are found once per dataset, records and batch
size, and kept for the process (see `sparse_batches`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import torch

from core.model_spec import INPUT_FEATURES

Tensor = torch.Tensor
BIAS_ROW = INPUT_FEATURES  # the input that is always 1
ROWS = INPUT_FEATURES + 1


class SparseBatch(NamedTuple):
    # For each record in turn: its non-zero pixels in order, then BIAS_ROW.
    indices: Tensor  # [n] int64
    values: Tensor  # [n] float32
    offsets: Tensor  # [batch] int64: where each record starts in `indices`
    # The same entries as a coalesced sparse [ROWS, batch] matrix (by pixel, then record).
    transposed: Tensor


_cache: OrderedDict[tuple[str, str, int, int], list[SparseBatch]] = OrderedDict()
_lock = threading.Lock()
_CACHED = 1  # layouts kept per process: about 250 MB for 60,000 records in batches of 1


def sparse_batches(key: str, x: Tensor, batch_size: int) -> list[SparseBatch]:
    """The batches of `x` (records in order, the last one possibly shorter) as sparse inputs,
    computed once per (key, device, records, batch size). `key` names the data (its checksum)."""
    cache_key = (key, str(x.device), len(x), batch_size)
    with _lock:
        cached = _cache.get(cache_key)
        if cached is not None:
            _cache.move_to_end(cache_key)
            return cached
        batches = _build(x, batch_size)
        _cache[cache_key] = batches
        while len(_cache) > _CACHED:
            _cache.popitem(last=False)
        return batches


_CHUNK = 4096  # records handled at once: bounds the temporaries of a 60,000-record build


def _build(x: Tensor, batch_size: int) -> list[SparseBatch]:
    records, device = len(x), x.device
    counts = (
        torch.cat([(x[i : i + _CHUNK] != 0).sum(1) for i in range(0, records, _CHUNK)]) + 1
    )  # + the bias entry
    ends = counts.cumsum(0)
    starts = ends - counts
    total = int(ends[-1]) if records else 0
    # One flat buffer, zero-padded after the entries (see the batch-of-one matrices below).
    longest = int(counts.max()) if records else 0
    flat = torch.zeros(total + longest, dtype=torch.int64, device=device)
    values = torch.empty(total, dtype=x.dtype, device=device)
    for i in range(0, records, _CHUNK):
        rec, pix = x[i : i + _CHUNK].nonzero().unbind(1)  # by record, then pixel
        # Each earlier record of the chunk adds its bias entry before this one.
        where = torch.arange(len(rec), device=device) + rec + starts[i]
        flat[where] = pix
        values[where] = x[i + rec, pix]
    flat[ends - 1] = BIAS_ROW
    values[ends - 1] = 1.0
    indices = flat[:total]
    begin = [*starts[::batch_size].tolist(), total]
    first_record = list(range(0, records, batch_size))
    offsets_all = starts - starts[torch.arange(records, device=x.device) // batch_size * batch_size]
    if batch_size == 1:
        columns = None
        zero = torch.zeros(1, dtype=torch.int64, device=x.device)
    else:
        # By pixel within each batch (stable: records stay in order), for the update's matrix.
        record_of = torch.repeat_interleave(torch.arange(records, device=x.device), counts)
        order = torch.sort(record_of // batch_size * ROWS + indices, stable=True).indices
        columns = torch.stack([indices[order], record_of[order] % batch_size])
        sorted_values = values[order]
    out: list[SparseBatch] = []
    for k, first in enumerate(first_record):
        a, b = begin[k], begin[k + 1]
        size = min(batch_size, records - first)
        entries = values[a:b]
        if columns is None:
            # A record's own entries are already by pixel. Its matrix's second index row (the
            # record within the batch, always 0) is the zero padding after the entries, read
            # through a stride, so no memory per entry is spent on it.
            matrix_indices = flat.as_strided((2, b - a), (total - a, 1), a)
            matrix_values = entries
            offsets = zero
        else:
            matrix_indices = columns[:, a:b]
            matrix_values = sorted_values[a:b]
            offsets = offsets_all[first : first + size]
        matrix = torch.sparse_coo_tensor(
            matrix_indices,
            matrix_values,
            (ROWS, size),
            is_coalesced=True,
            check_invariants=False,
        )
        out.append(SparseBatch(indices[a:b], entries, offsets, matrix))
    return out


class SparseFirstLayer:
    """The first layer of R runs on sparse inputs (plain SGD only), on a working copy."""

    def __init__(self, weight: Tensor, bias: Tensor) -> None:
        # weight [R, width, 784], bias [R, width]: the stacked module parameters.
        runs, width, _ = weight.shape
        self.runs, self.width = runs, width
        self.rows = torch.empty(ROWS, runs * width, dtype=weight.dtype, device=weight.device)
        self.load_from(weight, bias)

    def load_from(self, weight: Tensor, bias: Tensor) -> None:
        runs, width = self.runs, self.width
        self.rows[:BIAS_ROW].view(INPUT_FEATURES, runs, width).copy_(weight.permute(2, 0, 1))
        self.rows[BIAS_ROW].view(runs, width).copy_(bias)

    def sync_to(self, weight: Tensor, bias: Tensor) -> None:
        """Write the working copy back into the modules' (stacked) weights."""
        runs, width = self.runs, self.width
        weight.copy_(self.rows[:BIAS_ROW].view(INPUT_FEATURES, runs, width).permute(1, 2, 0))
        bias.copy_(self.rows[BIAS_ROW].view(runs, width))

    def forward(self, batch: SparseBatch) -> Tensor:
        """[batch, runs * width]: x @ W^T + b for every run."""
        # (torch.embedding_bag takes FBGEMM's kernel, the forward-only op a slower one.)
        out: Tensor = torch.embedding_bag(
            self.rows, batch.indices, batch.offsets, False, 0, False, batch.values, False
        )[0]
        return out

    def update(self, batch: SparseBatch, scaled_grad: Tensor) -> None:
        """rows += x^T @ g, where g [batch, runs * width] already carries -lr."""
        self.rows.addmm_(batch.transposed, scaled_grad)
