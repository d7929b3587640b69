"""The package's layering (docs/architecture.md): imports only go down, and no module imports itself in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import uv2

PACKAGE = Path(uv2.__file__).parent
# bottom to top; a module may import its own layer and the layers below (uv2.data and uv2.models share a layer but
# not each other)
LAYERS = [
    ("uv2", "uv2.io", "uv2.models.config"),
    ("uv2.experiment",),
    ("uv2.models", "uv2.data"),
    ("uv2.train",),
    ("uv2.ablation",),
    ("uv2.analysis",),
    ("uv2.env", "uv2.__main__"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module -> the uv2 modules it imports (anywhere in the file, function-level imports included)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("uv2"):
                for alias in node.names:  # `from uv2.models import config` imports a module, not a name
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("uv2")}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _layer(module: str) -> tuple[int, str]:
    """(layer index, the layer entry that holds the module) by the longest matching prefix."""
    best = (-1, "")
    for i, entries in enumerate(LAYERS):
        for entry in entries:
            if (module == entry or module.startswith(entry + ".")) and len(entry) > len(best[1]):
                best = (i, entry)
    assert best[0] >= 0, f"{module} is in no layer of tests/test_layout.py's LAYERS"
    return best


def test_imports_only_go_down():
    problems = []
    for module, imported in _imports().items():
        level, group = _layer(module)
        for target in imported:
            target_level, target_group = _layer(target)
            if target_level > level or (target_level == level and target_group != group and target_group != "uv2"):
                problems.append(f"{module} (layer {group}) imports {target} (layer {target_group})")
    assert not problems, "\n".join(sorted(problems))


def test_no_import_cycles():
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)
