"""`trainlab submit` / `trainlab ablate`: what they send and how they print results.
(The commands against a live server run in tests/integration/test_ablation_live.py.)"""

from __future__ import annotations

import argparse

import pytest

from api.services.ablation_summary import ArmResults, summarize
from cli.client import ablate_body, default_server, register, submit_body
from cli.report import summary_table
from tests.conftest import make_settings


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


def test_submit_and_ablate_bodies() -> None:
    args = _parse("submit", "--preset", "seed-adam", "--set", "epochs=1", "--tag", "x", "--wait")
    assert args.wait
    assert submit_body(args) == {"preset": "seed-adam", "overrides": {"epochs": 1}, "tags": ["x"]}
    args = _parse("ablate", "--design", "book", "--seeds", "2", "--set", "train_limit=1000")
    assert ablate_body(args) == {
        "design": "book",
        "overrides": {"train_limit": 1000},
        "seeds": 2,
    }
    args = _parse("ablate", "--base", "seed-bce", "--factor", "optimizer=sgd,adam")
    body = ablate_body(args)
    assert body["preset"] == "seed-bce" and body["factors"] == {"optimizer": ["sgd", "adam"]}
    args = _parse(
        "ablate", "--design", "variants", "--base", "gan-mnist",
        "--variant", "rand1", "latent=uniform", "latent_size=1", "generator.widths=[1,200,784]",
        "--variant", "loss=mse", "--seeds", "3",
    )  # fmt: skip
    assert ablate_body(args)["variants"] == [
        {
            "label": "rand1",
            "overrides": {"latent": "uniform", "latent_size": 1, "generator.widths": [1, 200, 784]},
        },
        {"overrides": {"loss": "mse"}},
    ]
    assert "metric" not in ablate_body(args)
    args = _parse(
        "ablate", "--base", "gan-mnist", "--factor", "loss=bce,mse", "--metric", "frechet"
    )
    assert ablate_body(args)["metric"] == "frechet"
    with pytest.raises(SystemExit):
        _parse("ablate", "--base", "gan-mnist", "--metric", "validation_accuracy")


def test_default_server_comes_from_the_settings() -> None:
    assert default_server(make_settings(port=8123, host="0.0.0.0")) == "http://127.0.0.1:8123"
    assert default_server(make_settings(host="10.0.0.5")) == "http://10.0.0.5:8000"


def test_summary_table_prints_every_arm_with_its_interval() -> None:
    summary = summarize(
        [
            ArmResults(0, "seed-baseline", {0: 0.80, 1: 0.82}, {0: 0.1, 1: 0.2}),
            ArmResults(1, "seed-bce", {0: 0.85, 1: 0.88}, {0: 0.05, 1: 0.06}),
        ]
    )
    table = summary_table(summary).splitlines()
    assert table[0].split()[:3] == ["arm", "n", "acc"]
    assert table[1].startswith("0 seed-baseline") and "81.00" in table[1]
    assert "seed-bce" in table[2] and "86.50" in table[2] and "5.50" in table[2]
    assert "paired t-test" in table[-1]


def test_an_unreachable_server_is_exit_code_3(capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main
    from tests.conftest import free_port

    server = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["submit", "--preset", "seed-adam", "--server", server]) == 3
    assert f"cannot reach {server}" in capsys.readouterr().err


def test_ablate_compare_option() -> None:
    assert _parse("ablate", "--compare", "successive").compare == "successive"
    assert _parse("ablate").compare == "reference"
    with pytest.raises(SystemExit):
        _parse("ablate", "--compare", "pairwise")


def test_successive_table_shows_holm_effect_size_and_seeds_needed() -> None:
    summary = summarize(
        [
            ArmResults(0, "seed-baseline", {0: 0.80, 1: 0.82, 2: 0.81}, {}, "mse"),
            ArmResults(1, "seed-bce", {0: 0.85, 1: 0.88, 2: 0.86}, {}, "bce"),
            ArmResults(2, "seed-leakyrelu", {0: 0.90, 1: 0.89, 2: 0.93}, {}, "bce"),
        ],
        compare="successive",
    )
    lines = summary_table(summary).splitlines()
    assert lines[0].split() == [
        "arm", "n", "acc", "%", "95%", "CI", "loss", "vs", "diff", "pp", "[95%", "CI]",
        "p", "p", "Holm", "d_z", "seeds@80%",
    ]  # fmt: skip
    assert lines[1].split()[-6:] == ["-"] * 6  # arm 0 has no arm before it
    second = summary["comparisons"][0]["test_accuracy"]
    row = lines[2].split()
    assert row[:2] == ["1", "seed-bce"] and row[7] == "0"  # compared with arm 0
    assert row[-3] == f"{second['p_holm']:.3g}" and row[-1] == str(second["seeds_needed"])
    assert row[-2] == f"{second['cohen_dz']:.2f}"
    assert lines[3].split()[7] == "1"
    assert "arm k vs arm k-1" in lines[-1] and "Holm" in lines[-1]
    assert any(line.startswith("note: ") and "loss functions" in line for line in lines)


def test_a_gan_ablation_table_shows_the_label_entropy_in_bits() -> None:
    summary = summarize(
        [
            ArmResults(0, "latent=uniform", {0: 0.10, 1: 0.35}, {}, "bce", "entropy_bits"),
            ArmResults(1, "latent=normal", {0: 2.90, 1: 2.70}, {}, "bce", "entropy_bits"),
        ]
    )
    lines = summary_table(summary).splitlines()
    assert lines[0].split()[:3] == ["arm", "n", "entropy_bits"]
    assert "diff [95% CI]" in lines[0]
    assert lines[1].split()[:3] == ["0", "latent=uniform", "2"] and "0.2250" in lines[1]
    assert "2.8000" in lines[2] and "2.5750" in lines[2]  # mean, and the difference in bits


def test_arms_compared_on_different_metrics_are_refused() -> None:
    with pytest.raises(ValueError, match="different metrics"):
        summarize(
            [
                ArmResults(0, "a", {0: 0.8}, {}, "bce"),
                ArmResults(1, "b", {0: 2.9}, {}, "bce", "entropy_bits"),
            ]
        )
