"""A finished run's final weights as a safetensors file: what the API serves for download and
answers predictions from (with numpy, no torch), and what anyone loads into PyTorch with
`safetensors.torch.load_file` and `model.load_state_dict` (README, "The trained model").

Tensor names are the engine's own `nn.Sequential` state-dict keys ("0.weight", "0.bias",
"2.running_mean", ...), so a network built from the spec the way worker/engine/model.py builds
it loads the file as it is. The file's metadata (strings only, by the format) carries the spec
and where the weights came from; every tensor is contiguous, on the CPU, in the dtype it
trained in (float32; BatchNorm's step counter int64).
"""

from __future__ import annotations

import json
from typing import Any

import torch
from safetensors.torch import save

from core.spec import ExperimentSpec
from worker.engine import RunResult
from worker.engine.checkpoint import read_checkpoint

FORMAT = "trainlab.model"
VERSION = "1"


def model_metadata(
    spec: ExperimentSpec, *, experiment_id: str, step: int, outcome: str
) -> dict[str, str]:
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "experiment_id": experiment_id,
        "spec": spec.canonical_json(),
        "step": str(step),
        "outcome": outcome,
        "torch": str(torch.__version__),
        "input": "784 float32 pixels in 0..1, row-major 28x28 (uint8 / 255), white on black",
        "output": json.dumps(_output_note(spec)),
    }
    if any(conv.normalization == "batch_norm" for conv in spec.conv_layers()):
        # A plain nn.BatchNorm2d in eval mode would use the running estimates instead.
        metadata["batch_norm"] = (
            "the convolutions' BatchNorm2d normalizes each record by its own statistics, as in "
            "train mode at a batch of one (the book's way); the running estimates are unused"
        )
    return metadata


def _output_note(spec: ExperimentSpec) -> str:
    if spec.model.output == "none":
        return "logits; trainlab reports softmax(logits) as the 10 outputs"
    return f"{spec.model.output} outputs, one per class 0..9"


def state_tensors(model_state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A state dict as safetensors takes it: detached, contiguous CPU tensors, no shared
    storage (save refuses aliases)."""
    return {
        name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in model_state.items()
    }


def final_weights(spec: ExperimentSpec, result: RunResult, *, experiment_id: str) -> bytes | None:
    """The safetensors file of the run's final model, read from the final checkpoint the
    engine hands back (the same state the test outputs were computed with); None for a run
    stopped before its first step, whose network is only its initialisation."""
    if result.steps == 0:
        return None
    # The engine's copy of the final state where it gives one: reading the checkpoint back
    # (torch.load of model and optimizer state) was most of a tiny run's weights file.
    state = result.final_state
    if state is None:
        state = read_checkpoint(result.checkpoint).model_state
    metadata = model_metadata(
        spec, experiment_id=experiment_id, step=result.steps, outcome=result.status
    )
    return save(state_tensors(state), metadata=metadata)
