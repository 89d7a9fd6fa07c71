"""Checks the import graph of trainlab's top-level packages: dependencies point one way.

    core        settings, spec, presets, store, broker names    imports no other package
    api         HTTP service                                    imports core
    worker      Celery side and the training engine             imports core
    migrations  Alembic scripts                                 imports core
    cli         the composition root: starts all of the above   imports core, api, worker

and, inside that: the API side (core, api) never imports torch, so the API process runs without
the training stack; the engine (worker/engine) stays pure PyTorch: no database, Celery or HTTP,
and of core only the spec and presets.

Every import counts, also those inside functions or under TYPE_CHECKING: a lazy import is
still a dependency. Exits 1 and names each offending import (file:line) on a forbidden arrow or
a cycle between packages or between modules (module-level imports); 0 when the graph is clean.

Usage: python .ci/check_layering.py [ROOT]
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("core", "api", "worker", "migrations", "cli")
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "api": frozenset({"core"}),
    "worker": frozenset({"core"}),
    "migrations": frozenset({"core"}),
    "cli": frozenset({"core", "api", "worker"}),
}
# Third-party names a package must never import (prefix match on the dotted name).
FORBIDDEN_EXTERNAL: dict[str, tuple[str, ...]] = {
    "core": ("torch", "torchvision"),
    "api": ("torch", "torchvision"),
    "worker.engine": ("sqlalchemy", "sqlmodel", "celery", "kombu", "fastapi", "httpx", "redis"),
    "worker.gan": ("sqlalchemy", "sqlmodel", "celery", "kombu", "fastapi", "httpx", "redis"),
}
# What of core the engine may use: the spec and its presets, nothing with state.
ENGINE_CORE_ALLOWED = ("core.spec", "core.presets")


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module, dotted
    path: Path
    line: int
    module_level: bool


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(source: str, is_package: bool, level: int, name: str | None) -> str:
    base = source.split(".") if is_package else source.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(root: Path, path: Path) -> Iterator[Import]:
    source = module_name(root, path)
    tree = ast.parse(path.read_text(), filename=str(path))
    module_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        top = id(node) in module_level
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, path, node.lineno, top)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve(source, path.name == "__init__.py", node.level, node.module)
            else:
                base = node.module or ""
            yield Import(source, base, path, node.lineno, top)
            # `from core import store` imports the module core.store.
            for alias in node.names:
                yield Import(source, f"{base}.{alias.name}", path, node.lineno, top)


def _package(name: str) -> str:
    return name.split(".", 1)[0]


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def problems(root: Path) -> list[str]:
    found: list[str] = []
    modules = {
        module_name(root, path): path
        for package in PACKAGES
        if (root / package).is_dir()
        for path in sorted((root / package).rglob("*.py"))
    }
    edges: dict[str, set[str]] = {}
    package_edges: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for name, path in modules.items():
        for imp in imports_of(root, path):
            where = f"{path.relative_to(root)}:{imp.line}"
            source_pkg, target_pkg = _package(imp.source), _package(imp.target)
            for prefix, banned in FORBIDDEN_EXTERNAL.items():
                if _within(imp.source, prefix) and any(_within(imp.target, b) for b in banned):
                    found.append(f"{where}: {imp.source} imports {imp.target} ({prefix} must not)")
            if target_pkg not in PACKAGES:
                continue
            if target_pkg != source_pkg:
                package_edges[source_pkg].add(target_pkg)
                if target_pkg not in ALLOWED[source_pkg]:
                    found.append(
                        f"{where}: {imp.source} imports {imp.target}, but {source_pkg} may "
                        f"import only {sorted(ALLOWED[source_pkg]) or 'no other package'}"
                    )
            if (
                _within(imp.source, "worker.engine")
                and target_pkg == "core"
                and not any(_within(imp.target, ok) for ok in ENGINE_CORE_ALLOWED)
                # `from core import spec` also names the package `core` itself
                and not any(ok.startswith(imp.target + ".") for ok in ENGINE_CORE_ALLOWED)
            ):
                found.append(f"{where}: the engine imports {imp.target} (only the spec is allowed)")
            if imp.module_level and imp.target in modules and imp.target != name:
                edges.setdefault(name, set()).add(imp.target)
    found += [f"package cycle: {' -> '.join(c)}" for c in _cycles(package_edges)]
    found += [f"module import cycle: {' -> '.join(c)}" for c in _cycles(edges)]
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append([*sorted(component), sorted(component)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    found = problems(root)
    for line in found:
        print(line)
    if found:
        print(f"layering: {len(found)} forbidden import(s)", file=sys.stderr)
        return 1
    print("layering: ok (core <- api, worker, migrations <- cli; no cycles)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
