"""The sabotage matrix's table (docs/sabotage.md), from the rows its chaos test recorded.

Each row of ``tests/chaos/test_sabotage_matrix.py`` records one JSON object as
the JUnit property ``sabotage_row`` (keys below); :func:`rows_from_junit`
reads them back and :func:`render` writes the Markdown table, so the table is
always the one a real run produced.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PROPERTY = "sabotage_row"
_KEYS = (
    "invariant",
    "sabotage",
    "detected",
    "time_to_detect_s",
    "struck_to_converged_s",
    "allowed_side_effects",
    "side_effects_failed",
    "control_matches",
)


def row_record(**fields: Any) -> str:
    """The property value for one row; every key of the table must be given."""
    missing = [k for k in _KEYS if k not in fields]
    if missing:
        raise ValueError(f"sabotage row misses {missing}")
    return json.dumps({k: fields[k] for k in _KEYS}, sort_keys=True)


def rows_from_junit(path: Path) -> list[dict[str, Any]]:
    """Every ``sabotage_row`` property in a JUnit XML file, in test order."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ValueError(f"cannot read JUnit XML {path}: {exc}") from exc
    rows = []
    for prop in root.iter("property"):
        if prop.get("name") == PROPERTY:
            rows.append(json.loads(prop.get("value") or "{}"))
    return rows


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} s"


def _names(values: Iterable[str]) -> str:
    names = sorted(values)
    return ", ".join(f"`{n}`" for n in names) if names else "none"


def render(rows: Iterable[Mapping[str, Any]]) -> str:
    """The Markdown table, plus the detection score."""
    rows = list(rows)
    lines = [
        "| invariant | outside sabotage | detected | time to detect | "
        "(sabotage -> end of convergence) | allowed side effects (failed here) | "
        "control matches baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        failed = set(r.get("side_effects_failed") or ())
        allowed = _names(r.get("allowed_side_effects") or ())
        lines.append(
            f"| `{r['invariant']}` | {r['sabotage']} | {'yes' if r['detected'] else '**no**'} | "
            f"{_seconds(r['time_to_detect_s'])} | {_seconds(r['struck_to_converged_s'])} | "
            f"{allowed} ({_names(failed)}) | {'yes' if r['control_matches'] else '**no**'} |"
        )
    detected = sum(1 for r in rows if r["detected"])
    score = f"{100 * detected / len(rows):.0f} %" if rows else "-"
    lines += ["", f"Detected: {detected} of {len(rows)} ({score})."]
    return "\n".join(lines)
