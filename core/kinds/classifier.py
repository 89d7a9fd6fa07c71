"""The classifier: the book's MLP (or, model.type=cnn, its CNN) on 28x28 images, trained to one
of ten classes. The first kind of job, and the one a spec without a `kind` field is (every
spec stored so far)."""

from __future__ import annotations

from core.kinds.base import Kind
from core.kinds.conv_cost import estimate  # the Linear layers' cost, a cnn's convolutions added
from core.spec import ExperimentSpec

CLASSIFIER = Kind(
    name="classifier",
    spec_model=ExperimentSpec,
    cost=estimate,
    series=("loss",),
    # GET /predictions: per test record its label, the predicted class and the 10 outputs.
    record_outputs="label, predicted class and the 10 class outputs of each test record",
    # worker/artifacts.py: the final weights (safetensors, served by /model and /predict); the
    # checkpoint, only for resuming, is kept while the run may resume.
    artifacts=("model", "checkpoint"),
    views=("curves", "confusion", "record", "pad"),
)
