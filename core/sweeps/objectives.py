"""What a sweep may select on, per kind of job, and which way is better.

A classifier's trials report validation accuracy and loss on a held-out split of the training
set. A GAN's report its judge's figures over its generated images (worker/gan/judge.py): the
label entropy (a collapsed generator draws one digit), the mean top-class confidence, the
Fréchet distance to real images in the judge's features, the mean pairwise correlation of the
images and, for a conditional GAN, the share labelled as asked. A GAN sweep's trials measure
the Fréchet distance against training images, so the test set stays unread there too.

Each objective is a key of a finished run's metrics and of its rung figures: the driver, the
views, the CLI and the dashboard read the direction from here (GET /sweeps/{id} says
`maximize`), never from the objective's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Objective:
    kind: str  # the kind of job whose runs report it
    maximize: bool
    label: str  # how the views name it
    percent: bool = False  # a share, shown as a percentage
    conditional_only: bool = False  # only a conditional GAN reports it


OBJECTIVES: dict[str, Objective] = {
    "validation_accuracy": Objective("classifier", True, "validation accuracy", percent=True),
    "validation_loss": Objective("classifier", False, "validation loss"),
    "entropy_bits": Objective("gan", True, "judge's label entropy (bits)"),
    "confidence": Objective("gan", True, "judge's mean confidence"),
    "frechet": Objective("gan", False, "Fréchet distance to training images"),
    "correlation": Objective("gan", False, "mean pairwise correlation"),
    "as_requested": Objective(
        "gan", True, "share labelled as requested", percent=True, conditional_only=True
    ),
}

ObjectiveName = Literal[
    "validation_accuracy",
    "validation_loss",
    "entropy_bits",
    "confidence",
    "frechet",
    "correlation",
    "as_requested",
]

DEFAULT_OBJECTIVE: dict[str, str] = {"classifier": "validation_accuracy", "gan": "entropy_bits"}


def maximizes(name: str) -> bool:
    """True when a larger figure of objective `name` is better (unknown names: larger)."""
    found = OBJECTIVES.get(name)
    return True if found is None else found.maximize


def percent(name: str) -> bool:
    """True when objective `name` is a share, shown as a percentage."""
    found = OBJECTIVES.get(name)
    return found is not None and found.percent


def label(name: str) -> str:
    found = OBJECTIVES.get(name)
    return name if found is None else found.label


def of_kind(kind: str) -> list[str]:
    return [name for name, o in OBJECTIVES.items() if o.kind == kind]


def problem(name: str, kind: str, conditional: bool) -> str | None:
    """Why a sweep of `kind` cannot select on `name`, or None."""
    found = OBJECTIVES[name]
    if found.kind != kind:
        return f"{name} is not reported by {kind} runs: a {kind} sweep selects on " + ", ".join(
            of_kind(kind)
        )
    if found.conditional_only and not conditional:
        return f"{name} needs a conditional GAN (conditional: true): only it is asked for labels"
    return None
