"""The import graph, read from the code: the folders are layers, and nothing imports a layer above it.

entry    cli, lambda_handler (entry points), command
fleet    several harvests in one process (a layer of its own above the one-harvest code)
top      runner, pipeline, check, verify (one harvest), reference (the reference tables of a run)
middle   source/, tmdb/, lake/, ops/  (the stages, and what operators see)
bottom   config, errors, items, aws
"""

from __future__ import annotations

import ast
from pathlib import Path

HARVESTER = Path(__file__).resolve().parents[1] / "harvester"
STANDIN = HARVESTER.parent / "tmdb_standin"
ENTRY_POINTS = {"harvester.cli", "harvester.lambda_handler"}  # __main__ is the CLI itself
ENTRY = ENTRY_POINTS | {"harvester.__main__", "harvester.command"}
SPANNING = {"harvester.fleet"}  # what spans harvests sits above what does one
TOP = (
    ENTRY
    | SPANNING
    | {
        "harvester.runner",
        "harvester.pipeline",
        "harvester.check",
        "harvester.verify",
        "harvester.reference",  # TMDB's reference tables, beside a run's harvests
    }
)
BOTTOM = {
    "harvester",
    "harvester.config",
    "harvester.errors",
    "harvester.items",
    "harvester.aws",
    "harvester.secret",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(HARVESTER.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every harvester module `path` imports, at any depth of the file (lazy imports included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level > 1:
                base = base[: len(base) - node.level + 1]
            module = ".".join(base) if node.level else ""
            if node.module:
                module = f"{module}.{node.module}" if module else node.module
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # `from . import config`
    return {m for m in found if m.startswith("harvester")}


def layer(module: str) -> int:
    if module in ENTRY:
        return 4
    if module in SPANNING:
        return 3
    if module in TOP:
        return 2
    if module in BOTTOM:
        return 0
    return 1


MODULES = {module_name(p): p for p in HARVESTER.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    return {m: {i for i in imports(p) if i in MODULES} for m, p in MODULES.items()}


def test_the_layout_shows_the_pipeline() -> None:
    g = graph()
    assert {m.split(".")[1] for m in g if m.count(".") >= 2} >= {"source", "tmdb", "lake", "ops"}
    modules_at_the_top = {m for m, p in MODULES.items() if m.count(".") == 1 and p.name != "__init__.py"}
    assert modules_at_the_top == TOP | BOTTOM - {"harvester"}


def test_nothing_imports_a_layer_above_it() -> None:
    upward = {(m, i) for m, deps in graph().items() for i in deps if layer(i) > layer(m)}
    assert upward == set()


def test_no_entry_point_imports_another() -> None:
    g = graph()
    crossing = {(m, i) for m in ENTRY_POINTS for i in g.get(m, set()) if i in ENTRY_POINTS and i != m}
    assert crossing == set()
    standin_uses = {i for p in STANDIN.rglob("*.py") for i in imports(p)}
    assert not standin_uses & ENTRY_POINTS, standin_uses & ENTRY_POINTS


def test_the_middle_folders_do_not_import_in_a_circle() -> None:
    folders: dict[str, set[str]] = {}
    for m, deps in graph().items():
        if layer(m) == 1:
            folder = m.split(".")[1]
            folders.setdefault(folder, set()).update(
                d.split(".")[1] for d in deps if layer(d) == 1 and d.split(".")[1] != folder
            )

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in folders.get(start, ())
        )

    assert [f for f in folders if reaches(f, f, set())] == []
