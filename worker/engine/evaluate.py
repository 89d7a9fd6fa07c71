"""Test metrics and the network's answer for every evaluated test record."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from core.model_spec import NUM_CLASSES
from core.spec import ExperimentSpec
from worker.engine.callbacks import Predictions

# Records per forward pass: bounds activation memory for the widest allowed networks.
EVAL_CHUNK = 2048


def evaluate(
    model: nn.Module, spec: ExperimentSpec, x: torch.Tensor, labels: torch.Tensor
) -> tuple[dict[str, Any], Predictions]:
    """Accuracy, mean test loss (the spec's loss, reduced as in training), per-class accuracy,
    confusion matrix (rows = true label, columns = predicted) and the outputs per record.

    Outputs are what the network emits after its output activation; for `output=none` (logits)
    they are softmax probabilities, so every record's 10 values read the same way.
    A class with no evaluated records has per-class accuracy None.
    """
    was_training = model.training
    model.eval()
    outputs: list[torch.Tensor] = []
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    try:
        with torch.inference_mode():
            for start in range(0, len(x), EVAL_CHUNK):
                raw = model(x[start : start + EVAL_CHUNK])
                target = labels[start : start + EVAL_CHUNK]
                loss_sum += _loss_sum(spec, raw, target)
                if spec.model.output == "none":
                    raw = torch.softmax(raw, dim=1)
                outputs.append(raw.float())
    finally:
        model.train(was_training)
    out = torch.cat(outputs)
    predicted = out.argmax(dim=1)
    records = len(labels)
    # MSE and BCE average over every output value, cross-entropy over records (as in training).
    per_value = spec.loss != "cross_entropy"
    test_loss = float(loss_sum) / (records * (NUM_CLASSES if per_value else 1))
    confusion = torch.bincount(labels * NUM_CLASSES + predicted, minlength=NUM_CLASSES**2)
    confusion = confusion.reshape(NUM_CLASSES, NUM_CLASSES).cpu()
    rows = confusion.sum(dim=1)
    per_class: list[float | None] = [
        float(confusion[c, c]) / float(rows[c]) if rows[c] else None for c in range(NUM_CLASSES)
    ]
    metrics: dict[str, Any] = {
        "test_accuracy": float((predicted == labels).double().mean()),
        "test_loss": test_loss,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }
    predictions = Predictions(
        outputs=out.cpu().numpy().astype(np.float32, copy=False),
        labels=labels.cpu().numpy().astype(np.uint8),
        predicted=predicted.cpu().numpy().astype(np.uint8),
    )
    return metrics, predictions


def _loss_sum(spec: ExperimentSpec, raw: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if spec.loss == "cross_entropy":
        return nn.functional.cross_entropy(raw, labels, reduction="sum").double()
    onehot = nn.functional.one_hot(labels, NUM_CLASSES).to(raw.dtype)
    if spec.loss == "mse":
        return nn.functional.mse_loss(raw, onehot, reduction="sum").double()
    return nn.functional.binary_cross_entropy(raw, onehot, reduction="sum").double()
