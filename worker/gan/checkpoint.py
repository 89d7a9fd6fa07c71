"""A GAN run's checkpoint: both networks and optimizers, the seed generator's state, the
samples and judge figures so far and the last losses, so a resumed run continues exactly
(on the CPU its series is the same as an uninterrupted run's). Plain data through torch.save,
read back with weights_only=True, like worker/engine/checkpoint.py."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import torch

from core.kinds.gan_spec import GanSpec
from worker.engine.checkpoint import CheckpointError
from worker.gan.networks import GanModels

FORMAT = "trainlab.gan.checkpoint"
VERSION = 1
LOSS_TAIL = 100


@dataclass
class GanState:
    """What a GAN run carries across a checkpoint besides its networks."""

    step: int = 0
    train_seconds: float = 0.0
    rng: torch.Tensor | None = None  # the seed generator's state
    d_tail: list[float] = field(default_factory=list)
    g_tail: list[float] = field(default_factory=list)
    samples: dict[int, torch.Tensor] = field(default_factory=dict)  # step -> uint8 [n, 784]
    judged: list[dict[str, Any]] = field(default_factory=list)


def spec_identity(spec: GanSpec) -> str:
    data = spec.model_dump(mode="json")
    data.pop("device", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save(spec: GanSpec, models: GanModels, state: GanState) -> bytes:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec.canonical_json(),
        "spec_identity": spec_identity(spec),
        "step": state.step,
        "total_steps": spec.total_steps,
        "train_seconds": float(state.train_seconds),
        "rng": state.rng,
        "d_tail": state.d_tail[-LOSS_TAIL:],
        "g_tail": state.g_tail[-LOSS_TAIL:],
        "samples": {str(k): v for k, v in state.samples.items()},
        "judged": json.dumps(state.judged),
        "discriminator": {
            k: v.detach().clone() for k, v in models.discriminator.state_dict().items()
        },
        "generator": {k: v.detach().clone() for k, v in models.generator.state_dict().items()},
        "d_optimizer": models.d_optimizer.state_dict(),
        "g_optimizer": models.g_optimizer.state_dict(),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def read(data: bytes) -> dict[str, Any]:
    try:
        payload = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many classes
        raise CheckpointError(f"not a readable checkpoint ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"not a {FORMAT} file")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"checkpoint format version {payload.get('version')!r}")
    return payload


def checkpoint_step(data: bytes) -> int:
    return int(read(data)["step"])


def restore(data: bytes, spec: GanSpec, models: GanModels, device: torch.device) -> GanState:
    payload = read(data)
    if payload.get("spec_identity") != spec_identity(spec):
        raise CheckpointError("checkpoint belongs to another experiment spec")
    try:
        models.discriminator.load_state_dict(payload["discriminator"])
        models.generator.load_state_dict(payload["generator"])
        models.d_optimizer.load_state_dict(payload["d_optimizer"])
        models.g_optimizer.load_state_dict(payload["g_optimizer"])
        return GanState(
            step=int(payload["step"]),
            train_seconds=float(payload["train_seconds"]),
            rng=payload["rng"],
            d_tail=[float(v) for v in payload["d_tail"]],
            g_tail=[float(v) for v in payload["g_tail"]],
            samples={int(k): v for k, v in payload["samples"].items()},
            judged=list(json.loads(payload["judged"])),
        )
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint state does not fit this model: {exc}") from exc


def networks_state(data: bytes) -> dict[str, torch.Tensor]:
    """Both networks' weights from a checkpoint, prefixed `discriminator.` / `generator.`."""
    payload = read(data)
    out: dict[str, torch.Tensor] = {}
    for network in ("discriminator", "generator"):
        for name, tensor in payload[network].items():
            out[f"{network}.{name}"] = tensor
    return out
