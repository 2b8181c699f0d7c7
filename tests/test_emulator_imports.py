"""The emulator's modules import each other without a circle (issue 13).

Every import counts: module level, under ``if TYPE_CHECKING:`` and inside functions, with
relative imports resolved. Handlers are typed against ``host.Host``; ``server`` is the one
module that imports the handler modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import coze_async.emulator

PACKAGE = "coze_async.emulator"
ROOT = Path(coze_async.emulator.__file__).parent
HANDLER_MODULES = {f"{PACKAGE}.{name}" for name in ("chat", "conversations", "files", "workflows")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def _resolve(module: str, is_package: bool, node: ast.ImportFrom, modules: set[str]) -> set[str]:
    """The modules ``from X import a, b`` depends on: ``X.a`` where that is a module, else X.

    Importing ``pkg.sub`` runs ``pkg/__init__`` first whatever the importer is, so that is
    not counted as a dependency on the package (or every submodule of a package that
    re-exports its submodules would be "in a circle" with it).
    """
    if node.level:
        base = module.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    found = set()
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        found.add(sub if sub in modules else target)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the emulator modules it imports (anywhere in its body)."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):  # walks into functions and `if TYPE_CHECKING:` blocks
            if isinstance(node, ast.Import):
                targets = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(name, is_package, node, modules)
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    # Module-level relative imports are resolved.
    assert f"{PACKAGE}.wire" in graph[f"{PACKAGE}.bots"]
    assert f"{PACKAGE}.host" in graph[f"{PACKAGE}.chat"]
    # The package's own __init__ is a node too: it re-exports the submodules.
    assert f"{PACKAGE}.server" in graph[PACKAGE]


def test_cycle_finder_reports_circles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_type_checking_and_local_imports_are_counted() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .server import Emulator\n"
        "def f():\n    from .wire import dumps\n"
    )
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            modules = {f"{PACKAGE}.server", f"{PACKAGE}.wire"}
            found.update(_resolve(f"{PACKAGE}.chat", False, node, modules))
    assert {f"{PACKAGE}.server", f"{PACKAGE}.wire"} <= found


def test_emulator_has_no_import_cycle() -> None:
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in the emulator: " + " -> ".join(cycle or [])


def test_only_server_imports_the_handler_modules() -> None:
    graph = import_graph()
    # The package __init__ and __main__ re-export public names; no other module may import
    # a handler module (they share helpers through request.py and type against host.Host).
    allowed = {f"{PACKAGE}.server", PACKAGE, f"{PACKAGE}.__main__"}
    for module, imports in graph.items():
        if module in allowed:
            continue
        assert not (imports & HANDLER_MODULES), (module, sorted(imports & HANDLER_MODULES))
