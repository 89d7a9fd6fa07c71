"""The `trainlab` command's groups (cli/__init__.py): every command a module registers is in
GROUPS, and where a dependency is missing (the wheel without extras, `pip install trainlab`)
a server command answers one line naming the extra while the client commands still work.

A missing distribution is made here by blocking its import in a child process (a None in
sys.modules, which Python answers with ModuleNotFoundError); tests/deploy/test_wheel.py runs
the same commands from a real install of the wheel without extras."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys

import pytest

import cli
from tests.conftest import REPO, free_port


def _registered(module: str) -> list[str]:
    """The commands `module` registers, in order."""
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    importlib.import_module(module).register(commands)
    return list(commands.choices)


def test_groups_name_every_command_their_module_registers() -> None:
    for module, group in cli.GROUPS.items():
        assert _registered(module) == list(group), module
    parser = cli.build_parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(commands.choices) == [c for group in cli.GROUPS.values() for c in group]
    # Everything is installed here: no command stands in for a missing group.
    assert not any(p.get_default("missing") for p in commands.choices.values())


@pytest.mark.parametrize(
    ("module", "needs", "extra"),
    [
        ("torch", "worker", "worker"),
        ("torchvision.datasets", "server", "worker"),
        ("pydantic_settings", "server", "server"),
        ("pydantic_settings", "worker", "worker"),  # trainlab[worker] brings the server's too
        ("uvicorn", "", "server"),
        ("core.settings", "server", None),  # trainlab's own: a broken install, not an extra
        ("cli.nothing", "server", None),
    ],
)
def test_the_extra_named_for_a_missing_module(module: str, needs: str, extra: str | None) -> None:
    assert cli.missing_extra(ModuleNotFoundError(name=module), needs) == extra


def _trainlab(
    *argv: str, blocked: tuple[str, ...], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`trainlab ARGV` in a child where the `blocked` distributions are not installed."""
    code = (
        "import sys\n"
        f"for name in {list(blocked)!r}:\n"
        "    sys.modules[name] = None\n"
        "from cli import main\n"
        f"sys.exit(main({list(argv)!r}))\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRAINLAB_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**base, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


# What `pip install trainlab` lacks that the CLI's modules import first.
CLIENT_ALONE = ("pydantic_settings", "tqdm", "scipy", "sqlmodel", "sqlalchemy", "uvicorn")


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["serve", "--port", "8123"], "server"),
        (["migrate"], "server"),
        (["worker", "--concurrency", "2"], "worker"),
        (["train", "--preset", "seed-adam"], "worker"),
        (["keys", "create", "--name", "alice"], "server"),
        (["prune", "--older-than", "30d"], "server"),
        (["backup", "--to", "x.db"], "server"),
        (["serve", "--help"], "server"),
    ],
)
def test_a_server_command_without_its_extra_says_which(argv: list[str], extra: str) -> None:
    done = _trainlab(*argv, blocked=CLIENT_ALONE)
    assert done.returncode == cli.EXIT_MISSING_EXTRA, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"trainlab {argv[0]}: needs the {extra} extra (no module named ")
    assert line.endswith(f"pip install 'trainlab[{extra}]'")


def test_help_lists_the_commands_of_a_missing_extra() -> None:
    done = _trainlab("--help", blocked=CLIENT_ALONE)
    assert done.returncode == 0, done.stderr
    for command in ("serve", "keys", "submit", "sweep"):
        assert f"    {command} " in done.stdout
    assert "(needs: pip install 'trainlab[server]')" in done.stdout
    assert "(needs: pip install 'trainlab[worker]')" in done.stdout


def test_a_command_meeting_a_missing_module_as_it_runs_names_the_extra() -> None:
    """The server installed, torch not: `train` loads, then needs the worker extra."""
    done = _trainlab("train", "--preset", "seed-adam", "--dry-run", blocked=("torch",))
    assert done.returncode == cli.EXIT_MISSING_EXTRA, done.stderr
    assert done.stderr.strip() == (
        "trainlab train: needs the worker extra (no module named 'torch'): "
        "pip install 'trainlab[worker]'"
    )


def test_a_client_command_runs_without_the_server_settings() -> None:
    """No pydantic_settings: the server is TRAINLAB_URL's, as for trainlab.Client."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = _trainlab("submit", "--preset", "seed-adam", blocked=CLIENT_ALONE,
                     env={"TRAINLAB_URL": url})  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert f"cannot reach {url}" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_argument_is_still_a_usage_error() -> None:
    done = _trainlab("submit", "--nope", blocked=())
    assert done.returncode == 2
    assert "unrecognized arguments: --nope" in done.stderr
