"""The rows of a year of a team's runs, made up but shaped as the store holds real ones.

Pure: numbers and dicts, no database (bench/scale_store.py writes them). Every figure comes
from a seeded generator, so a store of a given size is the same on every build.

What a run looks like:
- a spec from one of the book's presets, with the knobs a team turns (learning rate, hidden
  width, dataset), validated by ExperimentSpec so its hash, group key and price are the real
  ones; one run in ten is the full book length (3 epochs of batch size 1: 18,000 loss
  points), the rest short trials (1 epoch of 2,000..5,000 records: 200..500 points);
- finished runs (88 % succeeded, 7 % failed, 5 % cancelled, the ended ones' curves cut where
  they stopped) spread over the last 365 days, plus the few a team has in flight (queued and
  running, the latest); succeeded runs carry the metrics the worker writes (accuracy, losses,
  per-class accuracy, the confusion matrix, timings), one in twenty its test predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from core.cost import estimate
from core.presets import preset_dict
from core.spec import ExperimentSpec, group_key
from core.store.models import sortable_metric_columns

PRESETS = ("seed-baseline", "seed-bce", "seed-leakyrelu", "seed-adam", "seed-layernorm")
LR_SCALES = (0.3, 1.0, 3.0)
HIDDEN = ([100], [200], [400])
SHORT_LIMITS = (2000, 3000, 4000, 5000)
SEEDS = 5
TAGS = tuple(
    f"{word}" for word in (
        "book", "baseline", "lr-sweep", "width", "norm", "adam", "retry", "paper", "ci",
        "fashion", "debug", "long", "ablation", "nightly", "review", "keep", "draft", "demo",
        "cpu", "followup", "sanity", "seed-check", "v2", "v3", "loss-fn", "quick", "bigger",
        "smaller", "final", "archive",
    )
)  # fmt: skip
WORKERS = tuple(f"worker-{n}@trainer-{n % 2}" for n in range(4))
# In flight at any time: bounded by the workers, not by how many runs the store holds.
QUEUED, RUNNING = 50, 20
YEAR = timedelta(days=365)
TEST_RECORDS = 10_000


@dataclass(frozen=True)
class SpecShape:
    """One validated spec without its seed, and what the store copies out of it."""

    preset: str
    spec: dict[str, Any]  # seedless
    total_steps: int
    loss_points: int
    log_every: int
    group: str
    cost_hours: float
    stored_bytes: int
    dataset: str
    hashes: tuple[str, ...]  # spec_hash by seed


def shape_of(preset: str, spec_dict: dict[str, Any], seeds: int = SEEDS) -> SpecShape:
    spec = ExperimentSpec.model_validate({**spec_dict, "seed": 0})
    price = estimate(spec)
    plain = spec.model_dump(mode="json")
    plain.pop("seed")
    hashes = tuple(
        ExperimentSpec.model_validate({**plain, "seed": s}).fingerprint() for s in range(seeds)
    )
    return SpecShape(
        preset, plain, spec.total_steps, spec.loss_points, spec.log_every, group_key(spec),
        price.cpu_hours, price.stored_bytes, spec.dataset, hashes,
    )  # fmt: skip


def spec_shapes() -> tuple[list[SpecShape], list[SpecShape]]:
    """(full-length specs, short ones): presets x learning rates x widths x datasets."""
    full: list[SpecShape] = []
    short: list[SpecShape] = []
    for preset in PRESETS:
        base = full_spec(preset)
        for scale in LR_SCALES:
            for hidden in HIDDEN:
                for dataset in ("mnist", "fashion-mnist"):
                    model = {**base["model"], "hidden": hidden}
                    spec = {**base, "lr": base["lr"] * scale, "model": model, "dataset": dataset}
                    full.append(shape_of(preset, spec))
                    for limit in SHORT_LIMITS:
                        short.append(shape_of(preset, {**spec, "epochs": 1, "train_limit": limit}))
    return full, short


def full_spec(preset: str) -> dict[str, Any]:
    """The preset's spec with every field spelled out, without the seed."""
    spec = ExperimentSpec.model_validate(preset_dict(preset)).model_dump(mode="json")
    spec.pop("seed")
    return spec


@dataclass
class Run:
    """One experiment row and what it recorded, before it is written."""

    row: dict[str, Any]
    points: int  # loss points it recorded
    packed: bool  # ended: its series is one packed row; else live point rows
    predictions: bool
    tags: list[str] = field(default_factory=list)


def new_id(rng: np.random.Generator) -> str:
    return bytes(rng.integers(0, 256, 16, dtype=np.uint8)).hex()


def loss_curve(rng: np.random.Generator, points: int, log_every: int) -> tuple[Any, Any]:
    """A falling, noisy training loss (steps int, values float32)."""
    steps = np.arange(1, points + 1, dtype=np.int64) * log_every
    start, floor = rng.uniform(0.6, 2.5), rng.uniform(0.01, 0.2)
    rate = rng.uniform(1.0, 6.0) / max(points, 1)
    clean = floor + (start - floor) * np.exp(-rate * np.arange(points))
    noisy = clean * (1.0 + rng.normal(0.0, 0.15, points))
    return steps, np.abs(noisy).astype(np.float32)


def outputs_pool(rng: np.random.Generator, size: int) -> tuple[list[Any], Any]:
    """`size` distinct softmax output arrays [10,000, 10] and the test labels they score."""
    labels = rng.integers(0, 10, TEST_RECORDS).astype(np.uint8)
    pool = []
    for _ in range(size):
        logits = rng.normal(0.0, 1.0, (TEST_RECORDS, 10)).astype(np.float32)
        right = rng.random(TEST_RECORDS) < rng.uniform(0.85, 0.98)
        logits[np.arange(TEST_RECORDS), labels] += np.where(right, 6.0, 0.0).astype(np.float32)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        pool.append((exp / exp.sum(axis=1, keepdims=True)).astype(np.float32))
    return pool, labels


def succeeded_metrics(rng: np.random.Generator, shape: SpecShape, seconds: float) -> dict[str, Any]:
    """What the worker writes for a run that ended well (worker/engine/group.py's keys)."""
    accuracy = float(min(0.995, max(0.1, rng.normal(0.93 if shape.total_steps > 20_000 else
                                                     0.88, 0.03))))  # fmt: skip
    per_class = np.clip(rng.normal(accuracy, 0.02, 10), 0, 1)
    confusion = rng.integers(0, 8, (10, 10))
    np.fill_diagonal(confusion, (per_class * 1000).astype(int))
    test_loss = float(-math.log(accuracy) * rng.uniform(0.8, 1.6))
    return {
        "test_accuracy": accuracy,
        "test_loss": test_loss,
        "per_class_accuracy": [float(v) for v in per_class],
        "confusion_matrix": confusion.tolist(),
        "train_seconds": seconds * 0.9,
        "steps_per_second": shape.total_steps / (seconds * 0.9),
        "final_loss": test_loss * rng.uniform(0.7, 1.1),
        "loss_points": shape.loss_points,
        "phases": {
            "claim_s": float(rng.uniform(0.001, 0.02)), "load_s": float(rng.uniform(0.3, 1.5)),
            "train_s": seconds * 0.9, "evaluate_s": float(rng.uniform(0.2, 0.6)),
            "write_s": float(rng.uniform(0.01, 0.1)),
        },
    }  # fmt: skip


def fingerprint(shape: SpecShape, seed: int, worker: str) -> dict[str, Any]:
    return {
        "engine_version": 7, "engine_path": "fast", "torch": "2.5.1+cpu", "cuda": None,
        "device": "cpu", "device_name": "x86_64", "cpu_capability": "AVX2", "threads": 1,
        "deterministic_algorithms": False, "cudnn_deterministic": False,
        "cudnn_benchmark": False, "cuda_matmul_tf32": None, "flush_denormal": True,
        "fused_runs": 1, "sparse_input": False,
        "cuda_graphs": {"used": False, "reason": "not requested"}, "dataset": shape.dataset,
        "dataset_checksum": "c5a4e8f1d2b3a6970c1e", "spec_hash": shape.hashes[seed],
        "worker": worker,
    }  # fmt: skip


@dataclass(frozen=True)
class Who:
    owner: str
    key_id: str


def make_run(
    rng: np.random.Generator,
    shape: SpecShape,
    seed: int,
    created: datetime,
    who: Who,
    *,
    status: str,
    name: str | None = None,
    tags: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
    predictions: bool = False,
) -> Run:
    """One experiment as the store holds it once `status` was reached."""
    seconds = shape.total_steps / rng.uniform(900.0, 1400.0) + rng.uniform(2.0, 6.0)
    worker = WORKERS[int(rng.integers(len(WORKERS)))]
    queued_for = timedelta(seconds=float(rng.exponential(40.0)))
    started = created + queued_for
    step, points, finished, error = 0, 0, None, None
    if status == "succeeded":
        step, points = shape.total_steps, shape.loss_points
        finished = started + timedelta(seconds=seconds)
        metrics = metrics or succeeded_metrics(rng, shape, seconds)
    elif status in ("failed", "cancelled", "running"):
        part = float(rng.uniform(0.05, 0.95))
        points = int(shape.loss_points * part)
        step = points * shape.log_every
        finished = started + timedelta(seconds=seconds * part)
        if status == "failed":
            error = f"RuntimeError: loss became NaN at step {step}"
        if status == "running":
            finished = None
    elif status != "queued":
        raise ValueError(status)
    in_flight = status in ("queued", "running")
    row: dict[str, Any] = {
        "id": new_id(rng), "name": name, "tags": tags or [], "preset": shape.preset,
        "spec": {**shape.spec, "seed": seed}, "spec_hash": shape.hashes[seed],
        "idempotency_key": None, "status": status, "cancel_requested": status == "cancelled",
        "delete_requested": False, "attempt": 0 if status == "queued" else 1, "handbacks": 0,
        "step": step, "total_steps": 0 if status == "queued" else shape.total_steps,
        "planned_steps": shape.total_steps, "group_key": shape.group, "created_at": created,
        "started_at": None if status == "queued" else started, "finished_at": finished,
        "heartbeat_at": None if status == "queued" else (finished or now_utc()),
        "dispatched_at": created, "worker": None if status == "queued" else worker,
        "device": None if status == "queued" else "cpu", "error": error, "metrics": metrics,
        "fingerprint": fingerprint(shape, seed, worker) if status == "succeeded" else None,
        "dataset": shape.dataset, **sortable_metric_columns(metrics), "owner": who.owner,
        "key_id": who.key_id, "cost": shape.cost_hours, "stored_bytes": shape.stored_bytes,
    }  # fmt: skip
    return Run(row, points, not in_flight, predictions and status == "succeeded")


def when(size: int, index: int, now: datetime) -> datetime:
    """The creation time of the `index`-th of `size` runs, oldest first, over the last year."""
    return now - YEAR * (1.0 - index / size) - timedelta(minutes=30)


def status_of(rng: np.random.Generator, index: int, total: int) -> str:
    """Finished outcomes for all but the latest runs, which are in flight."""
    from_end = total - index
    if from_end <= RUNNING:
        return "running"
    if from_end <= RUNNING + QUEUED:
        return "queued"
    draw = rng.random()
    return "succeeded" if draw < 0.88 else "failed" if draw < 0.95 else "cancelled"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
