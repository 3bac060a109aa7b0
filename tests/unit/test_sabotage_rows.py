"""The sabotage matrix covers every invariant, and its rows are well formed (no Docker).

The rows live beside their chaos test (tests/chaos/sabotage_rows.py); loaded
here by path so the fast tier guards the score's denominator: a new checker
without an outside sabotage fails here, not silently in the matrix.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from chaos.checks import ALL_CHECKS

ROWS_FILE = Path(__file__).resolve().parents[1] / "chaos" / "sabotage_rows.py"


def _rows_module() -> ModuleType:
    name = "sabotage_rows_under_unit_test"
    spec = importlib.util.spec_from_file_location(name, ROWS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_every_invariant_has_an_outside_sabotage() -> None:
    rows = _rows_module().all_rows()
    assert {r.invariant for r in rows} == set(ALL_CHECKS)


def test_rows_are_well_formed() -> None:
    rows = _rows_module().all_rows()
    keys = [(r.scenario, r.key) for r in rows]
    assert len(keys) == len(set(keys)), keys
    for row in rows:
        assert row.key != "control" and row.what and row.scenario in ("matrix", "kill")
        assert row.invariant not in row.side_effects, row
        assert set(row.side_effects) <= set(ALL_CHECKS), row.side_effects
