"""Each client model has the fields, types and required-ness of the server's schema for the
same answer in /openapi.json: a field the server adds, drops or retypes fails here."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from api.app import create_app
from tests.conftest import make_settings
from trainlab import gan_models, models

# Client model -> the server's components/schemas entry.
PAIRS: dict[type[BaseModel], str] = {
    models.Progress: "Progress",
    models.Cost: "CostPublic",
    models.Experiment: "ExperimentPublic",
    models.ExperimentPage: "ExperimentPage",
    models.LossSeries: "LossSeries",
    models.PredictionRecord: "PredictionRecord",
    models.PredictionsPage: "PredictionsPage",
    models.Prediction: "Prediction",
    models.ExperimentDeleted: "ExperimentDeleted",
    models.AblationDeleted: "AblationDeleted",
    models.Arm: "ArmPublic",
    models.Ablation: "AblationPublic",
    models.Caller: "Caller",
    models.Key: "KeyPublic",
    models.IssuedKey: "KeyIssued",
    gan_models.Samples: "SamplesPublic",
    gan_models.Generated: "Generated",
}
NAMES = {cls.__name__: server for cls, server in PAIRS.items()}


@pytest.fixture(scope="module")
def server_schemas() -> dict[str, Any]:
    document = create_app(make_settings(), lifespan_hooks=[]).openapi()
    schemas: dict[str, Any] = document["components"]["schemas"]
    return schemas


def shape(schema: dict[str, Any], defs: dict[str, Any], names: dict[str, str]) -> Any:
    """A field's type, without descriptions and bounds: "string", ("array", item),
    ("union", ...), the server name of a modelled object, or "object"."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in names:
            return names[name]
        target = defs[name]
        if "enum" in target:
            return ("enum", *sorted(target["enum"]))
        return "object"  # an object the client reads as a dict (the spec)
    if "anyOf" in schema:
        members = sorted({repr(shape(s, defs, names)) for s in schema["anyOf"]})
        if len(members) == 1:  # objects of several schemas, all read as a dict: a dict
            return shape(schema["anyOf"][0], defs, names)
        return ("union", *members)
    if "enum" in schema:
        return ("enum", *sorted(schema["enum"]))
    kind = schema.get("type")
    if kind == "array":
        return ("array", shape(schema.get("items", {}), defs, names))
    if kind == "string" and schema.get("format") == "date-time":
        return "date-time"
    return kind or "any"


def fields(schema: dict[str, Any], defs: dict[str, Any], names: dict[str, str]) -> Any:
    required = set(schema.get("required", []))
    return {
        name: (shape(field, defs, names), name in required)
        for name, field in schema["properties"].items()
    }


@pytest.mark.parametrize("model", list(PAIRS), ids=lambda m: m.__name__)
def test_client_model_matches_the_server_schema(
    model: type[BaseModel], server_schemas: dict[str, Any]
) -> None:
    own = model.model_json_schema(mode="validation")
    own_defs = own.get("$defs", {})
    server = server_schemas[PAIRS[model]]
    ours = fields(own, own_defs, NAMES)
    theirs = fields(server, server_schemas, {v: v for v in NAMES.values()})
    assert ours == theirs


def test_the_comparison_sees_a_drift(server_schemas: dict[str, Any]) -> None:
    class Drifted(BaseModel):
        step: int
        total: str  # the server's is an integer
        fraction: float | None = None  # the server requires it

    drifted = fields(Drifted.model_json_schema(), {}, NAMES)
    server = fields(server_schemas["Progress"], server_schemas, {})
    assert drifted["total"] != server["total"] and drifted["fraction"] != server["fraction"]
