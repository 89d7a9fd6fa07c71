"""The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served whole from this
server: their scripts and styles come from the fastapi-offline package (mounted at
/docs-assets in api/app.py) and Swagger UI's start-up script from /static, so the pages load
nothing from the internet and need no inline script (see the Content-Security-Policy in
api/middleware.py)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS_URL = "/docs-assets"

_SWAGGER = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>trainlab API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{DOCS_ASSETS_URL}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_ASSETS_URL}/swagger-ui-bundle.js"></script>
  <script src="/static/swagger-init.js"></script>
</body>
</html>
"""

_REDOC = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>trainlab API</title>
  <link rel="icon" href="data:,">
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="{DOCS_ASSETS_URL}/redoc.standalone.js"></script>
</body>
</html>
"""


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return HTMLResponse(_SWAGGER)


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return HTMLResponse(_REDOC)
