"""Warming a worker process: the datasets it is told to load land in the engine's cache, and
a data directory without them (or nothing to warm) leaves the worker working."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import make_settings
from worker.warm import warm, warm_in_background


def test_the_warmed_dataset_is_in_the_engines_cache(mnist_dir: Path) -> None:
    from worker.engine.data import load_dataset
    from worker.engine.model import resolve_device

    settings = make_settings(data_dir=mnist_dir, device="cpu", warm_datasets=["mnist"])
    warm_in_background(settings).join(timeout=120)
    assert warm(settings) == ["mnist"]
    first = load_dataset("mnist", mnist_dir, resolve_device("cpu"), allow_download=False)
    assert load_dataset("mnist", mnist_dir, resolve_device("cpu")) is first


def test_a_missing_dataset_is_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        data_dir=tmp_path / "empty", device="cpu", warm_datasets=["mnist", "fashion-mnist"]
    )
    with caplog.at_level(logging.WARNING, logger="worker.warm"):
        assert warm(settings) == []  # no download attempted, nothing raised
    assert "mnist not loaded" in caplog.text and "fashion-mnist not loaded" in caplog.text
    assert not (tmp_path / "empty" / "MNIST").exists()


def test_nothing_to_warm(tmp_path: Path) -> None:
    assert warm(make_settings(data_dir=tmp_path, warm_datasets=[])) == []


def test_the_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINLAB_WARM_DATASETS", "mnist, fashion-mnist")
    assert make_settings().warm_datasets == ["mnist", "fashion-mnist"]
    monkeypatch.setenv("TRAINLAB_WARM_DATASETS", "")
    assert make_settings().warm_datasets == []
