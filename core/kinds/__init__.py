"""Kinds of job: what each declares (core/kinds/base.py) and the kinds there are.

A kind is added by a module beside classifier.py and one line in BUILT_IN below; its torch
half registers in worker/kinds.py and its /predict half in api/services/predictors.py
(docs/architecture.md, "Adding a kind of job").
"""

from __future__ import annotations

from core.kinds.base import (
    DEFAULT_KIND,
    Kind,
    SpecCost,
    UnknownKindError,
    get,
    kind_name,
    kind_of,
    kind_of_raw,
    names,
    parse,
    register,
    registered,
)
from core.kinds.classifier import CLASSIFIER
from core.kinds.gan import GAN
from core.kinds.gan_spec import GanSpec
from core.spec import ExperimentSpec

# A validated spec of any built-in kind.
AnySpec = ExperimentSpec | GanSpec

BUILT_IN: tuple[Kind, ...] = (CLASSIFIER, GAN)
for _kind in BUILT_IN:
    register(_kind)

__all__ = [
    "BUILT_IN",
    "CLASSIFIER",
    "DEFAULT_KIND",
    "GAN",
    "AnySpec",
    "GanSpec",
    "Kind",
    "SpecCost",
    "UnknownKindError",
    "get",
    "kind_name",
    "kind_of",
    "kind_of_raw",
    "names",
    "parse",
    "register",
    "registered",
]
