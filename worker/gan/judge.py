"""The judge: a finished MNIST classifier of ours that looks at a GAN's images.

From N generated images it answers the label histogram and its entropy (a collapsed
generator draws one digit: low entropy), the mean top-class confidence, a Fréchet distance
between real and generated images in the classifier's hidden features (the last hidden
layer's output), the mean pairwise correlation of the images (near 1 when they are all
alike) and, for a conditional GAN, the share the judge labels as requested.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from torch import Tensor, nn

from core.spec import ExperimentSpec
from worker.engine.model import build_model

# Images whose pairwise correlation is averaged (a 1,000 x 1,000 matrix is cheap; more is not).
CORRELATION_IMAGES = 1000


class JudgeError(ValueError):
    """The judge's model file is not a classifier of MNIST this engine can run."""


class Judge:
    def __init__(self, model: nn.Sequential, spec: ExperimentSpec) -> None:
        self.model = model.eval()
        self.spec = spec
        last_linear = max(i for i, m in enumerate(model) if isinstance(m, nn.Linear))
        self.features = model[:last_linear]  # the last hidden layer's output
        self.softmax = spec.model.output == "none"

    @classmethod
    def from_file(cls, data: bytes, device: torch.device) -> Judge:
        try:
            header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
            spec = ExperimentSpec.model_validate_json(header["__metadata__"]["spec"])
            model = build_model(spec, device)
            model.load_state_dict(load_safetensors(data))
        except Exception as exc:  # many ways for bytes not to be a model file
            raise JudgeError(f"the judge's model file is not usable: {exc}") from exc
        if spec.dataset != "mnist":
            raise JudgeError(f"the judge is a {spec.dataset} classifier, not an MNIST one")
        return cls(model.to(device), spec)

    @torch.no_grad()
    def figures(
        self, images: Tensor, real: Tensor, requested: Tensor | None = None
    ) -> dict[str, Any]:
        outputs = self.model(images)
        probs = torch.softmax(outputs, 1) if self.softmax else outputs
        labels = probs.argmax(1)
        histogram = torch.bincount(labels, minlength=10).to(torch.float64)
        share = histogram / histogram.sum()
        nonzero = share[share > 0]
        entropy = float(-(nonzero * torch.log2(nonzero)).sum())
        figures: dict[str, Any] = {
            "histogram": [int(v) for v in histogram.tolist()],
            "entropy_bits": round(entropy, 4) + 0.0,  # no -0.0
            "max_entropy_bits": round(math.log2(10), 4),
            "confidence": round(float(probs.max(1).values.mean()), 4),
            "frechet": round(frechet(self.features(real), self.features(images)), 4),
            "correlation": round(mean_correlation(images[:CORRELATION_IMAGES]), 4),
        }
        if requested is not None:
            figures["as_requested"] = round(float((labels == requested).float().mean()), 4)
        return figures


def frechet(a: Tensor, b: Tensor) -> float:
    """The Fréchet distance of two Gaussians fitted to the rows of a and b:
    |mu_a - mu_b|^2 + tr(Ca + Cb - 2 (Ca^1/2 Cb Ca^1/2)^1/2), in float64."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(ca)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    middle = torch.linalg.eigvalsh(root_a @ cb @ root_a).clamp(min=0).sqrt().sum()
    distance = (mu_a - mu_b).square().sum() + ca.trace() + cb.trace() - 2 * middle
    return max(float(distance), 0.0)


def mean_correlation(images: Tensor) -> float:
    """The mean Pearson correlation over every pair of distinct images (a constant image
    counts as perfectly correlated with itself only)."""
    x = images.to(torch.float64)
    x = x - x.mean(1, keepdim=True)
    norms = x.norm(dim=1, keepdim=True)
    x = torch.where(norms > 0, x / norms.clamp(min=1e-12), x)
    n = x.shape[0]
    if n < 2:
        return 1.0
    corr = x @ x.T
    return float((corr.sum() - corr.diagonal().sum()) / (n * (n - 1)))
