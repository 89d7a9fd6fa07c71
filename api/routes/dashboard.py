"""The dashboard page at `/` and its static files, served by the API itself: the page needs
nothing from the internet (no CDN, no web fonts), so it works on a closed network."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


@router.get("/")
def dashboard() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type=MEDIA_TYPES[".html"],
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/static/{path:path}")
def static_file(path: str) -> FileResponse:
    """Files under api/static only: the resolved path must stay inside it."""
    target = (STATIC_DIR / path).resolve()
    if not target.is_relative_to(STATIC_DIR) or not target.is_file():
        raise HTTPException(404, f"no static file {path!r}")
    media_type = MEDIA_TYPES.get(target.suffix)
    if media_type is None:
        raise HTTPException(404, f"no static file {path!r}")
    return FileResponse(target, media_type=media_type, headers={"Cache-Control": "no-cache"})
