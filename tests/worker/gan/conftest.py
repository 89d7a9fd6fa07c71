"""One torch thread for the GAN engine's tests, as the worker trains (and restored after)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """On a busy machine, waking a second thread for each of a batch-of-one step's small
    kernels costs more than the step itself; every comparison here is between runs on the
    same setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
