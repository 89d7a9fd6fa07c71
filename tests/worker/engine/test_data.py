"""Datasets: read once per process onto the device, checksummed, and a clear error when absent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from core.spec import ExperimentSpec
from worker.engine import DatasetUnavailableError, run_training
from worker.engine import data as data_module
from worker.engine.data import dataset_checksum, load_dataset

CPU = torch.device("cpu")
# Test-set label counts of the real MNIST (../shared/data/README.md).
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_splits_as_device_tensors(mnist_dir: Path) -> None:
    data = load_dataset("mnist", mnist_dir, CPU, allow_download=False)
    assert data.train_x.shape == (60_000, 784) and data.train_x.dtype == torch.float32
    assert data.test_x.shape == (10_000, 784)
    assert data.train_x.min() == 0.0 and data.train_x.max() == 1.0
    assert data.test_labels[19] == 4
    assert torch.bincount(data.test_labels).tolist() == MNIST_TEST_COUNTS
    assert torch.equal(data.train_onehot.argmax(1), data.train_labels)
    assert data.train_onehot.sum(1).eq(1).all()


def test_read_once_per_process(mnist_dir: Path) -> None:
    first = load_dataset("mnist", mnist_dir, CPU)
    assert load_dataset("mnist", mnist_dir / "." / "MNIST" / "..", CPU) is first


def test_checksum_is_stable_and_matches_the_run(mnist_dir: Path) -> None:
    checksum = dataset_checksum("mnist", mnist_dir)
    assert len(checksum) == 64 and int(checksum, 16) >= 0
    assert load_dataset("mnist", mnist_dir, CPU).checksum == checksum


def test_missing_files_with_downloads_off(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("mnist", tmp_path, CPU, allow_download=False)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message  # where it looked
    assert "TRAINLAB_DATA_DIR" in message and "TRAINLAB_ALLOW_DOWNLOAD" in message  # the fix


def test_fashion_mnist_has_its_own_folder(mnist_dir: Path) -> None:
    if (mnist_dir / "FashionMNIST" / "raw").exists():
        pytest.skip("Fashion-MNIST is present in the data folder")
    with pytest.raises(DatasetUnavailableError, match="FashionMNIST/raw"):
        load_dataset("fashion-mnist", mnist_dir, CPU, allow_download=False)


def test_run_reports_missing_data_before_training(tmp_path: Path) -> None:
    spec = ExperimentSpec(epochs=1, train_limit=10, device="cpu")
    with pytest.raises(DatasetUnavailableError, match="downloads are off"):
        run_training(spec, data_dir=tmp_path, allow_download=False)
    assert isinstance(DatasetUnavailableError("x"), RuntimeError)


def test_without_torchvision_the_idx_files_are_read_directly(
    mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = dataset_checksum("mnist", mnist_dir)
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision now fails
    monkeypatch.setattr(data_module, "_raw_cache", {})
    assert dataset_checksum("mnist", mnist_dir) == expected
    with pytest.raises(DatasetUnavailableError, match="torchvision is not installed"):
        dataset_checksum("mnist", tmp_path)
