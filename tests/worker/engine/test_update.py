"""Fused Adam on tensors cut into pieces (what the CUDA path does, so the kernel spreads over
the GPU) updates the very same memory to the very same values as on the whole tensors: each
value's arithmetic is the same, only the kernel's blocks are cut differently."""

from __future__ import annotations

import pytest
import torch

from worker.engine.update import pieces


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
