"""Fused groups: runs of one structure trained together, each exactly as if trained alone.

Each run of a group keeps its own callbacks, series, stop, checkpoint and fingerprint; on the
CPU its series is bit-identical to the run alone (test_fastpath.py checks that per knob).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.presets import build_spec
from core.spec import ExperimentSpec, fusable, group_key
from tests.worker.conftest import Recorder, RunFn, small_spec
from worker.engine import RunResult, checkpoint_step, run_training_group
from worker.engine.grouping import cpu_group_size, partition

GroupRun = tuple[list[RunResult], list[Recorder]]


def run_group(
    mnist_dir: Path,
    specs: list[ExperimentSpec],
    *,
    stop_at: list[int | None] | None = None,
    **kwargs: Any,
) -> GroupRun:
    """Like the `run` fixture, for a group; with `stop_at`, callbacks fire after every step."""
    recorders = [Recorder(stop_at=s) for s in (stop_at or [None] * len(specs))]
    if stop_at is not None:
        kwargs.setdefault("flush_interval_s", 0.0)
    kwargs.setdefault("threads", 1)
    results = run_training_group(
        specs, data_dir=mnist_dir, callbacks=[r.callbacks() for r in recorders], **kwargs
    )
    return results, recorders


def seeds(preset: str, count: int, **overrides: Any) -> list[ExperimentSpec]:
    return [small_spec(preset, seed=seed, **overrides) for seed in range(count)]


def test_group_key_ignores_what_runs_may_differ_in() -> None:
    base = build_spec("seed-adam")
    same = [
        base,
        build_spec("seed-adam", {"seed": 7}),
        build_spec("seed-adam", {"lr": 0.01, "weight_decay": 0.1}),
    ]
    assert fusable(same) and len({group_key(s) for s in same}) == 1
    assert not fusable([base, build_spec("seed-layernorm")])
    assert not fusable([base, build_spec("seed-adam", {"batch_size": 2})])
    assert not fusable([])
    # Plain SGD updates in place; momentum makes it the optimizer's own step.
    plain = build_spec("seed-baseline")
    assert fusable([plain, build_spec("seed-baseline", {"lr": 0.1, "seed": 3})])
    assert not fusable([plain, build_spec("seed-baseline", {"momentum": 0.9})])
    momentum = [build_spec("seed-baseline", {"momentum": m}) for m in (0.5, 0.9)]
    assert fusable(momentum)


def test_a_group_of_one_is_run_training(run: RunFn, mnist_dir: Path) -> None:
    spec = small_spec("seed-leakyrelu")
    alone, rec = run(spec)
    (member,), (group_rec,) = run_group(mnist_dir, [spec])
    assert group_rec.values == rec.values and group_rec.steps == rec.steps
    assert np.array_equal(member.predictions.outputs, alone.predictions.outputs)
    assert member.fingerprint["fused_runs"] == alone.fingerprint["fused_runs"] == 1


@pytest.mark.parametrize("preset", ["seed-baseline", "seed-layernorm"])
def test_fused_twice_gives_identical_series(mnist_dir: Path, preset: str) -> None:
    specs = seeds(preset, 4, train_limit=300)
    first, rec1 = run_group(mnist_dir, specs)
    second, rec2 = run_group(mnist_dir, specs)
    assert [r.values for r in rec1] == [r.values for r in rec2]
    assert len({tuple(r.values) for r in rec1}) == 4  # the seeds differ
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.predictions.outputs, b.predictions.outputs)
        assert a.fingerprint["fused_runs"] == 4
        assert a.metrics["train_seconds"] > 0


@pytest.mark.parametrize("preset", ["seed-baseline", "seed-adam"])
def test_stopping_one_run_leaves_the_others(run: RunFn, mnist_dir: Path, preset: str) -> None:
    specs = seeds(preset, 3)
    results, recs = run_group(mnist_dir, specs, stop_at=[None, 234, None])
    stopped, stopped_rec = run(specs[1], stop_at=234)
    assert [r.status for r in results] == ["completed", "stopped", "completed"]
    assert results[1].steps == 234 and checkpoint_step(results[1].checkpoint) == 234
    assert recs[1].values == stopped_rec.values and recs[1].steps == list(range(10, 231, 10))
    assert np.array_equal(results[1].predictions.outputs, stopped.predictions.outputs)
    assert results[1].metrics["loss_points"] == 23
    for i in (0, 2):
        alone, rec = run(specs[i])
        assert recs[i].values == rec.values
        assert np.array_equal(results[i].predictions.outputs, alone.predictions.outputs)
        assert results[i].steps == 600 and recs[i].progress[-1] == (600, 600)


def test_a_group_resumes_from_its_runs_checkpoints(mnist_dir: Path) -> None:
    # Two epochs of 300 records: the stop at 437 is mid-way through the second epoch.
    specs = seeds("seed-layernorm", 3, epochs=2, train_limit=300)
    full, full_recs = run_group(mnist_dir, specs)
    first, first_recs = run_group(mnist_dir, specs, stop_at=[437] * 3)
    assert [r.steps for r in first] == [437] * 3
    resumed, recs = run_group(mnist_dir, specs, resume_from=[r.checkpoint for r in first])
    for i in range(3):
        assert resumed[i].fingerprint["fused_runs"] == 3
        assert resumed[i].extra["resumed_from_step"] == 437
        assert first_recs[i].values + recs[i].values == full_recs[i].values
        assert np.array_equal(resumed[i].predictions.outputs, full[i].predictions.outputs)
        assert resumed[i].metrics["final_loss"] == full[i].metrics["final_loss"]


def test_checkpoints_at_different_steps_train_in_groups_per_step(
    run: RunFn, mnist_dir: Path
) -> None:
    specs = seeds("seed-baseline", 3, train_limit=300)
    first, _ = run_group(mnist_dir, specs, stop_at=[100, 100, 200])
    resumed, recs = run_group(mnist_dir, specs, resume_from=[r.checkpoint for r in first])
    assert [r.fingerprint["fused_runs"] for r in resumed] == [2, 2, 1]
    for i, spec in enumerate(specs):
        alone, rec = run(spec)
        skipped = first[i].steps // 10
        assert recs[i].values == rec.values[skipped:]
        assert np.array_equal(resumed[i].predictions.outputs, alone.predictions.outputs)


def test_a_fused_runs_checkpoint_resumes_alone_and_back(run: RunFn, mnist_dir: Path) -> None:
    specs = seeds("seed-adam", 2, train_limit=300)
    full = [run(spec) for spec in specs]
    fused, _ = run_group(mnist_dir, specs, stop_at=[None, 150])
    # A run's own weights only, not its group's stacked tensors.
    assert len(fused[1].checkpoint) < 1.1 * len(full[1][0].checkpoint)
    alone, rec = run(specs[1], resume_from=fused[1].checkpoint)
    assert rec.values == full[1][1].values[15:]
    assert np.array_equal(alone.predictions.outputs, full[1][0].predictions.outputs)
    # A checkpoint taken alone and one taken fused continue together in a group.
    stopped, _ = run(specs[0], stop_at=150)
    results, recs = run_group(
        mnist_dir, specs, resume_from=[stopped.checkpoint, fused[1].checkpoint]
    )
    for i in range(2):
        assert results[i].fingerprint["fused_runs"] == 2
        assert recs[i].values == full[i][1].values[15:]
        assert np.array_equal(results[i].predictions.outputs, full[i][0].predictions.outputs)


def test_specs_that_cannot_fuse_train_apart(run: RunFn, mnist_dir: Path) -> None:
    specs = [small_spec("seed-baseline", train_limit=200), small_spec("seed-adam", train_limit=200)]
    results, recs = run_group(mnist_dir, specs)
    for spec, result, rec in zip(specs, results, recs, strict=True):
        _, alone_rec = run(spec)
        assert result.fingerprint["fused_runs"] == 1
        assert rec.values == alone_rec.values
        assert result.fingerprint["spec_hash"] == spec.fingerprint()


def test_each_run_gets_its_own_periodic_checkpoints(mnist_dir: Path) -> None:
    specs = seeds("seed-bce", 2, train_limit=100)
    results, recs = run_group(mnist_dir, specs, flush_interval_s=0.0, checkpoint_interval_s=1e-9)
    for spec, rec in zip(specs, recs, strict=True):
        assert [step for _, step in rec.checkpoints] == list(range(1, 101))
        data, step = rec.checkpoints[41]
        _, after = run_group(mnist_dir, [spec], resume_from=[data])
        assert step == 42 and after[0].values == rec.values[4:]
    assert results[0].checkpoint != results[1].checkpoint


@pytest.mark.parametrize(
    "data",
    [
        {"model": {"hidden": [100]}},
        {"model": {"hidden": [37, 19]}, "batch_size": 3},
        {"model": {"hidden": [50, 30]}, "optimizer": "adam"},
        {"model": {"hidden": [37], "normalization": "layer_norm"}, "optimizer": "adam"},
        {"model": {"hidden": [37]}, "optimizer": "adam", "batch_size": 3},
        {"model": {"hidden": [45]}, "batch_size": 5, "momentum": 0.5},
    ],
)
def test_widths_that_break_alignment_still_fuse_bit_for_bit(
    run: RunFn, mnist_dir: Path, data: dict[str, Any]
) -> None:
    # Widths whose stacked slices would not start 64-byte aligned (MKL rounds otherwise there).
    specs = seeds("seed-baseline", 3, train_limit=300, **data)
    results, recs = run_group(mnist_dir, specs)
    for spec, result, rec in zip(specs, results, recs, strict=True):
        alone, alone_rec = run(spec)
        assert rec.values == alone_rec.values
        assert np.array_equal(result.predictions.outputs, alone.predictions.outputs)


def test_on_the_cpu_a_group_holds_what_the_cache_holds(mnist_dir: Path) -> None:
    # Adam touches four tensors of every parameter per step; plain SGD one.
    assert cpu_group_size(build_spec("seed-adam")) == 4
    assert cpu_group_size(build_spec("seed-baseline")) == 19
    specs = seeds("seed-adam", 6, train_limit=50)
    results, _ = run_group(mnist_dir, specs)
    assert [r.fingerprint["fused_runs"] for r in results] == [4, 4, 4, 4, 2, 2]
    results, _ = run_group(mnist_dir, specs, max_fused_runs=6)
    assert [r.fingerprint["fused_runs"] for r in results] == [6] * 6
    cuda = [torch.device("cuda")] * 6
    assert partition(specs, [0] * 6, cuda, fused=True) == [[0, 1, 2, 3, 4, 5]]
    assert partition(specs, [0] * 6, cuda, fused=False) == [[i] for i in range(6)]


def test_one_callbacks_entry_per_spec(mnist_dir: Path) -> None:
    with pytest.raises(ValueError, match="one callbacks"):
        run_training_group(seeds("seed-bce", 2), data_dir=mnist_dir, callbacks=[])
