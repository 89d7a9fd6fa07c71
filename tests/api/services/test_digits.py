"""One image for /predict: JSON pixels (flat or 28 rows) and PNGs of every common mode become
the 784 float32 values the engine trains on; anything else is refused naming the field."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from api.services.digits import pixels_from_json, pixels_from_png
from core.errors import InvalidFields

RNG = np.random.default_rng(0)
GRAY = RNG.integers(0, 256, (28, 28), dtype=np.uint8)
# The engine's scaling: uint8 / 255 in float32.
EXPECTED = GRAY.reshape(784).astype(np.float32) / np.float32(255.0)


def png(image: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def refusal(call: Any, *args: Any) -> dict[str, str]:
    with pytest.raises(InvalidFields) as refused:
        call(*args)
    (error,) = refused.value.errors
    return error


def test_json_pixels_flat_and_as_rows() -> None:
    flat = pixels_from_json({"pixels": EXPECTED.tolist()})
    rows = pixels_from_json({"pixels": EXPECTED.reshape(28, 28).tolist()})
    assert flat.dtype == np.float32 and (flat == EXPECTED).all() and (rows == EXPECTED).all()
    assert (pixels_from_json({"pixels": [0] * 783 + [1]})[-1:] == [1.0]).all()  # ints too


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"pixels": [0.0] * 783}, "pixels", "784 values or 28 rows of 28; got 783"),
        ({"pixels": [[0.0] * 28] * 27 + [[0.0] * 27]}, "pixels[27]", "28 values, not 27"),
        ({"pixels": [0.5] * 10 + [1.5] + [0.0] * 773}, "pixels[10]", "in 0..1, got 1.5"),
        (
            {"pixels": [[0.0] * 28] * 3 + [[0.0] * 5 + [-0.1] + [0.0] * 22] + [[0.0] * 28] * 24},
            "pixels[3][5]",
            "in 0..1, got -0.1",
        ),
        ({"pixels": ["0"] + [0.0] * 783}, "pixels[0]", "a number in 0..1, got str"),
        ({"pixels": [True] + [0.0] * 783}, "pixels[0]", "got bool"),
        ({"pixels": [float("nan")] + [0.0] * 783}, "pixels[0]", "got nan"),
        ({"pixels": "abc"}, "pixels", "must be a list"),
        ({}, "pixels", "required"),
        ({"pixels": [0.0] * 784, "extra": 1}, "extra", "unknown field"),
        ([0.0] * 784, "body", "expected a JSON object"),
    ],
    ids=[
        "short",
        "short-row",
        "above-1",
        "below-0-in-rows",
        "string",
        "bool",
        "nan",
        "not-a-list",
        "missing",
        "unknown-field",
        "not-an-object",
    ],
)
def test_bad_json_pixels_name_the_field(body: Any, field: str, reason: str) -> None:
    error = refusal(pixels_from_json, body)
    assert error["field"] == field and reason in error["reason"], error


def test_png_gray_rgb_palette_and_16_bit() -> None:
    gray = Image.fromarray(GRAY, mode="L")
    assert (pixels_from_png(png(gray)) == EXPECTED).all()
    # Equal channels: luma is the channel itself.
    rgb = Image.merge("RGB", [gray, gray, gray])
    assert (pixels_from_png(png(rgb)) == EXPECTED).all()
    assert (pixels_from_png(png(gray.convert("P"))) == EXPECTED).all()
    deep = Image.fromarray(GRAY.astype(np.uint16) * 257)  # 16-bit, full range
    assert deep.mode.startswith("I")
    np.testing.assert_allclose(pixels_from_png(png(deep)), EXPECTED, atol=1e-7)
    # Colour: ITU-R 601-2 luma, as Pillow's L.
    red = Image.new("RGB", (28, 28), (255, 0, 0))
    assert pixels_from_png(png(red))[0] == np.float32(76) / np.float32(255)


def test_png_transparency_is_black_background() -> None:
    white = np.full((28, 28, 4), 255, dtype=np.uint8)
    white[:, :, 3] = 0
    white[10, 10, 3] = 255  # one opaque white pixel on a transparent canvas
    pixels = pixels_from_png(png(Image.fromarray(white, mode="RGBA")))
    assert pixels[10 * 28 + 10] == 1.0 and pixels.sum() == 1.0
    half = Image.new("LA", (28, 28), (255, 128))
    assert pixels_from_png(png(half))[0] == np.float32(128) / np.float32(255)


def test_bad_pngs_are_refused() -> None:
    big = png(Image.new("L", (280, 280)))
    assert "must be 28x28 pixels, got 280x280" in refusal(pixels_from_png, big)["reason"]
    assert refusal(pixels_from_png, b"GIF89a....")["reason"].startswith("not a PNG file")
    truncated = png(Image.fromarray(GRAY, mode="L"))[:60]
    error = refusal(pixels_from_png, truncated)
    assert error["field"] == "image" and "not a readable PNG" in error["reason"]
    jpeg = io.BytesIO()
    Image.fromarray(GRAY, mode="L").save(jpeg, format="JPEG")
    assert "not a PNG" in refusal(pixels_from_png, jpeg.getvalue())["reason"]
