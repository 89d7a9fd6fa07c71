"""Reading docker-compose.yml, .env.example and the Dockerfile the way Docker does, so the deploy
tests check the values a container would really get, not copies of them.

Interpolation follows the compose specification: ``$$``, ``$VAR``, ``${VAR}``,
``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alt}`` and
``${VAR+alt}``; YAML merge keys (``<<: *anchor``) are resolved by PyYAML itself.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
# Workers on more GPU hosts, pointed at the main host's database and broker.
WORKER_COMPOSE_FILE = REPO / "docker-compose.worker.yml"
WORKER_ENV_EXAMPLE = REPO / ".env.worker.example"
DOCKERFILE = REPO / "Dockerfile"

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(
    rf"\$(?:(?P<escaped>\$)"
    rf"|\{{(?P<braced>{_NAME})(?:(?P<op>:?[-?+])(?P<arg>[^}}]*))?\}}"
    rf"|(?P<plain>{_NAME}))"
)


class InterpolationError(ValueError):
    """A required variable (``${VAR:?message}``) has no value: compose would refuse to start."""


def load_yaml(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


def _strings(node: Any) -> list[str]:
    """The string values of a parsed YAML tree: what compose interpolates (not comments)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    if isinstance(node, dict):
        return [text for value in node.values() for text in _strings(value)]
    return []


def variables_used(tree: Any) -> set[str]:
    """Every variable the values refer to (``$$`` is an escaped dollar, not a reference)."""
    names = set()
    for text in _strings(tree):
        for match in _REFERENCE.finditer(text):
            name = match.group("braced") or match.group("plain")
            if name:
                names.add(name)
    return names


def required_variables(tree: Any) -> set[str]:
    return {
        m.group("braced")
        for text in _strings(tree)
        for m in _REFERENCE.finditer(text)
        if m.group("op") in ("?", ":?") and m.group("braced")
    }


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines as compose reads them; comments and blank lines are skipped."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(_NAME, key), f"{path.name}:{number}: not KEY=VALUE: {raw!r}"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        unset_or_empty = not value
        missing = unset_or_empty if op and op.startswith(":") else value is None
        if op in (":-", "-"):
            return arg if missing else str(value)
        if op in (":?", "?"):
            if missing:
                raise InterpolationError(f"{name}: {arg or 'required'}")
            return str(value)
        if op in (":+", "+"):
            return "" if missing else arg
        return value or ""

    return _REFERENCE.sub(replace, text)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment`, given as a mapping or as a list of KEY=VALUE."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.partition("=") for item in raw)
        return {key: value for key, sep, value in pairs if sep}
    return {key: str(value) for key, value in raw.items() if value is not None}


def volume_targets(service: Mapping[str, Any]) -> dict[str, str]:
    """Named volume -> mount point inside the container (short and long syntax)."""
    targets: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            targets[source] = rest.split(":", 1)[0]
        else:
            targets[str(volume.get("source"))] = str(volume["target"])
    return targets


@dataclass(frozen=True)
class Dockerfile:
    # (INSTRUCTION, arguments) in order: stages[0] is what comes before the first FROM (global
    # ARGs), then one list per FROM.
    stages: list[list[tuple[str, str]]]

    @classmethod
    def read(cls, path: Path = DOCKERFILE) -> Dockerfile:
        logical: list[str] = []
        pending = ""
        for raw in path.read_text().splitlines():
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            logical.append(pending + stripped)
            pending = ""
        stages: list[list[tuple[str, str]]] = [[]]
        for line in logical:
            instruction, _, arguments = line.partition(" ")
            if instruction.upper() == "FROM":
                stages.append([])
            stages[-1].append((instruction.upper(), arguments.strip()))
        assert len(stages) > 1, f"{path} has no FROM"
        return cls(stages)

    @property
    def final(self) -> list[tuple[str, str]]:
        return self.stages[-1]

    def args(self) -> dict[str, str]:
        """Default values of every ARG, across stages."""
        found: dict[str, str] = {}
        for stage in self.stages:
            for instruction, arguments in stage:
                if instruction == "ARG" and "=" in arguments:
                    key, _, value = arguments.partition("=")
                    found[key.strip()] = value.strip().strip("\"'")
        return found

    def final_env(self) -> dict[str, str]:
        """ENV of the stage the image runs (KEY=VALUE form), as a container starts with it."""
        env: dict[str, str] = {}
        for instruction, arguments in self.final:
            if instruction == "ENV":
                for token in shlex.split(arguments):
                    key, sep, value = token.partition("=")
                    if sep:
                        env[key] = value
        return env

    def final_user(self) -> str | None:
        users = [arguments for instruction, arguments in self.final if instruction == "USER"]
        return users[-1] if users else None
