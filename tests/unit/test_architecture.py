"""The architecture, checked: one-way imports, and only the target package knows the target.

* No import cycle between modules of ``chaos/``, counting the imports under
  ``if TYPE_CHECKING:`` too (a guard hides a loop from the interpreter, not
  from the reader), and none between its packages either.
* Only ``chaos/sut/loomcycle/`` holds loomcycle's names: its environment
  variables, its HTTP paths, its table names and its module path.  A second
  target is a sibling folder; nothing outside would need editing.

docs/architecture.md draws the graph these tests enforce.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.testing.imports import ImportGraph, cycles

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chaos"
TARGET_PACKAGE = PACKAGE / "sut" / "loomcycle"
GRAPH = ImportGraph(ROOT)
MODULE_GRAPH = GRAPH.edges


def test_cycles_finds_a_planted_loop() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules() -> None:
    assert cycles(MODULE_GRAPH) == []


def test_no_import_cycle_between_packages() -> None:
    assert cycles(GRAPH.packages()) == []


def test_the_checkers_import_neither_a_target_nor_infrastructure() -> None:
    """Checkers are pure functions of the history: no Docker, no HTTP, no target."""
    forbidden = ("chaos.sut", "chaos.cluster", "chaos.faults", "chaos.workload", "chaos.scenario")
    offenders = {
        m: sorted(d for d in deps if d.startswith(forbidden))
        for m, deps in MODULE_GRAPH.items()
        if m.startswith("chaos.checks")
    }
    assert {m: d for m, d in offenders.items() if d} == {}


#: Names only the loomcycle package may spell (an identifier such as ENV_LOOMCYCLE_BIN,
#: which merely names a setting, does not count: the variable's text lives in build.py).
TARGET_NAMES = {
    "its environment variables": re.compile(r"(?<![A-Za-z0-9_])LOOMCYCLE_[A-Z]"),
    "its HTTP API paths": re.compile(r"/v1/"),
    "its table names": re.compile(r"\b(user_quotas|runtime_state|process_samples)\b"),
    "its SQL on runs": re.compile(r"\b(FROM|INTO|UPDATE)\s+runs\b"),
    "its module path": re.compile(r"denn-?gubsky"),
}


def _outside_target() -> Iterator[Path]:
    for path in PACKAGE.rglob("*"):
        if path.is_file() and TARGET_PACKAGE not in path.parents and path.suffix in (".py", ""):
            yield path


@pytest.mark.parametrize("what", sorted(TARGET_NAMES))
def test_only_the_target_package_spells_loomcycles_names(what: str) -> None:
    pattern = TARGET_NAMES[what]
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _outside_target()
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == [], f"loomcycle's {what} outside chaos/sut/loomcycle/: {hits[:10]}"
