"""The book's ablation on a subset: every refinement beats the baseline, in the book's order.

The numbers on this subset (6,000 records, 1 epoch, 2,000 test records, seed 0) are about
0.20 / 0.44 / 0.76 / 0.90 / 0.90; the margins asserted are a fraction of the gaps seen over
seeds 0-2, so the test checks the ordering, not the digits.
"""

from __future__ import annotations

import pytest

from core.presets import BOOK_CHAIN, build_spec
from tests.worker.conftest import RunFn


@pytest.mark.slow
def test_five_presets_reproduce_the_books_ordering(run: RunFn) -> None:
    accuracy = {}
    for preset in BOOK_CHAIN:
        spec = build_spec(
            preset, {"epochs": 1, "train_limit": 6000, "test_limit": 2000, "device": "cpu"}
        )
        result, rec = run(spec)
        assert len(rec.values) == 600
        accuracy[preset] = result.metrics["test_accuracy"]
    acc = accuracy
    assert min(acc, key=lambda name: acc[name]) == "seed-baseline", acc
    assert acc["seed-bce"] > acc["seed-baseline"] + 0.1, acc
    assert acc["seed-leakyrelu"] > acc["seed-bce"] + 0.15, acc
    assert acc["seed-adam"] > acc["seed-leakyrelu"] + 0.05, acc
    assert acc["seed-layernorm"] > acc["seed-leakyrelu"] + 0.05, acc
    assert acc["seed-adam"] > 0.85 and acc["seed-layernorm"] > 0.85, acc
