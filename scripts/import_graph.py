#!/usr/bin/env python3
"""Print the package-level import graph of chaos/ (the picture in docs/architecture.md).

Usage: ``python scripts/import_graph.py [--modules]``; read from the source,
``TYPE_CHECKING`` imports included.  tests/unit/test_architecture.py keeps it acyclic.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chaos.testing.imports import ImportGraph, cycles


def main(argv: list[str]) -> int:
    graph = ImportGraph(Path(__file__).resolve().parents[1])
    edges = graph.edges if "--modules" in argv else graph.packages()
    for node in sorted(edges):
        deps = ", ".join(sorted(d.removeprefix("chaos.") for d in edges[node])) or "-"
        print(f"{node.removeprefix('chaos.'):24} -> {deps}")
    found = cycles(edges)
    print(f"cycles: {found or 'none'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
