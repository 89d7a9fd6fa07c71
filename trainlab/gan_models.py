"""A GAN run's images as the client reads them: the samples of its fixed seeds at one sample
step, and one image the trained generator drew from a seed of the caller's. Both mirror the
server's SamplesPublic and Generated schemas (tests/client/test_models_match_openapi.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SIDE = 28  # MNIST images: 28 x 28, row-major


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class Samples(_Answer):
    experiment_id: str
    step: int
    steps: list[int]
    count: int
    labels: list[int] | None
    pixels: list[list[int]] = Field(description="784 values 0..255 per image, row-major.")

    def image(self, index: int) -> list[list[int]]:
        """Image `index` as 28 rows of 28 values (0..255), as matplotlib's imshow takes it."""
        flat = self.pixels[index]
        return [flat[row * SIDE : (row + 1) * SIDE] for row in range(SIDE)]


class Generated(_Answer):
    experiment_id: str
    pixels: list[float] = Field(description="784 values in 0..1, row-major 28x28.")

    def image(self) -> list[list[float]]:
        """The image as 28 rows of 28 values in 0..1."""
        return [self.pixels[row * SIDE : (row + 1) * SIDE] for row in range(SIDE)]


def between(a: list[float], b: list[float], steps: int) -> list[list[float]]:
    """`steps` seeds evenly spaced on the straight line from `a` to `b`, both ends included
    (the walk between two seeds of the book's chapter 9)."""
    if len(a) != len(b):
        raise ValueError(f"the two seeds differ in size: {len(a)} and {len(b)}")
    if steps < 2:
        raise ValueError("an interpolation has at least its two ends: steps >= 2")
    return [
        [x + (y - x) * i / (steps - 1) for x, y in zip(a, b, strict=True)] for i in range(steps)
    ]
