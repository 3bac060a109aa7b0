#!/usr/bin/env python3
"""Write the sabotage matrix's table (docs/sabotage.md) from a chaos run's JUnit XML.

Usage: ``python scripts/sabotage_table.py JUNIT.xml [JUNIT.xml ...] [--out OUT.md]``
(the matrix and its ``slow`` rows may come from two runs); without ``--out`` the
table goes to stdout.  The rows are the ``sabotage_row`` properties that
tests/chaos/test_sabotage_matrix.py records, so the table is what a real run saw.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaos.testing.sabotage_table import render, rows_from_junit

HEADER = """# Sabotage matrix

Each invariant broken from outside a live loomcycle cluster (database,
containers, network; never the suite's records) during the matrix's normal
workload, and found by its checker: `tests/chaos/test_sabotage_matrix.py`,
rows in `tests/chaos/sabotage_rows.py`.  Time to detect runs from the moment
the sabotage took effect to the checker's failing verdict; the checkers judge
after convergence, so it is sabotage -> end of convergence -> check (the
first span is its own column).  For the reap row (`kill-bounded_recovery`,
marked `slow`) the clock starts when the reap became late: the kill plus the
documented bound (stale + sweep + margin).  Written by
`scripts/sabotage_table.py` from the JUnit XML of the runs.

"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Write the sabotage matrix's table.")
    parser.add_argument("junit", nargs="+", type=Path, help="JUnit XML of the matrix's run(s)")
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    rows = []
    for path in args.junit:
        try:
            rows += rows_from_junit(path)
        except ValueError as exc:
            print(f"sabotage_table: {exc}", file=sys.stderr)
            return 1
    if not rows:
        print("sabotage_table: no sabotage_row property in the JUnit XML given", file=sys.stderr)
        return 1
    text = HEADER + render(rows) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
