"""The import graph of a Python package, read from its source (``TYPE_CHECKING`` included).

Used by the architecture tests (no cycles, one-way layers) and by
``scripts/import_graph.py``, which prints the picture in docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path


class ImportGraph:
    """Modules of the package under ``root/<package>`` and the modules of it each imports."""

    def __init__(self, root: Path, package: str = "chaos") -> None:
        self.root = root
        self.modules = {self._name(p): p for p in (root / package).rglob("*.py")}
        self.edges = {m: self._imports(m) for m in self.modules}

    def _name(self, path: Path) -> str:
        parts = list(path.relative_to(self.root).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    def _resolve(self, name: str) -> str | None:
        """The longest module of ours that ``name`` is (or is inside)."""
        while name:
            if name in self.modules:
                return name
            name = name.rpartition(".")[0]
        return None

    def _imports(self, module: str) -> set[str]:
        path = self.modules[module]
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):  # TYPE_CHECKING blocks included
            if isinstance(node, ast.Import):
                found |= {r for a in node.names if (r := self._resolve(a.name))}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    anchor = parts[: len(parts) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    hit = self._resolve(full) if full in self.modules else self._resolve(base)
                    if hit:
                        found.add(hit)
        found.discard(module)
        return found

    def packages(self) -> dict[str, set[str]]:
        """The graph between packages (``chaos.<pkg>``; ``chaos.sut.<target>`` apart)."""
        graph: dict[str, set[str]] = {}
        for module, deps in self.edges.items():
            here = package_of(module)
            graph.setdefault(here, set()).update(
                package_of(d) for d in deps if package_of(d) != here
            )
        return graph


def package_of(module: str) -> str:
    """``chaos.<package>``; the target seam's own folders count one by one."""
    parts = module.split(".")
    if parts[1:2] == ["sut"] and len(parts) > 2:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out
