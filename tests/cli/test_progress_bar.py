"""`submit --wait`'s bar: the run's own step and total from the first frame, and no rate for a
run that had ended before the bar was drawn (its steps were not taken now)."""

from __future__ import annotations

import pytest

from cli.client import _bar


def test_the_first_frame_shows_the_runs_total(capsys: pytest.CaptureFixture[str]) -> None:
    bar, _ = _bar("4f0c1a2b", 120, 180_000, ended=False)
    first = capsys.readouterr().err
    bar.close()
    assert "120/180000" in first and "0/1 " not in first, first


def test_an_ended_run_shows_no_rate(capsys: pytest.CaptureFixture[str]) -> None:
    bar, show = _bar("4f0c1a2b", 180_000, 180_000, ended=True)
    show(180_000, 180_000, "succeeded")
    bar.close()
    frames = capsys.readouterr().err
    assert "180000/180000" in frames and "succeeded" in frames
    assert "step/s" not in frames and "s/step" not in frames and "?" not in frames, frames


def test_a_running_bar_follows_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    bar, show = _bar("4f0c1a2b", 0, 0, ended=False)  # total not known yet: at least 1
    show(50, 200, "running")
    bar.close()
    assert "50/200" in capsys.readouterr().err
