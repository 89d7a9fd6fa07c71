"""`trainlab train --seeds N`: N seeds of one spec trained fused in this process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import main


def test_seeds_train_fused_and_report_each(
    mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train", "--preset", "seed-adam", "--seeds", "8", "--json", "--device", "cpu",
        "--threads", "1", "--set", "epochs=1", "--set", "train_limit=300",
        "--set", "test_limit=100", "--data-dir", str(mnist_dir),
    ]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # Adam on the CPU: as many runs per group as the cache holds (grouping.py).
    assert out["seeds"] == list(range(8)) and out["fused_groups"] == [4, 4]
    assert out["train_seconds"] > 0 and out["runs_per_second"] > 0
    runs = out["runs"]
    assert [run["seed"] for run in runs] == list(range(8))
    assert [run["spec"]["seed"] for run in runs] == list(range(8))
    for run in runs:
        assert run["status"] == "completed" and run["steps"] == run["total_steps"] == 300
        assert 0 <= run["test_accuracy"] <= 1 and isinstance(run["final_loss"], float)
        assert len(run["record_19"]) == 10 and run["record_19_label"] == 4
        assert run["fingerprint"]["fused_runs"] == 4
        assert run["train_seconds"] <= out["train_seconds"]
    assert len({run["final_loss"] for run in runs}) == 8  # each seed its own run

    # Seed 3 of the group is seed 3 trained alone.
    alone = [*argv[:3], *argv[5:], "--set", "seed=3"]
    assert main(alone) == 0
    single = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert single["final_loss"] == runs[3]["final_loss"]
    assert single["record_19"] == runs[3]["record_19"]
    assert single["fingerprint"]["fused_runs"] == 1


def test_seeds_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--seeds", "0"]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err


def test_the_last_seed_must_be_in_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--seeds", "2", "--set", f"seed={2**31 - 1}"]) == 2
    assert "seed" in capsys.readouterr().err
