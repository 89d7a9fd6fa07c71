"""Checks the import graph of trainlab's top-level packages: dependencies point one way.

    core        settings, spec, presets, store, broker names    imports no other package
    api         HTTP service                                    imports core
    worker      Celery side and the training engine             imports core
    migrations  Alembic scripts                                 imports core
    cli         the composition root: starts all of the above   imports core, api, worker,
                                                                trainlab
    trainlab    the Python client (the wheel without extras)    imports no other package

and, inside that: the client (trainlab) imports none of the server's third-party stack either
(torch, fastapi, sqlalchemy, celery, ...), as `pip install trainlab` has only httpx and
pydantic; the API side (core, api) never imports torch, so the API process runs without
the training stack; the engine (worker/engine) stays pure PyTorch: no database, Celery or HTTP,
and of core only the spec (core.spec, core.model_spec) and presets; no package imports the
benchmark-only peers (ray, mlflow). Inside api, the services (api/services) are free of HTTP: no fastapi or starlette,
and none of the HTTP side of api (errors, schemas, auth, http, routes, middleware); they raise
core's domain errors and return plain data, and the routes translate.

The tests and benchmarks are held to the packages they test (TREES): tests/core uses core,
tests/worker core and worker, tests/api core and api, tests/client the client, core and api;
tests/cli, tests/deploy,
tests/integration and bench/ may use everything. A test helper it imports (tests.*, bench.*)
counts with everything that helper reaches, so a helper cannot carry a test across. The few
tests that check one package against another (CROSS_CHECKS) say so by name.

No SQL outside core/store: api, worker and cli read and write the database only through
core.store's functions. Of sqlalchemy and sqlmodel they may import the type of an engine and
of a session (`sqlalchemy.Engine`, `sqlmodel.Session` / `sqlalchemy.orm.Session`: routes are
handed one, a job opens one), and the database's exceptions (`sqlalchemy.exc`, to catch);
nothing that builds a query (select, update, func, text, col, bindparam, the modules
themselves) and not core.store.tables, the Core tables queries are built on.

One named exception: the launcher (trainlab/_launch.py, the `trainlab` command) imports the
CLI. It is the entry point that loads the composition root from the server's folder, not
something the client library uses (nothing in trainlab imports the launcher), so that arrow
counts neither against the client nor as a package cycle.

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

PACKAGES = ("core", "api", "worker", "migrations", "cli", "trainlab")
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "api": frozenset({"core"}),
    "worker": frozenset({"core"}),
    "migrations": frozenset({"core"}),
    "cli": frozenset({"core", "api", "worker", "trainlab"}),
    "trainlab": frozenset(),
}
# Third-party names a package must never import (prefix match on the dotted name), and inside
# api the modules the services must not reach.
BENCH_ONLY = ("ray", "mlflow")
FORBIDDEN_EXTERNAL: dict[str, tuple[str, ...]] = {
    "core": ("torch", "torchvision", *BENCH_ONLY),
    "api": ("torch", "torchvision", *BENCH_ONLY),
    "worker": BENCH_ONLY,
    "migrations": BENCH_ONLY,
    "cli": BENCH_ONLY,
    "worker.engine": ("sqlalchemy", "sqlmodel", "celery", "kombu", "fastapi", "httpx", "redis"),
    "worker.gan": ("sqlalchemy", "sqlmodel", "celery", "kombu", "fastapi", "httpx", "redis"),
    "api.services": (
        "fastapi",
        "starlette",
        "api.errors",
        "api.schemas",
        "api.auth",
        "api.http",
        "api.routes",
        "api.middleware",
    ),
    # The client: httpx and pydantic only (pandas and matplotlib lazily, for their extras).
    "trainlab": (
        "torch",
        "torchvision",
        "fastapi",
        "starlette",
        "sqlalchemy",
        "sqlmodel",
        "alembic",
        "celery",
        "kombu",
        "redis",
        "numpy",
        "scipy",
        "uvicorn",
        "pydantic_settings",
    ),
}
# Modules allowed an import their package is not, and what (see the docstring).
ENTRY_POINTS: dict[str, tuple[str, ...]] = {"trainlab._launch": ("cli",)}
# What of core the engine may use: the spec and its presets, nothing with state.
ENGINE_CORE_ALLOWED = ("core.spec", "core.model_spec", "core.presets")
# No SQL outside core/store (see the docstring): what these packages may take from the
# query libraries.
SQL_FREE = ("api", "worker", "cli")
SQL_BUILDERS = ("sqlalchemy", "sqlmodel", "core.store.tables")
SQL_NAMES_ALLOWED = frozenset(
    {"sqlalchemy.Engine", "sqlalchemy.engine.Engine", "sqlmodel.Session", "sqlalchemy.orm.Session"}
)
SQL_MODULES_ALLOWED = ("sqlalchemy.exc",)

# The test and benchmark trees (folders, the longest match wins) and the packages each may use.
EVERYTHING = frozenset(PACKAGES)
TREES: dict[str, frozenset[str]] = {
    # The root's conftest.py is shared by every tree: it may use only what all of them may.
    "tests": frozenset({"core"}),
    "tests/core": frozenset({"core"}),
    "tests/worker": frozenset({"core", "worker"}),
    "tests/api": frozenset({"core", "api"}),
    # The client against a live API on a real store.
    "tests/client": frozenset({"core", "api", "trainlab"}),
    "tests/cli": EVERYTHING,
    "tests/deploy": EVERYTHING,
    "tests/integration": EVERYTHING,
    "bench": EVERYTHING,
}
# Tests whose point is to check one package against another, and what of the other they use.
CROSS_CHECKS: dict[str, tuple[str, ...]] = {
    # The cost model's parameter counts and checkpoint sizes against the engine's own.
    "tests/core/test_cost.py": ("worker.engine",),
    # The API's numpy inference against the weights the engine trains.
    "tests/api/services/test_inference.py": ("worker.artifacts", "worker.engine"),
    "tests/api/trained_runs.py": ("worker.artifacts", "worker.engine"),
    # Predictions served from a run trained by the engine (tests/api/trained_runs.py).
    "tests/api/routes/test_models.py": ("worker.artifacts", "worker.engine"),
    # /predict's request edges (decoding off the loop, bombs) against a trained run's model.
    "tests/api/test_request_edges.py": ("worker.artifacts", "worker.engine"),
    # The API's numpy generator against the GAN engine's torch one.
    "tests/worker/gan/test_gan_engine.py": ("api.services.gan_inference",),
}


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
        found += query_builders(root, path)
        for imp in imports_of(root, path):
            where = f"{path.relative_to(root)}:{imp.line}"
            source_pkg, target_pkg = _package(imp.source), _package(imp.target)
            for prefix, banned in FORBIDDEN_EXTERNAL.items():
                if _within(imp.source, prefix) and any(_within(imp.target, b) for b in banned):
                    found.append(f"{where}: {imp.source} imports {imp.target} ({prefix} must not)")
            if target_pkg not in PACKAGES:
                continue
            if any(_within(imp.target, ok) for ok in ENTRY_POINTS.get(imp.source, ())):
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
    return found + tree_problems(root)


def _tree_of(root: Path, path: Path) -> str | None:
    folders = path.relative_to(root).parent.parts
    for depth in range(len(folders), 0, -1):
        tree = "/".join(folders[:depth])
        if tree in TREES:
            return tree
    return None


def _helper(name: str, helpers: dict[str, Path]) -> str | None:
    """The test or bench module `name` is (or is inside: `tests.conftest.make_settings`)."""
    while name:
        if name in helpers:
            return name
        name = name.rpartition(".")[0]
    return None


def tree_problems(root: Path) -> list[str]:
    """Each test or bench file that uses a package its tree may not, directly or through a
    helper it imports."""
    files = {
        module_name(root, path): path
        for tree in ("tests", "bench")
        if (root / tree).is_dir()
        for path in sorted((root / tree).rglob("*.py"))
    }
    direct: dict[str, list[Import]] = {name: list(imports_of(root, p)) for name, p in files.items()}

    def allowed(name: str, target: str) -> bool:
        tree = _tree_of(root, files[name])
        if tree is None or _package(target) in TREES[tree]:
            return True
        relative = files[name].relative_to(root).as_posix()
        return any(_within(target, ok) for ok in CROSS_CHECKS.get(relative, ()))

    reach_of: dict[str, dict[str, str]] = {}

    def reach(name: str, seen: frozenset[str] = frozenset()) -> dict[str, str]:
        """Project modules `name` uses, itself or through its helpers -> the import by which."""
        if name in reach_of:
            return reach_of[name]
        found: dict[str, str] = {}
        for imp in direct[name]:
            if _package(imp.target) in PACKAGES:
                found.setdefault(imp.target, name)
            helper = _helper(imp.target, direct)
            if helper and helper != name and helper not in seen:
                for target, via in reach(helper, seen | {name}).items():
                    found.setdefault(target, via)
        if not seen:
            reach_of[name] = found
        return found

    out: list[str] = []
    for name, path in files.items():
        tree = _tree_of(root, path)
        if tree is None:
            continue
        may = sorted(TREES[tree])
        for imp in direct[name]:
            where = f"{path.relative_to(root)}:{imp.line}"
            if _package(imp.target) in PACKAGES and not allowed(name, imp.target):
                out.append(f"{where}: {name} imports {imp.target}, but {tree} may use only {may}")
            helper = _helper(imp.target, direct)
            if helper is None or helper == name:
                continue
            for target, via in sorted(reach(helper).items()):
                if not allowed(name, target):
                    out.append(
                        f"{where}: {name} imports {helper}, which reaches {target} (in {via}), "
                        f"but {tree} may use only {may}"
                    )
                    break
    return sorted(set(out))


def query_builders(root: Path, path: Path) -> list[str]:
    """Imports of query builders by a module of SQL_FREE (see the docstring)."""
    imports = [
        imp
        for imp in imports_of(root, path)
        if any(_within(imp.source, p) for p in SQL_FREE)
        and any(_within(imp.target, b) for b in SQL_BUILDERS)
    ]
    # `from M import name` also yields M itself: that record is judged by its names.
    named = {(imp.line, imp.target.rsplit(".", 1)[0]) for imp in imports if "." in imp.target}
    return [
        f"{path.relative_to(root)}:{imp.line}: {imp.source} imports {imp.target} "
        "(no SQL outside core/store: call a core.store function)"
        for imp in imports
        if imp.target not in SQL_NAMES_ALLOWED
        and not any(_within(imp.target, ok) for ok in SQL_MODULES_ALLOWED)
        and (imp.line, imp.target) not in named
    ]


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
    print(
        "layering: ok (core <- api, worker, migrations <- cli -> trainlab; no cycles; tests and bench)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
