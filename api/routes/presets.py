"""The presets: the book's five recipes (core/presets.py), each with its full spec and what
one run of it costs (core/cost.py), so a client can pick one and see its price first."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas import CostPublic, PresetPublic
from core.cost import estimate
from core.presets import DESCRIPTIONS, PRESETS, build_any_spec

router = APIRouter(tags=["presets"])


def _presets() -> list[PresetPublic]:
    presets = []
    for name in PRESETS:
        spec = build_any_spec(name)
        presets.append(
            PresetPublic(
                name=name,
                description=DESCRIPTIONS[name],
                spec=spec.model_dump(mode="json"),
                cost=CostPublic.of(estimate(spec)),
            )
        )
    return presets


# The presets are constants: built once, on import.
_PRESETS = _presets()


@router.get("/presets", response_model=list[PresetPublic])
def list_presets() -> list[PresetPublic]:
    """The book's recipes in the order of its chain, each changing one knob on the one before."""
    return _PRESETS
