"""JSON answers built as bytes with orjson (numpy arrays included), for the routes that skip
response-model validation because it would cost more than their read."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

JSON = "application/json"


def json_response(content: dict[str, Any], status_code: int = 200) -> Response:
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content=body, status_code=status_code, media_type=JSON)
