"""Datasets as tensors on the training device, read once per process.

The book read every record through pandas; here the whole split is decoded once by
torchvision, scaled to 0..1 and kept on the device, so a training step only slices a
tensor that is already there. The cache lives as long as the process (a worker runs many
experiments on the same data), keyed by dataset, folder and device.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from core.model_spec import NUM_CLASSES

# torchvision's class for each dataset name; the class name is also its folder under data_dir.
_TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


class DatasetUnavailableError(RuntimeError):
    """The dataset's files are not in the data folder and could not be downloaded."""


@dataclass(frozen=True)
class DeviceDataset:
    name: str
    checksum: str  # sha256 of the raw uint8 images and labels of both splits
    train_x: torch.Tensor  # [records, 784] float32, 0..1
    train_labels: torch.Tensor  # [records] int64
    train_onehot: torch.Tensor  # [records, 10] float32
    test_x: torch.Tensor
    test_labels: torch.Tensor
    test_onehot: torch.Tensor


@dataclass(frozen=True)
class _RawSplits:
    train_images: torch.Tensor  # uint8 [records, 28, 28], on the CPU
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    checksum: str


_raw_cache: dict[tuple[str, str], _RawSplits] = {}
_device_cache: dict[tuple[str, str, str], DeviceDataset] = {}
_lock = threading.Lock()


def load_dataset(
    name: str, data_dir: Path, device: torch.device, *, allow_download: bool = True
) -> DeviceDataset:
    """The dataset's train and test splits on `device`, decoded at most once per process."""
    root = str(Path(data_dir).expanduser().resolve())
    key = (name, root, str(device))
    with _lock:
        cached = _device_cache.get(key)
        if cached is not None:
            return cached
        raw = _raw_splits(name, Path(root), allow_download)
        dataset = DeviceDataset(
            name=name,
            checksum=raw.checksum,
            train_x=_scale(raw.train_images, device),
            train_labels=raw.train_labels.to(device=device, dtype=torch.int64),
            train_onehot=_onehot(raw.train_labels, device),
            test_x=_scale(raw.test_images, device),
            test_labels=raw.test_labels.to(device=device, dtype=torch.int64),
            test_onehot=_onehot(raw.test_labels, device),
        )
        _device_cache[key] = dataset
        return dataset


def dataset_checksum(name: str, data_dir: Path, *, allow_download: bool = True) -> str:
    """sha256 of the dataset's images and labels (what the run actually read), cached."""
    root = Path(data_dir).expanduser().resolve()
    with _lock:
        return _raw_splits(name, root, allow_download).checksum


def _scale(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    # The same arithmetic as the book: uint8 / 255 in float32, one flat row per record.
    return (images.reshape(len(images), -1).to(torch.float32) / 255.0).to(device)


def _onehot(labels: torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels.to(torch.int64), NUM_CLASSES).to(
        device=device, dtype=torch.float32
    )


def _raw_splits(name: str, root: Path, allow_download: bool) -> _RawSplits:
    key = (name, str(root))
    cached = _raw_cache.get(key)
    if cached is not None:
        return cached
    if name not in _TORCHVISION_CLASS:
        raise DatasetUnavailableError(
            f"unknown dataset {name!r}; known: {', '.join(_TORCHVISION_CLASS)}"
        )
    raw_folder = root / _TORCHVISION_CLASS[name] / "raw"
    try:
        import torchvision  # only the engine needs it, and it is slow to import
    except ImportError:
        # A machine with torch alone (a GPU box, say) reads the same IDX files directly.
        parts = _read_idx_files(name, raw_folder)
    else:
        cls = getattr(torchvision.datasets, _TORCHVISION_CLASS[name])
        try:
            # torchvision reports download progress on stdout, the CLI's JSON channel.
            with contextlib.redirect_stdout(sys.stderr):
                train = cls(str(root), train=True, download=allow_download)
                test = cls(str(root), train=False, download=allow_download)
        except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
            raise DatasetUnavailableError(_explain(name, raw_folder, allow_download, exc)) from exc
        parts = (train.data, train.targets, test.data, test.targets)
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.contiguous().numpy().tobytes())
    splits = _RawSplits(*parts, digest.hexdigest())
    _raw_cache[key] = splits
    return splits


# The IDX files torchvision's MNIST-style datasets read, in _RawSplits order.
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _read_idx_files(
    name: str, raw_folder: Path
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four IDX files as torchvision returns them: images uint8 [N, 28, 28], labels int64."""
    parts = []
    for file_name in _IDX_FILES:
        path = raw_folder / file_name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DatasetUnavailableError(
                _explain(name, raw_folder, False, exc)
                + " (torchvision is not installed, so nothing can be downloaded)"
            ) from exc
        # Header: two zero bytes, the type (8: unsigned byte), the rank, then each size.
        if len(data) < 4 or data[:3] != b"\x00\x00\x08":
            raise DatasetUnavailableError(f"{path} is not an IDX file of unsigned bytes")
        rank = data[3]
        sizes = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
        values = torch.frombuffer(bytearray(data[4 + 4 * rank :]), dtype=torch.uint8)
        tensor = values.reshape(sizes)
        parts.append(tensor.to(torch.int64) if rank == 1 else tensor)
    train_images, train_labels, test_images, test_labels = parts
    return train_images, train_labels, test_images, test_labels


def _explain(name: str, raw_folder: Path, allow_download: bool, exc: BaseException) -> str:
    where = f"{name} was not found in {raw_folder} (the IDX files torchvision reads)"
    fix = (
        "point the data directory (TRAINLAB_DATA_DIR, or --data-dir) at a folder that holds "
        f"{raw_folder.parent.name}/raw/"
    )
    if allow_download:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{where}, and downloading it failed ({reason}): {fix}, or retry with network access"
    return f"{where} and downloads are off: {fix}, or set TRAINLAB_ALLOW_DOWNLOAD=true"
