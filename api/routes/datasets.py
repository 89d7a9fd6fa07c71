"""Test-set images, for the dashboard's record view: pixels as JSON or a PNG."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import Response

from api.deps import SettingsDep
from api.schemas import ErrorBody
from api.services import datasets

router = APIRouter(prefix="/datasets", tags=["datasets"])

DatasetName = Literal["mnist", "fashion-mnist"]
RecordIndex = Annotated[int, Path(ge=0, le=9_999, description="Test record index.")]


def _guard(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except datasets.DatasetUnavailable as exc:
        raise HTTPException(404, f"dataset files are not available on this server: {exc}") from None
    except IndexError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get(
    "/{name}/records/{index}",
    responses={404: {"model": ErrorBody, "description": "The dataset files are not here."}},
)
def record_pixels(name: DatasetName, index: RecordIndex, settings: SettingsDep) -> dict[str, Any]:
    """Label and 28x28 pixels (0..255) of one test record."""
    found: dict[str, Any] = _guard(datasets.record, settings.data_dir, name, index)
    return found


@router.get(
    "/{name}/records/{index}/image.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}},
        404: {"model": ErrorBody, "description": "The dataset files are not here."},
    },
)
def record_image(name: DatasetName, index: RecordIndex, settings: SettingsDep) -> Response:
    png: bytes = _guard(datasets.record_png, settings.data_dir, name, index)
    # Test images never change: let the browser keep them.
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=86400"})
