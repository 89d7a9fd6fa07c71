"""A hand-made network for the replay test's /model and /predict answers, exact on any machine.

A trained network's outputs differ in their last bits between BLAS builds and CPUs (the
summation order), so their bytes could not be replayed elsewhere. This one's could: hidden unit
k counts the lit pixels of row band k (weights 1 and 0; pixels sent as 0 or 1, so the sums are
small integers, exact in float32), ReLU keeps them, and the output layer weighs each count by
-200. Softmax then sees logits 200 apart or equal: exp gives exactly 1 for the bands with the
fewest lit pixels and underflows to exactly 0 for the others, so every output is 0 or 1/m.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from core.spec import ExperimentSpec

BANDS = 10
BANDS_OVERRIDES: dict[str, Any] = {
    "model.hidden": [BANDS],
    "model.activation": "relu",
    "model.output": "none",
    "loss": "cross_entropy",
}


def band_network(spec: ExperimentSpec, experiment_id: str) -> bytes:
    rows = np.arange(28 * 28) // 28
    hidden = (rows[None, :] * BANDS // 28 == np.arange(BANDS)[:, None]).astype(np.float32)
    tensors = {
        "0.weight": hidden,
        "0.bias": np.zeros(BANDS, dtype=np.float32),
        "2.weight": (-200.0 * np.eye(10, BANDS)).astype(np.float32),
        "2.bias": np.zeros(10, dtype=np.float32),
    }
    metadata = {
        "format": "trainlab.model",
        "version": "1",
        "experiment_id": experiment_id,
        "spec": spec.canonical_json(),
        "step": str(spec.total_steps),
        "outcome": "succeeded",
        "torch": "none (made by hand for the replay test)",
        "input": "784 float32 pixels in 0..1, row-major 28x28 (uint8 / 255), white on black",
        "output": '"logits; trainlab reports softmax(logits) as the 10 outputs"',
    }
    return _safetensors(tensors, metadata)


def _safetensors(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """The safetensors layout written by hand, its header's keys in sorted order:
    `safetensors.numpy.save` orders the metadata as a hash map iterates, which changes from
    one process to the next, and so would the file's bytes."""
    header: dict[str, object] = {"__metadata__": metadata}
    data, offset = [], 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        shape = list(tensors[name].shape)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the library writes it
    return struct.pack("<Q", len(text)) + text + b"".join(data)
