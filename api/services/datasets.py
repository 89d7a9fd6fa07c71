"""Test images for the dashboard, read straight from the IDX files torchvision keeps.

The API process has no torch, so this parses the IDX format itself (a big-endian header, then
raw uint8 pixels) with numpy. Only the test split is served: that is what predictions refer to.
Files are memory-mapped and cached per path, so a request reads 784 bytes, not 7.8 MB.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# Dataset name in a spec -> torchvision's folder name under the data dir.
FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
IMAGES_MAGIC = 0x00000803  # uint8 data, 3 dimensions
LABELS_MAGIC = 0x00000801  # uint8 data, 1 dimension


class DatasetUnavailable(LookupError):
    """The dataset's test files are not in the data dir (or are not IDX files)."""


@dataclass(frozen=True)
class HeldOutSplit:
    images: npt.NDArray[np.uint8]  # [records, rows, cols]
    labels: npt.NDArray[np.uint8]  # [records]


def _raw_bytes(path: Path) -> npt.NDArray[np.uint8]:
    if path.exists():
        return np.memmap(path, dtype=np.uint8, mode="r")
    packed = path.with_name(path.name + ".gz")
    if packed.exists():
        return np.frombuffer(gzip.decompress(packed.read_bytes()), dtype=np.uint8)
    raise DatasetUnavailable(f"{path} not found")


def _parse(path: Path, magic: int) -> npt.NDArray[np.uint8]:
    raw = _raw_bytes(path)
    dims = magic & 0xFF
    header = 4 + 4 * dims
    if raw.size < header:
        raise DatasetUnavailable(f"{path} is too short for an IDX header")
    found, *shape = struct.unpack(f">I{dims}I", raw[:header].tobytes())
    if found != magic or raw.size != header + int(np.prod(shape)):
        raise DatasetUnavailable(f"{path} is not an IDX file of the expected kind")
    return raw[header:].reshape(shape)


@lru_cache(maxsize=4)
def load_test_split(data_dir: Path, dataset: str) -> HeldOutSplit:
    folder = FOLDERS.get(dataset)
    if folder is None:
        raise DatasetUnavailable(f"unknown dataset {dataset!r}; known: {', '.join(FOLDERS)}")
    raw = data_dir / folder / "raw"
    images = _parse(raw / "t10k-images-idx3-ubyte", IMAGES_MAGIC)
    labels = _parse(raw / "t10k-labels-idx1-ubyte", LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DatasetUnavailable(f"{raw}: {images.shape[0]} images but {labels.shape[0]} labels")
    return HeldOutSplit(images, labels)


def record(data_dir: Path, dataset: str, index: int) -> dict[str, Any]:
    split = load_test_split(data_dir.resolve(), dataset)
    if not 0 <= index < split.labels.shape[0]:
        raise IndexError(f"record {index} is outside 0..{split.labels.shape[0] - 1}")
    return {
        "dataset": dataset,
        "index": index,
        "label": int(split.labels[index]),
        "pixels": np.asarray(split.images[index]).tolist(),
    }


def png_grayscale(pixels: npt.NDArray[np.uint8]) -> bytes:
    """A minimal 8-bit grayscale PNG (no Pillow in the API's dependencies)."""
    height, width = pixels.shape
    rows = b"".join(b"\x00" + bytes(pixels[r].tobytes()) for r in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def record_png(data_dir: Path, dataset: str, index: int) -> bytes:
    split = load_test_split(data_dir.resolve(), dataset)
    if not 0 <= index < split.labels.shape[0]:
        raise IndexError(f"record {index} is outside 0..{split.labels.shape[0] - 1}")
    return png_grayscale(np.asarray(split.images[index], dtype=np.uint8))
