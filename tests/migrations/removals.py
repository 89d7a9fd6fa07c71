"""What a migration's upgrade removes or renames, read from its source (never run).

`removals` walks `upgrade()` and the module's functions it calls, and reports each Alembic
operation that drops or renames a table, a column or a constraint: `op.drop_table`,
`op.drop_column`, `op.rename_table`, `op.alter_column(..., new_column_name=...)`,
`op.drop_constraint`, the same on a `batch_alter_table` handle, and `op.execute` of SQL that
says DROP or RENAME. Names given as module constants (or f-strings of them) are resolved.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

# Operation -> how many leading arguments name what it removes (table first, on `op`).
_ON_OP = {"drop_table": 1, "rename_table": 1, "drop_column": 2, "drop_constraint": 2}
_SQL = re.compile(r"\b(DROP|RENAME)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Removal:
    migration: str  # the file's name
    line: int
    operation: str  # an Alembic operation, or rename_column, or execute (raw SQL)
    target: tuple[str, ...]  # (table,), (table, column) or (table, constraint); SQL text

    @property
    def key(self) -> tuple[str, ...]:
        """How CONTRACT_STEPS names it."""
        return (self.migration, self.operation, *self.target)

    def __str__(self) -> str:
        return f"{self.migration}:{self.line}: {self.operation} {' '.join(self.target)}"


@dataclass(frozen=True)
class Migration:
    name: str
    revision: str
    down_revision: str | None
    source: str


def read_migration(path: Path) -> Migration:
    source = path.read_text()
    values = _constants(ast.parse(source))
    return Migration(path.name, values["revision"], values.get("down_revision"), source)


def after(migrations: list[Migration], head: str) -> list[Migration]:
    """The migrations that come after revision `head` in the chain, in order."""
    by_down = {m.down_revision: m for m in migrations}
    assert head in {m.revision for m in migrations}, f"no migration {head}"
    found: list[Migration] = []
    current = head
    while current in by_down:
        following = by_down[current]
        found.append(following)
        current = following.revision
    return found


def removals(source: str, migration: str) -> list[Removal]:
    tree = ast.parse(source)
    constants = _constants(tree)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    found: list[Removal] = []
    for function in _reached(functions, "upgrade"):
        batches = _batch_tables(function, constants)
        for call in ast.walk(function):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                found += _removal(call, batches, constants, migration)
    return sorted(found, key=lambda r: r.line)


def _removal(
    call: ast.Call, batches: dict[str, str], constants: dict[str, str], migration: str
) -> list[Removal]:
    assert isinstance(call.func, ast.Attribute)
    name, receiver = call.func.attr, call.func.value
    if not isinstance(receiver, ast.Name):
        return []
    args = [_text(arg, constants) for arg in call.args]
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    if receiver.id in batches:
        args = [batches[receiver.id], *args]  # a batch handle names its table itself
    elif receiver.id != "op":
        return []
    if name == "alter_column" and "new_column_name" in keywords:
        return [Removal(migration, call.lineno, "rename_column", tuple(args[:2]))]
    if name in _ON_OP:
        if name == "drop_constraint" and len(args) < 2:  # op.drop_constraint(name, table=...)
            args.append(_text(keywords["table_name"], constants))
        target = tuple(args[: _ON_OP[name]])
        if name == "drop_constraint":
            target = (target[1], target[0])  # (table, constraint), as the others
        return [Removal(migration, call.lineno, name, target)]
    if name == "execute" and receiver.id == "op":
        sql = " ".join(_strings(call, constants))
        if _SQL.search(sql):
            return [Removal(migration, call.lineno, "execute", (sql,))]
    return []


def _reached(functions: dict[str, ast.FunctionDef], start: str) -> list[ast.FunctionDef]:
    """`start` and every module function it calls, directly or through others."""
    seen: list[str] = []
    pending = [start]
    while pending:
        name = pending.pop()
        if name in seen or name not in functions:
            continue
        seen.append(name)
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                pending.append(node.func.id)
    return [functions[name] for name in seen]


def _batch_tables(function: ast.FunctionDef, constants: dict[str, str]) -> dict[str, str]:
    """handle -> table, for each `with op.batch_alter_table(table) as handle`."""
    found: dict[str, str] = {}
    for node in ast.walk(function):
        if not isinstance(node, ast.With):
            continue
        for item in node.items:
            call = item.context_expr
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "batch_alter_table"
                and isinstance(item.optional_vars, ast.Name)
            ):
                found[item.optional_vars.id] = _text(call.args[0], constants)
    return found


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound to a string (or an f-string of such names)."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        stringy = isinstance(value, ast.Constant) and isinstance(value.value, str)
        if isinstance(target, ast.Name) and (stringy or isinstance(value, ast.JoinedStr)):
            found[target.id] = _text(value, found)
    return found


def _text(node: ast.expr, constants: dict[str, str]) -> str:
    """A string argument's value where it can be known; `{its source}` otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            inner = part.value if isinstance(part, ast.FormattedValue) else part
            parts.append(_text(inner, constants))
        return "".join(parts)
    return "{" + ast.unparse(node) + "}"


def _strings(call: ast.Call, constants: dict[str, str]) -> list[str]:
    """Every string in a call's arguments (SQL inside sa.text(...) too)."""
    return [
        _text(node, constants)
        for node in ast.walk(call)
        if isinstance(node, ast.Constant | ast.JoinedStr | ast.Name)
        and not (isinstance(node, ast.Name) and node.id not in constants)
    ]
