"""The shape of the package, kept by an AST walk over edge_agent/ (see DESIGN.md):

- a package imports another package's `values` module only, never its working modules;
- only the wiring (cli.py, daemon.py, pipeline.py) and the commands read the configuration;
- no two modules import each other, directly or round a longer cycle.

Every import counts, also those inside functions: a lazy import is still a dependency. Imports
under TYPE_CHECKING count for the package lines, not for cycles (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO

PACKAGE = REPO / "edge_agent"
WIRING = {"edge_agent.cli", "edge_agent.daemon", "edge_agent.pipeline"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _nodes(tree: ast.AST, *, with_typing: bool) -> list[ast.AST]:
    """Every node, without the bodies of `if TYPE_CHECKING:` unless `with_typing` is set."""
    found: list[ast.AST] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        if (
            not with_typing
            and isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def imports_of(path: Path, known: set[str], *, with_typing: bool = True) -> set[str]:
    """The edge_agent modules `path` imports (`from pkg import module` names the module)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in _nodes(tree, with_typing=with_typing):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module in known and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            named = submodules & known
            found.update(named)
            if len(named) < len(submodules):
                found.add(node.module)
    return found


def graph(*, with_typing: bool = True) -> dict[str, set[str]]:
    known = modules()
    return {
        name: imports_of(path, set(known), with_typing=with_typing) - {name}
        for name, path in known.items()
    }


def package_of(module: str) -> str | None:
    """'vision' for edge_agent.vision.detector; None for a top-level module."""
    parts = module.split(".")
    is_package = (PACKAGE / Path(*parts[1:2])).is_dir() if len(parts) > 1 else False
    return parts[1] if is_package else None


def is_wiring(module: str) -> bool:
    return module in WIRING or package_of(module) == "commands"


def is_values(module: str) -> bool:
    return module.endswith(".values")


def test_the_walk_sees_the_package():
    edges = graph()
    assert "edge_agent.daemon" in edges and "edge_agent.vision.values" in edges
    assert "edge_agent.config" in edges["edge_agent.daemon"]
    assert "edge_agent.audience.values" in edges["edge_agent.ads.scheduler"]


def test_packages_import_each_others_values_only():
    wrong = []
    for module, targets in graph().items():
        if is_wiring(module):
            continue
        for target in targets:
            other = package_of(target)
            if other is None or other == package_of(module):
                continue
            if not is_values(target):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_only_the_wiring_and_the_commands_read_the_config():
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if package_of(target) == "config" or target == "edge_agent.config"
        if not is_wiring(module) and package_of(module) != "config"
    ]
    assert wrong == []


def test_no_import_cycles():
    edges = graph(with_typing=False)
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize("module", sorted(modules()))
def test_modules_stay_small(module):
    # Past this a module does more than one thing; split it (DESIGN.md, "Where things live").
    lines = len(modules()[module].read_text(encoding="utf-8").splitlines())
    assert lines <= 600, f"{module} has {lines} lines"
