"""CUDA graphs of the fused step.

Without a GPU, the graph path's own logic (device-side batch cursor and loss index, chunks
aligned to log_every, the two chunk variants, epochs wrapping, resuming off a chunk boundary,
rebuilding after a stop, falling back when a capture fails) runs with chunks that are replayed
by running their steps eagerly instead of from a captured graph: it must give the eager
loop's series bit for bit. The CUDA tests proper are skipped without CUDA.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from core.spec import ExperimentSpec
from tests.worker.conftest import Recorder, RunFn, small_spec
from tests.worker.engine.test_fused import run_group, seeds
from worker.engine import group, runner
from worker.engine.graphs import GraphSteps, chunk_size

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class EagerChunks(GraphSteps):
    """A chunk "replayed" by running its steps eagerly from the device cursor (no capture)."""

    def _stream(self) -> Any:
        return None

    @contextlib.contextmanager
    def warmup(self) -> Iterator[None]:
        yield

    def _capture(self, logs: bool, pool: Any) -> tuple[Any, Any]:
        return SimpleNamespace(replay=lambda: self._chunk(logs)), None


class FailingCapture(EagerChunks):
    def _capture(self, logs: bool, pool: Any) -> tuple[Any, Any]:
        raise RuntimeError("operation not permitted when stream is capturing")


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Every run plans (emulated) graphs, as a CUDA run would."""
    chosen: dict[str, Any] = {"steps": EagerChunks}
    original = group._graph_plan

    def plan(spec: ExperimentSpec, dev: torch.device, data: Any, options: Any, mode: str) -> Any:
        chosen_plan = original(spec, dev, data, options, mode)
        if chosen_plan.reason == "not a CUDA device":  # plan as for CUDA, emulated
            chosen_plan = original(spec, torch.device("cuda"), data, options, mode)
            chosen_plan.steps = chosen["steps"]
        return chosen_plan

    monkeypatch.setattr(group, "_graph_plan", plan)
    yield chosen


def test_chunks_divide_log_every() -> None:
    assert [chunk_size(n) for n in (1, 7, 10, 64, 100, 101)] == [1, 7, 10, 32, 25, 1]


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # log_every 10: one chunk of 10 that logs
        {"log_every": 64, "epochs": 2, "train_limit": 300},  # chunks of 32, with and without a log
        {"log_every": 7, "batch_size": 4, "train_limit": 200},
        {"model": {"normalization": "batch_norm"}, "batch_size": 4, "train_limit": 200},
    ],
)
def test_replayed_chunks_give_the_eager_series(
    run: RunFn, emulated: dict[str, Any], overrides: dict[str, Any]
) -> None:
    spec = small_spec("seed-adam", **overrides)
    eager, eager_rec = run(spec, cuda_graphs=False, sparse_input=False)
    graphed, rec = run(spec, sparse_input=False)
    assert graphed.fingerprint["cuda_graphs"] == {"used": True, "reason": None}
    assert eager.fingerprint["cuda_graphs"]["used"] is False
    assert rec.values == eager_rec.values and rec.steps == eager_rec.steps
    assert np.array_equal(graphed.predictions.outputs, eager.predictions.outputs)


def test_a_resumed_run_replays_from_the_next_chunk(run: RunFn, emulated: dict[str, Any]) -> None:
    spec = small_spec("seed-baseline", epochs=2, train_limit=300)
    full, full_rec = run(spec, cuda_graphs=False, sparse_input=False)
    first, first_rec = run(spec, stop_at=437, cuda_graphs=False, sparse_input=False)
    resumed, rec = run(spec, resume_from=first.checkpoint, sparse_input=False)
    assert resumed.fingerprint["cuda_graphs"]["used"] is True
    assert first_rec.values + rec.values == full_rec.values
    assert np.array_equal(resumed.predictions.outputs, full.predictions.outputs)


def test_fused_runs_replayed_and_one_stopped(
    run: RunFn, mnist_dir: Path, emulated: dict[str, Any]
) -> None:
    specs = seeds("seed-layernorm", 3, train_limit=300)
    eager, eager_recs = run_group(mnist_dir, specs, cuda_graphs=False, sparse_input=False)
    results, recs = run_group(mnist_dir, specs, stop_at=[None, 95, None], sparse_input=False)
    # A run stops between replays: at the end of the chunk it was in.
    assert results[1].status == "stopped" and results[1].steps == 100
    assert recs[1].values == eager_recs[1].values[:10]
    for i in (0, 2):
        assert recs[i].values == eager_recs[i].values
        assert np.array_equal(results[i].predictions.outputs, eager[i].predictions.outputs)
        assert results[i].fingerprint["cuda_graphs"]["used"] is True


def test_a_failed_capture_falls_back_to_eager_steps(run: RunFn, emulated: dict[str, Any]) -> None:
    emulated["steps"] = FailingCapture
    spec = small_spec("seed-adam", train_limit=200)
    _, eager_rec = run(spec, cuda_graphs=False)
    result, rec = run(spec)
    graphs = result.fingerprint["cuda_graphs"]
    assert graphs["used"] is False and "capture failed (RuntimeError" in graphs["reason"]
    assert rec.values == eager_rec.values


def test_why_graphs_are_not_used(run: RunFn) -> None:
    result, _ = run(small_spec("seed-adam", train_limit=20))
    assert result.fingerprint["cuda_graphs"] == {"used": False, "reason": "not a CUDA device"}


def cuda_series(spec: ExperimentSpec, mnist_dir: Path, **kwargs: Any) -> tuple[Any, Recorder]:
    recorder = Recorder()
    result = runner.run_training(
        spec, data_dir=mnist_dir, callbacks=recorder.callbacks(), device="cuda", **kwargs
    )
    return result, recorder


@CUDA
@pytest.mark.parametrize("preset", ["seed-baseline", "seed-adam", "seed-layernorm"])
def test_cuda_graphs_give_the_eager_series(mnist_dir: Path, preset: str) -> None:
    spec = small_spec(preset, device="cuda")
    eager, eager_rec = cuda_series(spec, mnist_dir, cuda_graphs=False)
    graphed, rec = cuda_series(spec, mnist_dir)
    assert graphed.fingerprint["cuda_graphs"] == {"used": True, "reason": None}
    assert rec.values == eager_rec.values
    assert np.array_equal(graphed.predictions.outputs, eager.predictions.outputs)


@CUDA
@pytest.mark.parametrize("preset", ["seed-baseline", "seed-layernorm"])
def test_cuda_fused_runs_are_close_to_runs_alone(mnist_dir: Path, preset: str) -> None:
    specs = [small_spec(preset, seed=s, device="cuda") for s in range(3)]
    recorders = [Recorder() for _ in specs]
    fused = runner.run_training_group(
        specs, data_dir=mnist_dir, callbacks=[r.callbacks() for r in recorders], device="cuda"
    )
    for spec, result, rec in zip(specs, fused, recorders, strict=True):
        alone, alone_rec = cuda_series(spec, mnist_dir)
        assert result.fingerprint["fused_runs"] == 3
        # Batched cuBLAS kernels may round otherwise than a run's own.
        np.testing.assert_allclose(rec.values, alone_rec.values, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(result.predictions.outputs, alone.predictions.outputs, atol=1e-3)
