"""The GAN engine on a few hundred records: both series finite and keyed as the book records
them, a resumed run gives the same series as one straight through, the hand-written step
trains as autograd's (resuming from either), and the API's numpy generator draws what
torch's does."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import api.services.gan_inference as gan_inference
import worker.gan.checkpoint as ckpt
import worker.gan.runner as gan_runner
from core.presets import build_any_spec
from worker.engine.callbacks import RunCallbacks
from worker.gan import run_gan
from worker.gan.artifacts import final_weights
from worker.gan.networks import build_models
from worker.gan.runner import generate

DATA = Path(os.environ.get("TEST_DATA_DIR", "../shared/data"))


def _spec(preset: str = "gan-mnist", **overrides: object) -> object:
    return build_any_spec(
        preset, {"train_limit": 200, "epochs": 1, "sample_every": 100, "samples": 4, **overrides}
    )


def _run(spec: object, **kwargs: object) -> tuple[object, dict[str, list[tuple[int, float]]]]:
    points: dict[str, list[tuple[int, float]]] = {}
    calls = RunCallbacks(
        on_series=lambda name, s, v: points.setdefault(name, []).extend(zip(s, v, strict=True))
    )
    result = run_gan(spec, data_dir=DATA, callbacks=calls, device="cpu", **kwargs)  # type: ignore[arg-type]
    return result, points


def test_two_finite_series_keyed_as_the_book_records_them() -> None:
    result, points = _run(_spec())
    assert result.status == "completed" and result.steps == 200  # type: ignore[attr-defined]
    d, g = points["discriminator"], points["generator"]
    # D trains twice per record: every 10th D call is the fake step of every 5th record.
    assert [s for s, _ in d] == list(range(5, 201, 5))
    assert [s for s, _ in g] == list(range(10, 201, 10))
    assert all(math.isfinite(v) for _, v in d + g)
    samples = result.extra["samples"]  # type: ignore[attr-defined]
    assert [s["step"] for s in samples] == [100, 200]
    assert samples[0]["pixels"].shape == (4, 784) and samples[0]["pixels"].dtype == np.uint8


def test_resume_gives_the_series_of_a_run_straight_through() -> None:
    spec = _spec()
    straight, whole = _run(spec)
    saved: list[tuple[bytes, int]] = []
    stops = iter([False, True])
    calls = RunCallbacks(
        should_stop=lambda: next(stops, True),
        on_checkpoint=lambda data, step: saved.append((data, step)),
    )
    first = run_gan(
        spec,  # type: ignore[arg-type]
        data_dir=DATA,
        callbacks=calls,
        device="cpu",
        flush_interval_s=0.0,
        checkpoint_interval_s=0.0,
    )
    assert first.status == "stopped" and 0 < first.steps < 200
    rest, tail = _run(spec, resume_from=first.checkpoint)
    assert rest.steps == 200  # type: ignore[attr-defined]
    after = [p for p in whole["discriminator"] if p[0] > first.steps]
    assert tail["discriminator"] == after
    assert tail["generator"] == [p for p in whole["generator"] if p[0] > first.steps]
    final = rest.extra["samples"][-1]["pixels"]  # type: ignore[attr-defined]
    assert np.array_equal(final, straight.extra["samples"][-1]["pixels"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("preset", ["gan-mnist", "cgan-mnist", "gan-first-attempt"])
def test_numpy_generator_equals_torch(preset: str) -> None:
    spec = _spec(preset)
    result, _ = _run(spec)
    data = final_weights(spec, result, experiment_id="x")  # type: ignore[arg-type]
    assert data is not None
    model = gan_inference.decode(data)
    torch_models = build_models(spec, torch.device("cpu"))  # type: ignore[arg-type]
    weights = gan_inference.load(data)
    torch_models.generator.load_state_dict(
        {
            k.removeprefix("generator."): torch.from_numpy(v)
            for k, v in weights.items()
            if k.startswith("generator.")
        }
    )
    seed = torch.randn(1, spec.latent_size, generator=torch.Generator().manual_seed(3))  # type: ignore[attr-defined]
    label = torch.tensor([7])
    expected = generate(spec, torch_models, seed, label)[0].numpy()  # type: ignore[arg-type]
    got = gan_inference.generate(model, seed[0].numpy(), 7)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _autograd_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner without the hand-written step: autograd's GanStep for everything."""
    monkeypatch.setattr(gan_runner, "fast_step", lambda spec, models, device: None)


@pytest.mark.parametrize("preset", ["gan-mnist", "cgan-mnist", "gan-first-attempt"])
def test_hand_written_step_trains_as_autograd(monkeypatch: pytest.MonkeyPatch, preset: str) -> None:
    spec = _spec(preset, log_every=3)
    fast, fast_points = _run(spec)
    _autograd_only(monkeypatch)
    slow, slow_points = _run(spec)
    assert fast_points == slow_points
    for want, got in zip(slow.extra["samples"], fast.extra["samples"], strict=True):  # type: ignore[attr-defined]
        assert np.array_equal(want["pixels"], got["pixels"])
    want_state, got_state = (
        ckpt.networks_state(r.checkpoint)  # type: ignore[attr-defined]
        for r in (slow, fast)
    )
    assert all(torch.equal(v, got_state[k]) for k, v in want_state.items())


def test_resume_across_the_two_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint of an autograd run resumed by the hand-written step (and the optimizers'
    state_dicts it leaves) continues as the autograd run straight through."""
    spec = _spec(log_every=3)
    stops = iter([False, True])
    calls = RunCallbacks(should_stop=lambda: next(stops, True))
    _autograd_only(monkeypatch)
    straight, whole = _run(spec)
    first = run_gan(
        spec,  # type: ignore[arg-type]
        data_dir=DATA, callbacks=calls, device="cpu", flush_interval_s=0.0,
    )  # fmt: skip
    assert first.status == "stopped" and 0 < first.steps < 200
    monkeypatch.undo()
    rest, tail = _run(spec, resume_from=first.checkpoint)
    assert tail["generator"] == [p for p in whole["generator"] if p[0] > first.steps]
    assert tail["discriminator"] == [p for p in whole["discriminator"] if p[0] > first.steps]
    want = ckpt.read(straight.checkpoint)  # type: ignore[attr-defined]
    got = ckpt.read(rest.checkpoint)  # type: ignore[attr-defined]
    for name in ("d_optimizer", "g_optimizer"):
        assert want[name]["param_groups"] == got[name]["param_groups"]
        for index, entry in want[name]["state"].items():
            assert all(torch.equal(v, got[name]["state"][index][k]) for k, v in entry.items())
