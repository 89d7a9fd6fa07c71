"""Updates of stacked runs change each run's values exactly as they change alone.

Fused Adam on tensors cut into pieces (what the CUDA path does, so the kernel spreads over the
GPU) updates the very same memory to the very same values as on the whole tensors: each value's
arithmetic is the same, only the kernel's blocks are cut differently. The batch-of-one SGD
update (an outer product) of R stacked runs equals each run's own update, whatever R and the
shapes (a batched GEMM at an inner size of 1 rounded otherwise on AVX-512 CPUs)."""

from __future__ import annotations

import pytest
import torch

from worker.engine.update import outer_add, pieces


def _adam(params: list[torch.Tensor], grads: list[torch.Tensor], avgs: list[torch.Tensor],
          sqs: list[torch.Tensor], steps: list[torch.Tensor]) -> None:  # fmt: skip
    torch._fused_adam_(
        params, grads, avgs, sqs, [], steps, lr=1e-3, beta1=0.9, beta2=0.999,
        weight_decay=0.01, eps=1e-8, amsgrad=False, maximize=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
        ),
    ],
)
def test_pieces_are_views_and_the_update_is_the_same_value_by_value(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    shape = (200, 784)
    # parameter, gradient, first and second moments (the second moment is never negative)
    whole = [torch.randn(shape, generator=gen).to(device) for _ in range(2)]
    whole += [torch.zeros(shape, device=device), torch.zeros(shape, device=device)]
    cut_src = [t.clone() for t in whole]
    step_whole, step_cut = torch.zeros((), device=device), torch.zeros((), device=device)
    cut = pieces(cut_src, 4096)
    assert len(cut[0]) == 39 and all(p.numel() <= 4096 for p in cut[0])
    assert all(p.data_ptr() >= cut_src[0].data_ptr() for p in cut[0])  # views, not copies
    for _ in range(5):
        step_whole += 1
        step_cut += 1
        _adam([whole[0]], [whole[1]], [whole[2]], [whole[3]], [step_whole])
        _adam(cut[0], cut[1], cut[2], cut[3], [step_cut] * len(cut[0]))
    for a, b in zip(whole, cut_src, strict=True):
        assert torch.equal(a, b)


def test_small_or_strided_tensors_stay_whole() -> None:
    small = [torch.zeros(10) for _ in range(4)]
    assert [len(c) for c in pieces(small, 4096)] == [1, 1, 1, 1]
    strided = [torch.zeros(100, 100).t() for _ in range(4)]
    assert [len(c) for c in pieces(strided, 64)] == [1, 1, 1, 1]


@pytest.mark.parametrize("runs", [2, 3, 8])
@pytest.mark.parametrize(("rows", "columns"), [(200, 784), (10, 201), (64, 32), (32, 64), (7, 5)])
def test_outer_add_of_a_group_is_each_run_alone(runs: int, rows: int, columns: int) -> None:
    generator = torch.Generator().manual_seed(rows * columns + runs)
    weight = torch.randn(runs, rows, columns, generator=generator)
    column = torch.randn(runs, rows, 1, generator=generator)
    row = torch.randn(runs, 1, columns, generator=generator)
    before = weight.clone()
    alone = [weight[r : r + 1].clone() for r in range(runs)]
    for r, mine in enumerate(alone):
        outer_add(mine, column[r : r + 1], row[r : r + 1])
    outer_add(weight, column, row)
    for r, mine in enumerate(alone):
        assert torch.equal(weight[r : r + 1], mine)
    torch.testing.assert_close(weight, before + column @ row)  # the update it claims to be
