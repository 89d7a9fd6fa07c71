"""The dashboard page at `/`; its files under /static are served by Starlette's StaticFiles
(mounted in api/app.py). The page needs nothing from the internet (no CDN, no web fonts), so
it works on a closed network."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


@router.get("/")
def dashboard() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
