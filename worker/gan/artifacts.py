"""A finished GAN run's model file: both networks in one safetensors file, tensors named
`discriminator.<key>` and `generator.<key>` after each network's nn.Sequential state-dict
keys (GET /experiments/{id}/model?network=generator serves one network's part). The metadata
carries the spec, like the classifier's file (worker/artifacts.py)."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save

from core.kinds.gan_spec import GanSpec
from worker.artifacts import FORMAT, VERSION, state_tensors
from worker.engine.callbacks import RunResult
from worker.gan.checkpoint import networks_state


def final_weights(spec: GanSpec, result: RunResult, *, experiment_id: str) -> bytes | None:
    """None for a run stopped before its first step."""
    if result.steps == 0:
        return None
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "experiment_id": experiment_id,
        "spec": spec.canonical_json(),
        "step": str(result.steps),
        "outcome": result.status,
        "torch": str(torch.__version__),
        "networks": json.dumps(["discriminator", "generator"]),
        "input": f"generator: {spec.latent_size} latent values"
        + (" + a one-hot label of 10" if spec.conditional else "")
        + "; discriminator: 784 pixels in 0..1"
        + (" + a one-hot label of 10" if spec.conditional else ""),
        "output": json.dumps("generator: 784 pixels; discriminator: P(real)"),
    }
    return save(state_tensors(networks_state(result.checkpoint)), metadata=metadata)
