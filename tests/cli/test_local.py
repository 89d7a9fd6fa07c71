"""`trainlab train` and `trainlab presets`, run as a user runs them: a subprocess of the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def trainlab(
    *argv: str, cwd: Path, data_dir: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRAINLAB_")}
    if data_dir is not None:
        environ["TRAINLAB_DATA_DIR"] = str(data_dir)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "cli", *argv],
        cwd=cwd,  # away from any .env file in the checkout
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def last_json(stdout: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return data


def test_dry_run_json(mnist_dir: Path, tmp_path: Path) -> None:
    done = trainlab(
        "train", "--preset", "seed-adam", "--dry-run", "--json", "--device", "cpu",
        "--threads", "1", cwd=tmp_path, data_dir=mnist_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = last_json(done.stdout)
    assert out["status"] == "completed"
    assert out["steps"] == out["total_steps"] == 64
    assert out["spec"]["optimizer"] == "adam"
    assert (out["spec"]["train_limit"], out["spec"]["test_limit"]) == (64, 64)
    assert 0 <= out["test_accuracy"] <= 1
    assert out["train_seconds"] > 0
    assert isinstance(out["final_loss"], float)
    assert len(out["record_19"]) == 10 and out["record_19_label"] == 4
    assert out["fingerprint"]["threads"] == 1


def test_set_overrides_and_data_dir_flag(mnist_dir: Path, tmp_path: Path) -> None:
    done = trainlab(
        "train", "--set", "model.hidden=[32,16]", "--set", "epochs=1", "--set", "train_limit=50",
        "--set", "test_limit=15", "--set", "model.activation=tanh", "--json", "--device", "cpu",
        "--data-dir", str(mnist_dir), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = last_json(done.stdout)
    assert out["spec"]["model"]["hidden"] == [32, 16]
    assert out["spec"]["model"]["activation"] == "tanh"
    assert out["steps"] == 50
    assert "record_19" not in out  # only 15 test records


def test_human_output(mnist_dir: Path, tmp_path: Path) -> None:
    done = trainlab("train", "--dry-run", "--device", "cpu", cwd=tmp_path, data_dir=mnist_dir)
    assert done.returncode == 0, done.stderr
    assert "spec: completed after 64 steps" in done.stdout
    assert "record 19 (true label 4)" in done.stdout


def test_invalid_spec_one_line_per_problem_and_exit_2(tmp_path: Path) -> None:
    done = trainlab(
        "train", "--set", "epochs=0", "--set", "colour=red", "--set", "model.hidden=[0]",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert sorted(lines) == [
        "trainlab: error: colour: Extra inputs are not permitted",
        "trainlab: error: epochs: Input should be greater than or equal to 1",
        "trainlab: error: model: hidden[0]=0: each width must be 1..4096",
    ]
    assert done.stdout == ""


def test_invalid_combination_and_bad_set_syntax(tmp_path: Path) -> None:
    done = trainlab("train", "--preset", "seed-bce", "--set", "model.output=none", cwd=tmp_path)
    assert done.returncode == 2
    assert "raw logits" in done.stderr and "Traceback" not in done.stderr
    done = trainlab("train", "--set", "epochs", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "trainlab: error: --set 'epochs': expected KEY=VALUE"


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    done = trainlab(
        "train", "--dry-run", "--device", "cpu", cwd=tmp_path, data_dir=tmp_path / "none",
        TRAINLAB_ALLOW_DOWNLOAD="false",
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "MNIST/raw" in done.stderr and "downloads are off" in done.stderr


def test_presets_json(tmp_path: Path) -> None:
    done = trainlab("presets", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listing = last_json(done.stdout)
    assert list(listing) == [
        "seed-baseline",
        "seed-bce",
        "seed-leakyrelu",
        "seed-adam",
        "seed-layernorm",
        "cnn-mnist",
        "gan-first-attempt",
        "gan-mnist",
        "gan-mnist-rand1",
        "cgan-mnist",
    ]
    assert listing["cnn-mnist"]["spec"]["model"]["type"] == "cnn"
    assert listing["gan-mnist"]["spec"]["kind"] == "gan"
    assert listing["seed-adam"]["spec"]["optimizer"] == "adam"
    assert listing["seed-adam"]["spec"]["lr"] == 0.001
    assert "Adam" in listing["seed-adam"]["description"]


def test_presets_text_lists_every_preset(tmp_path: Path) -> None:
    done = trainlab("presets", cwd=tmp_path)
    assert done.returncode == 0
    assert "seed-layernorm\n  seed-adam with LayerNorm(200)" in done.stdout


def test_presets_import_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys, cli, cli.local as l, argparse; "
        "l.presets_command(argparse.Namespace(json=True)); "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr
