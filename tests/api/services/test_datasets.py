"""The API reads test images from the IDX files itself (no torch in the API process)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from api.services.datasets import (
    DatasetUnavailable,
    load_test_split,
    png_grayscale,
    record,
    record_png,
)


def test_record_19_is_a_4_and_the_label_counts_are_mnists(mnist_dir: Path) -> None:
    found = record(mnist_dir, "mnist", 19)
    assert found["label"] == 4
    pixels = np.array(found["pixels"])
    assert pixels.shape == (28, 28) and pixels.max() > 200 and (pixels == 0).sum() > 300
    counts = np.bincount(load_test_split(mnist_dir.resolve(), "mnist").labels, minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color) == (8, 0)
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, -1)
    assert raw.shape[1] == width + 1
    assert (raw[:, 0] == 0).all()  # filter type "none" on every row
    return raw[:, 1:]


def test_png_round_trips_the_pixels(mnist_dir: Path) -> None:
    decoded = _decode_png(record_png(mnist_dir, "mnist", 19))
    assert decoded.tolist() == record(mnist_dir, "mnist", 19)["pixels"]
    tiny = np.array([[0, 255], [7, 9]], dtype=np.uint8)
    assert _decode_png(png_grayscale(tiny)).tolist() == tiny.tolist()


def test_missing_data_and_bad_indices_are_clear_errors(mnist_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable, match="not found"):
        record(tmp_path, "mnist", 0)
    with pytest.raises(DatasetUnavailable, match="unknown dataset"):
        record(mnist_dir, "cifar", 0)
    with pytest.raises(IndexError, match=r"0\.\.9999"):
        record(mnist_dir, "mnist", 10_000)
    bad = tmp_path / "MNIST" / "raw"
    bad.mkdir(parents=True)
    (bad / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 20)
    (bad / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    with pytest.raises(DatasetUnavailable, match="not an IDX file"):
        record(tmp_path, "mnist", 0)
