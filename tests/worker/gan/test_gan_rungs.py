"""A GAN run's judge rungs (what a GAN sweep's pruner reads): the judge's figures reported at
each rung step through on_rung, the stop check asked right after (a pruned trial stops at its
rung), and a sweep's trial (evaluate_test false) judging against training images without
reading the test set at all."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save

import worker.gan.runner as gan_runner
from core.presets import build_any_spec, build_spec
from worker.artifacts import model_metadata, state_tensors
from worker.engine.callbacks import RunCallbacks, RunResult
from worker.engine.model import build_model
from worker.gan import run_gan

DATA = Path(os.environ.get("TEST_DATA_DIR", "../shared/data"))


def _judge_file() -> bytes:
    """An (untrained) MNIST classifier's model file: the judge's figures need only its
    network, not its accuracy."""
    spec = build_spec("seed-layernorm", {"epochs": 1, "train_limit": 100})
    model = build_model(spec, torch.device("cpu"))
    metadata = model_metadata(spec, experiment_id="judge", step=1, outcome="completed")
    return save(state_tensors(model.state_dict()), metadata=metadata)


def _spec(**overrides: object) -> Any:
    return build_any_spec("gan-mnist", {
        "train_limit": 150, "epochs": 1, "sample_every": 150, "samples": 4, "judge": "judge",
        "judge_samples": 40, "judge_rungs": [1 / 3, 1.0], **overrides,
    })  # fmt: skip


def _run(spec: Any, stop_at_first_rung: bool = False) -> tuple[RunResult, list[Any]]:
    rungs: list[tuple[int, dict[str, float]]] = []
    file = _judge_file()
    calls = RunCallbacks(
        load_model=lambda _id: file,
        on_rung=lambda step, figures: rungs.append((step, figures)),
        should_stop=lambda: stop_at_first_rung and bool(rungs),
    )
    result = run_gan(spec, data_dir=DATA, callbacks=calls, device="cpu")
    return result, rungs


def test_the_judges_figures_are_reported_at_each_rung() -> None:
    spec = _spec()
    assert spec.rung_steps == [50, 150]
    result, rungs = _run(spec)
    assert result.status == "completed" and [step for step, _ in rungs] == [50, 150]
    for (step, figures), fraction in zip(rungs, [1 / 3, 1.0], strict=True):
        assert figures["step"] == step and figures["fraction"] == pytest.approx(fraction)
        assert set(figures) == {"step", "fraction", "entropy_bits", "confidence", "frechet",
                                "correlation"}  # fmt: skip
        assert all(math.isfinite(v) for v in figures.values())
    # The last rung is the run's final judgement.
    assert rungs[-1][1]["frechet"] == result.metrics["frechet"]
    # Samples are kept at sample points only, not at every rung.
    assert [s["step"] for s in result.extra["samples"]] == [150]


def test_a_run_stopped_at_its_rung_stops_there() -> None:
    result, rungs = _run(_spec(), stop_at_first_rung=True)
    assert result.status == "stopped" and result.steps == 50 and len(rungs) == 1


def test_a_sweeps_trial_never_reads_the_test_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test images poisoned with NaN: a trial's figures stay finite (it judged against
    training images); a run judged against test images reads the NaN (its Fréchet distance
    fails)."""
    load = gan_runner.load_dataset

    def poisoned(*args: Any, **kwargs: Any) -> Any:
        data = load(*args, **kwargs)
        return dataclasses.replace(data, test_x=torch.full_like(data.test_x, math.nan))

    monkeypatch.setattr(gan_runner, "load_dataset", poisoned)
    _, trial = _run(_spec(evaluate_test=False))
    assert all(math.isfinite(v) for _, figures in trial for v in figures.values())
    with pytest.raises(RuntimeError, match="eigh"):
        _run(_spec())


@pytest.mark.parametrize(
    ("rungs", "words"),
    [([0.5, 0.5], "ascending"), ([0.0, 1.0], "within (0, 1]"), ([0.001, 0.002], "same step")],
)
def test_bad_judge_rungs_are_refused(rungs: list[float], words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace("]", r"\]")):
        _spec(judge_rungs=rungs)
