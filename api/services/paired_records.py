"""Do two models differ on this test set? A paired analysis over the test records.

With one or two seeds, a test over seeds has no power; but two runs scored on the same
records can be compared record by record. Each record falls in one of four cells:

                         second right   second wrong
    first right           both_right        b
    first wrong               c          both_wrong

Only the discordant records (b, c) carry information about which model is better.
McNemar's exact test: under "same accuracy", each discordant record is equally likely to
favour either model, so b ~ Binomial(b + c, 1/2); the two-sided p-value is
`scipy.stats.binomtest(b, b + c, 0.5)`. The accuracy difference (second - first) is
(c - b) / records; its 95 % interval is a paired percentile bootstrap over records.

The bootstrap resamples the records' cells rather than the records: drawing `records`
records with replacement gives cell counts ~ Multinomial(records, cell shares), exactly the
distribution of an index resample, at a cost independent of the test set's size. Its
generator is seeded from the pair's identity (`seed_key`), so the same request gives the
same interval every time.

This answers "do these two trained models differ on these records", not "does the recipe
differ": that is a question over seeds (api/services/stats.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from core.store.artifacts import PredictionsBlob

RESAMPLES = 10_000
CONFIDENCE = 0.95
METHOD = (
    "per-record paired analysis: McNemar's exact test (two-sided binomial test of b against "
    "b + c discordant records, scipy.stats.binomtest), accuracy difference (c - b) / records "
    f"with a 95% paired percentile bootstrap interval ({RESAMPLES:,} resamples of the "
    "records, seeded by the pair so the same request gives the same interval)"
)

Bools = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True)
class PairedRecords:
    records: int
    both_right: int
    both_wrong: int
    b: int  # first right, second wrong
    c: int  # first wrong, second right
    accuracy_first: float
    accuracy_second: float
    mcnemar_p: float
    ci_low: float
    ci_high: float
    resamples: int
    note: str | None = None

    @property
    def accuracy_diff(self) -> float:
        return (self.c - self.b) / self.records

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "both_right": self.both_right,
            "both_wrong": self.both_wrong,
            "b": self.b,
            "c": self.c,
            "discordant": self.b + self.c,
            "accuracy_first": self.accuracy_first,
            "accuracy_second": self.accuracy_second,
            "accuracy_diff": self.accuracy_diff,
            "mcnemar_p": self.mcnemar_p,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "resamples": self.resamples,
            "note": self.note,
        }


def bootstrap_seed(seed_key: str) -> int:
    """A generator seed from the pair's identity: stable across processes and versions
    (Python's hash() is salted per process, so it is not used)."""
    return int.from_bytes(hashlib.sha256(seed_key.encode()).digest()[:8], "big")


def compare_records(
    first_correct: Bools, second_correct: Bools, *, seed_key: str, resamples: int = RESAMPLES
) -> PairedRecords:
    """The paired analysis of two runs' per-record correctness (equal-length bool arrays)."""
    if first_correct.shape != second_correct.shape or first_correct.ndim != 1:
        raise ValueError("both runs must be scored on the same records")
    records = int(first_correct.size)
    if records == 0:
        raise ValueError("no records to compare")
    both_right = int(np.count_nonzero(first_correct & second_correct))
    b = int(np.count_nonzero(first_correct & ~second_correct))
    c = int(np.count_nonzero(~first_correct & second_correct))
    both_wrong = records - both_right - b - c
    note = None
    if b + c == 0:
        p_value = 1.0
        note = "no discordant records: the two models are right and wrong on the same records"
    else:
        p_value = float(sps.binomtest(b, b + c, 0.5).pvalue)
    rng = np.random.default_rng(bootstrap_seed(seed_key))
    shares = np.array([b, c, records - b - c], dtype=np.float64) / records
    counts = rng.multinomial(records, shares, size=resamples)
    diffs = (counts[:, 1] - counts[:, 0]) / records
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return PairedRecords(
        records=records,
        both_right=both_right,
        both_wrong=both_wrong,
        b=b,
        c=c,
        accuracy_first=(both_right + b) / records,
        accuracy_second=(both_right + c) / records,
        mcnemar_p=p_value,
        ci_low=float(low),
        ci_high=float(high),
        resamples=resamples,
        note=note,
    )


class DifferentRecords(ValueError):
    """The two runs were not scored on the same test records (another dataset)."""


def shared_correctness(first: PredictionsBlob, second: PredictionsBlob) -> tuple[Bools, Bools]:
    """Per-record correctness of both runs on the test records both evaluated (the first
    min(records) of the split: test_limit takes a prefix)."""
    shared = min(first.records, second.records)
    if not np.array_equal(first.labels[:shared], second.labels[:shared]):
        raise DifferentRecords("the runs were evaluated on different test records")
    return (
        first.predicted[:shared] == first.labels[:shared],
        second.predicted[:shared] == second.labels[:shared],
    )


def compare_runs(
    first_id: str, first: PredictionsBlob, second_id: str, second: PredictionsBlob
) -> dict[str, Any]:
    """The paired analysis of two stored runs, second against first, seeded by their ids."""
    a, b = shared_correctness(first, second)
    analysis = compare_records(a, b, seed_key=f"{first_id}:{second_id}")
    return {"first": first_id, "second": second_id, **analysis.as_dict()}
