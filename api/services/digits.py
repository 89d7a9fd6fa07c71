"""One 28x28 image for POST /experiments/{id}/predict, from JSON pixels or a PNG, as the
784 float32 values in 0..1 the network was trained on (uint8 / 255, row-major, white digit on
black, like MNIST).

JSON: `{"pixels": [784 numbers]}` or 28 rows of 28, every value a finite number in 0..1.
PNG: exactly 28x28 (no resizing: MNIST digits are centred by mass in a 20x20 box, which a
plain resize would not reproduce, so the caller decides how to bring a drawing to 28x28).
Colour is turned to gray with ITU-R 601-2 luma (L = 0.299 R + 0.587 G + 0.114 B, Pillow's
rule), alpha is composited over black (transparent = background = 0), 16-bit gray is scaled
to 0..1. Decoding uses Pillow: it reads every PNG variant (palette, 1..16-bit depths,
interlacing) and refuses a corrupt file cleanly, which a hand-written zlib decoder would have
to get right case by case.
Anything else is refused with InvalidFields naming the field and the reason (422).
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from core.errors import InvalidFields, field_error

SIDE = 28
PIXELS = SIDE * SIDE
Pixels = npt.NDArray[np.float32]


def _refuse(field: str, reason: str) -> InvalidFields:
    return InvalidFields([field_error(field, reason, "body")])


def pixels_from_json(body: Any) -> Pixels:
    if not isinstance(body, dict):
        raise _refuse("body", 'expected a JSON object {"pixels": [...784 values in 0..1...]}')
    extra = sorted(set(body) - {"pixels"})
    if extra:
        raise _refuse(extra[0], "unknown field: the body has only `pixels`")
    if "pixels" not in body:
        raise _refuse("pixels", "required: 784 values in 0..1, or 28 rows of 28")
    rows = body["pixels"]
    if not isinstance(rows, list):
        raise _refuse("pixels", "must be a list of 784 numbers, or 28 lists of 28")
    flat = _flatten(rows)
    values = np.empty(PIXELS, dtype=np.float64)
    for i, (where, value) in enumerate(flat):
        # bool is an int subclass in Python; true/false are not pixel values.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _refuse(where, f"must be a number in 0..1, got {type(value).__name__}")
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise _refuse(where, f"must be in 0..1, got {value}")
        values[i] = value
    return values.astype(np.float32)


def _flatten(rows: list[Any]) -> list[tuple[str, Any]]:
    if len(rows) == PIXELS and not any(isinstance(v, list) for v in rows):
        return [(f"pixels[{i}]", v) for i, v in enumerate(rows)]
    if len(rows) == SIDE and all(isinstance(r, list) for r in rows):
        for r, row in enumerate(rows):
            if len(row) != SIDE:
                raise _refuse(f"pixels[{r}]", f"each row must hold {SIDE} values, not {len(row)}")
        return [(f"pixels[{r}][{c}]", v) for r, row in enumerate(rows) for c, v in enumerate(row)]
    raise _refuse(
        "pixels", f"must hold {PIXELS} values or {SIDE} rows of {SIDE}; got {len(rows)} items"
    )


def pixels_from_png(data: bytes, field: str = "image") -> Pixels:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise _refuse(field, "not a PNG file (it lacks the PNG signature)")
    # The size, read from the header (IHDR, first after the signature) before Pillow sees the
    # file: Pillow refuses a huge one with its own exception or a warning, not with our 422.
    if data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if (width, height) != (SIDE, SIDE):
            raise _refuse(field, _wrong_size(width, height))
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        # The size comes from the header: refuse before decoding anything larger.
        if image.size != (SIDE, SIDE):
            raise _refuse(field, _wrong_size(*image.size))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # Pillow's messages may carry reprs (`<_io.BytesIO object at 0x...>`): a heap address
        # is not the client's business, so they are cut out.
        reason = re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", str(exc)).strip()
        raise _refuse(field, f"not a readable PNG ({reason or type(exc).__name__})") from exc
    return _gray(image)


def _wrong_size(width: int, height: int) -> str:
    return (
        f"must be {SIDE}x{SIDE} pixels, got {width}x{height}; scale the digit to fit a 20x20 "
        "box centred in 28x28, as MNIST is"
    )


def _gray(image: Image.Image) -> Pixels:
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        deep = np.asarray(image, dtype=np.float64) / 65535.0
        return np.clip(deep, 0.0, 1.0).astype(np.float32).reshape(PIXELS)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        luma = np.asarray(rgba.convert("L"), dtype=np.float64)
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255.0
        gray = np.rint(luma * alpha).astype(np.uint8)
    else:
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
    # The engine's arithmetic: uint8 / 255 in float32.
    return (gray.reshape(PIXELS).astype(np.float32) / np.float32(255.0)).astype(np.float32)
