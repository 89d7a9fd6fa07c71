"""Self-describing checkpoints: everything needed to continue a run, and to refuse a wrong one.

A checkpoint is `torch.save` of plain data (read back with `weights_only=True`, so loading
bytes from a store never runs pickled code): a format name and version, the spec as JSON and
its identity hash, the step, model and optimizer state, the training seconds so far and the
last logged loss values (so `final_loss` of a resumed run equals the uninterrupted one).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.spec import ExperimentSpec

FORMAT = "trainlab.checkpoint"
VERSION = 1
# final_loss is the mean of the last this-many logged points; a checkpoint carries them.
LOSS_TAIL = 100


class CheckpointError(ValueError):
    """The bytes are not a usable checkpoint, or belong to another experiment spec."""


@dataclass(frozen=True)
class Checkpoint:
    spec_json: str
    spec_identity: str
    step: int
    total_steps: int
    train_seconds: float
    loss_tail: list[float]
    model_state: dict[str, Any]
    optimizer_state: dict[str, Any]


def spec_identity(spec: ExperimentSpec) -> str:
    """What must match for a checkpoint to continue a run: the whole spec but the device, since
    a run lost on a GPU worker may go on on a CPU one (its series then differs by rounding)."""
    data = spec.model_dump(mode="json")
    data.pop("device", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_checkpoint(
    spec: ExperimentSpec,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    step: int,
    train_seconds: float,
    loss_tail: list[float],
) -> bytes:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "torch": str(torch.__version__),  # TorchVersion is a class weights_only refuses
        "spec": spec.canonical_json(),
        "spec_identity": spec_identity(spec),
        "step": int(step),
        "total_steps": spec.total_steps,
        "train_seconds": float(train_seconds),
        "loss_tail": [float(v) for v in loss_tail[-LOSS_TAIL:]],
        # Cloned: a fused run's parameters are views of its group's stacked tensors, and saving
        # a view would save the whole group's storage.
        "model": {name: value.clone() for name, value in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def read_checkpoint(data: bytes, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Parse and check the layout; raises CheckpointError for anything else."""
    if not isinstance(data, bytes | bytearray | memoryview) or not data:
        raise CheckpointError("checkpoint is empty or not bytes")
    try:
        payload = torch.load(io.BytesIO(bytes(data)), map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in many classes
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(
            f"not a readable checkpoint ({type(exc).__name__}: {first_line})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"not a {FORMAT} file")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint format version {payload.get('version')!r}; this engine reads {VERSION}"
        )
    try:
        checkpoint = Checkpoint(
            spec_json=str(payload["spec"]),
            spec_identity=str(payload["spec_identity"]),
            step=int(payload["step"]),
            total_steps=int(payload["total_steps"]),
            train_seconds=float(payload["train_seconds"]),
            loss_tail=[float(v) for v in payload["loss_tail"]],
            model_state=dict(payload["model"]),
            optimizer_state=dict(payload["optimizer"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint is missing or has a malformed field: {exc}") from exc
    if not 0 <= checkpoint.step <= checkpoint.total_steps:
        raise CheckpointError(
            f"checkpoint step {checkpoint.step} outside 0..{checkpoint.total_steps}"
        )
    return checkpoint


def checkpoint_step(data: bytes) -> int:
    """The optimizer step a checkpoint was taken at (validates the checkpoint)."""
    return read_checkpoint(data).step


def restore(
    data: bytes,
    spec: ExperimentSpec,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> Checkpoint:
    """Load a checkpoint of this very spec into `model` and `optimizer`."""
    checkpoint = read_checkpoint(data, map_location=device)
    if checkpoint.spec_identity != spec_identity(spec):
        raise CheckpointError(
            "checkpoint belongs to another experiment spec "
            f"(its spec: {checkpoint.spec_json}); a run resumes only from its own checkpoints"
        )
    if checkpoint.total_steps != spec.total_steps:
        raise CheckpointError("checkpoint's total steps differ from this spec's")
    try:
        model.load_state_dict(checkpoint.model_state)
        optimizer.load_state_dict(checkpoint.optimizer_state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint state does not fit this model: {exc}") from exc
    return checkpoint
