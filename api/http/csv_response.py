"""CSV text (api/services/csv_export.py builds it) as a download."""

from __future__ import annotations

import re

from fastapi import Response

MEDIA_TYPE = "text/csv; charset=utf-8"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def attachment(text: str, filename: str) -> Response:
    """The CSV as a download named `filename` (reduced to safe characters)."""
    safe = _SAFE_NAME.sub("_", filename)
    return Response(
        content=text.encode(),
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )
