"""The layering the code promises (ARCHITECTURE.md): no import cycle in flows/, and no UI in the library."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> tuple[str, str]:
    """(module, package it resolves relative imports against) of a file under the repository."""
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[-1] == "__init__":
        name = ".".join(parts[:-1])
        return name, name
    name = ".".join(parts)
    return name, name.rsplit(".", 1)[0]


def _import_graph(folder: str) -> dict[str, set[str]]:
    """module -> the modules of ``folder`` it imports, at any depth of its code (functions included)."""
    files = {_module_name(p): p for p in (REPO / folder).rglob("*.py")}
    modules = {name for name, _ in files}
    graph: dict[str, set[str]] = {}
    for (name, package), path in files.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, node.module] if node.module else base)
                for alias in node.names:
                    edges.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                return [*path[path.index(imported) :], imported]
            if imported not in state and (found := visit(imported, [*path, imported])):
                return found
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module, [module])):
            return found
    return None


def test_no_import_cycle_in_the_library() -> None:
    cycle = _cycle(_import_graph("flows"))
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_library_never_imports_the_ui() -> None:
    for path in (REPO / "flows").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("streamlit", "dashboard", "pages") for n in names), path


#: The library's lower layers (ARCHITECTURE.md): layers, priors, the registry, data and infrastructure.
LOWER_LAYERS = (
    "bijection",
    "couplings",
    "models",
    "nn",
    "priors",
    "registry",
    "image",
    "data",
    "infra",
    "limits",
)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for imported in graph[todo.pop()]:
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


def test_imports_only_point_down_in_the_library() -> None:
    """The layers, priors, registry and data never reach training or the command line, even indirectly."""
    graph = _import_graph("flows")
    lower = [m for m in graph if m.split(".")[1:2] and m.split(".")[1] in LOWER_LAYERS]
    assert len(lower) > 20, lower  # the walk found the modules it is about
    for module in lower:
        upward = sorted(m for m in _reachable(graph, module) if m.startswith(("flows.training", "flows.cli")))
        assert not upward, f"{module} imports {upward}"


def test_the_reachability_walk_follows_chains() -> None:
    assert _reachable({"a": {"b"}, "b": {"c"}, "c": set()}, "a") == {"b", "c"}


#: "No file in flows/, dashboard/, pages/ or main.py over about 450 lines" (issue 11): split before this.
MAX_LINES = 460


def test_no_module_grows_past_the_size_limit() -> None:
    files = [REPO / "main.py", REPO / "streamlit_app.py"]
    for folder in ("flows", "dashboard", "pages"):
        files += sorted((REPO / folder).rglob("*.py"))
    sizes = {str(path.relative_to(REPO)): len(path.read_text().splitlines()) for path in files}
    assert len(sizes) > 50, "the walk found too few modules"
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not too_long, f"split these modules (over {MAX_LINES} lines): {too_long}"
