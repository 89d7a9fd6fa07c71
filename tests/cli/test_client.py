"""`trainlab submit` / `trainlab ablate`: what they send and how they print results.
(The commands against a live server run in tests/integration/test_ablation_live.py.)"""

from __future__ import annotations

import argparse

import pytest

from api.services.stats import ArmResults, summarize
from cli.client import (
    ablate_body,
    default_server,
    register,
    submit_body,
    summary_table,
)
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
    from tests.integration.stack import free_port

    server = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["submit", "--preset", "seed-adam", "--server", server]) == 3
    assert f"cannot reach {server}" in capsys.readouterr().err
