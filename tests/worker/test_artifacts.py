"""The final weights a run leaves: a safetensors file of the engine's own state-dict keys and
the spec in its metadata, stored by the job when the run ends, with the checkpoint dropped
unless the settings keep it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load
from sqlalchemy import Engine

from core.cost import estimate
from core.settings import Settings
from core.store import artifacts
from core.store.session import session_scope
from tests.worker.conftest import RunFn, small_spec
from tests.worker.test_job import _submit
from worker.artifacts import FORMAT, final_weights
from worker.engine.data import load_dataset
from worker.engine.model import build_model
from worker.fused_job import run_delivery


def test_the_file_loads_into_the_engine_network_and_reproduces_its_outputs(
    run: RunFn, mnist_dir: Path
) -> None:
    spec = small_spec("seed-adam", **{"model.normalization": "batch_norm", "batch_size": 8})
    result, _ = run(spec)
    data = final_weights(spec, result, experiment_id="abc")
    assert data is not None
    tensors = load(data)
    model = build_model(spec, torch.device("cpu"))
    model.load_state_dict(tensors)  # strict: every key, no extra
    assert tensors["2.num_batches_tracked"].dtype == torch.int64
    model.eval()
    test_x = load_dataset("mnist", mnist_dir, torch.device("cpu")).test_x[: spec.test_records]
    with torch.no_grad():
        outputs = model(test_x).numpy()
    assert (outputs == result.predictions.outputs).all()
    # The cost model prices the file at least at its size, and not much more (core/cost.py).
    priced = estimate(spec)
    assert len(data) <= priced.model_bytes <= len(data) + 32 * 1024
    assert priced.outputs_bytes == result.predictions.outputs.size * 4 + 2 * spec.test_records


@pytest.mark.parametrize("stop_at", [None, 7])
def test_the_engines_final_state_gives_the_checkpoints_file(
    run: RunFn, stop_at: int | None
) -> None:
    """The weights are made from the engine's copy of the final state, not the checkpoint read
    back: the same tensors and metadata, whether the run completed or was stopped."""
    spec = small_spec("seed-adam", **{"model.normalization": "batch_norm", "batch_size": 8})
    result, _ = run(spec, stop_at=stop_at)
    assert result.final_state is not None
    from_state = final_weights(spec, result, experiment_id="abc")
    from_checkpoint = final_weights(
        spec, dataclasses.replace(result, final_state=None), experiment_id="abc"
    )
    assert from_state is not None and from_checkpoint is not None
    ours, theirs = load(from_state), load(from_checkpoint)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)
    assert _metadata(from_state) == _metadata(from_checkpoint)


def _metadata(data: bytes) -> dict[str, str]:
    header_length = int.from_bytes(data[:8], "little")
    metadata: dict[str, str] = json.loads(data[8 : 8 + header_length])["__metadata__"]
    return metadata


def test_metadata_carries_the_spec_and_the_step(run: RunFn) -> None:
    spec = small_spec("seed-leakyrelu")
    result, _ = run(spec, stop_at=7)
    data = final_weights(spec, result, experiment_id="abc")
    assert data is not None
    header_length = int.from_bytes(data[:8], "little")
    metadata: dict[str, Any] = json.loads(data[8 : 8 + header_length])["__metadata__"]
    assert metadata["format"] == FORMAT and metadata["experiment_id"] == "abc"
    assert json.loads(metadata["spec"]) == spec.model_dump(mode="json")
    assert metadata["step"] == "7" and metadata["outcome"] == "stopped"


def test_a_run_stopped_before_its_first_step_has_no_model(run: RunFn) -> None:
    spec = small_spec()
    result, _ = run(spec, stop_at=1)
    # The engine checks for a stop after each step; a resumed run can end at step 0.
    untrained = dataclasses.replace(result, steps=0)
    assert final_weights(spec, untrained, experiment_id="abc") is None


@pytest.mark.parametrize("keep", [False, True], ids=["checkpoint-dropped", "checkpoint-kept"])
def test_the_job_stores_the_weights_when_the_run_ends(
    engine: Engine, settings: Settings, mnist_dir: Path, keep: bool
) -> None:
    worker_settings = settings.model_copy(
        update={
            "data_dir": mnist_dir,
            "allow_download": False,
            "torch_threads": 1,
            "keep_checkpoints": keep,
        }
    )
    experiment_id = _submit(engine)
    assert run_delivery(experiment_id, engine, worker_settings) == "succeeded"
    with session_scope(engine) as session:
        info = artifacts.model_info(session, experiment_id)
        assert info is not None and info.step == 300
        data = artifacts.read_model(session, experiment_id)
        assert data is not None and len(data) == info.size
        assert (artifacts.get_checkpoint(session, experiment_id) is not None) == keep
    metadata_length = int.from_bytes(data[:8], "little")
    metadata = json.loads(data[8 : 8 + metadata_length])["__metadata__"]
    assert metadata["experiment_id"] == experiment_id
