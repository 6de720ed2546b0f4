"""The package's import structure: no import circles, and data flows one way
(base → ops → networks → formats/data → training/metrics/explore → cli), as GUIDE.md lays it out.

Imports are read from the source with ``ast`` (nothing is imported), so a circle that Python happens to
tolerate at run time, or an import hidden inside a function, is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "stylegan"

# Rank of each subpackage; a module may import only from its own rank or below. Top-level modules
# (errors, atomic, devices, …) are the base everything may use; the root package is the public API.
RANKS = {"base": 0, "ops": 1, "networks": 2, "formats": 3, "data": 3,
         "training": 4, "metrics": 4, "explore": 4, "cli": 5, "web": 5}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source (``from pkg import sub`` counts as sub)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in known:
                    found.add(submodule)
                elif target in known:
                    found.add(target)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def group_of(module: str) -> str | None:
    """The subpackage a module belongs to ('base' for top-level modules); None for the root package."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    if parts[1] == "__main__":
        return "cli"  # ``python -m stylegan`` is the command line
    if len(parts) == 2 and (PACKAGE_ROOT / f"{parts[1]}.py").exists():
        return "base"
    return parts[1]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None. Iterative DFS with colours."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_every_subpackage_has_a_rank():
    groups = {group_of(m) for m in all_modules()} - {None}
    assert groups <= set(RANKS), f"give these subpackages a rank in RANKS: {sorted(groups - set(RANKS))}"


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for module, targets in import_graph().items():
        if group_of(module) is None:
            continue  # the root package is the public API: it re-exports from everywhere
        for target in targets:
            # Only the command line may use the public API (``import stylegan``) as a client would.
            target_rank = RANKS["cli"] if group_of(target) is None else RANKS[group_of(target)]
            if target_rank > RANKS[group_of(module)]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports against the layering:\n" + "\n".join(sorted(upward))


def test_no_import_circle_between_modules():
    graph = {m: t for m, t in import_graph().items() if group_of(m) is not None}
    # A package's __init__ re-exports its submodules; a submodule reaching back through the package
    # (``from stylegan.ops import x``) is what makes a circle, so both sides stay in the graph.
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_circle_between_peer_subpackages():
    graph: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        if group_of(module) in (None, "base"):
            continue
        graph.setdefault(group_of(module), set()).update(
            group_of(t) for t in targets if group_of(t) not in (None, "base", group_of(module)))
    cycle = find_cycle(graph)
    assert cycle is None, "subpackages import each other: " + " -> ".join(cycle)


@pytest.mark.parametrize("graph, has_cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"a2"}, "a2": set(), "b": {"b"}}, True),
])
def test_the_circle_finder_finds_circles(graph, has_cycle):
    assert (find_cycle(graph) is not None) == has_cycle
