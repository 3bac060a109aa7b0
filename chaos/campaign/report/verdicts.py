"""The verdict table at the top of the report, each failure marked KNOWN or NEW.

``summary.json`` carries the campaign's own judgement: ``new`` lists the
``leg:invariant`` of every NEW failure and ``known`` the finding ids behind
the KNOWN ones.  A failing verdict is NEW when it is listed there, KNOWN
otherwise; a KNOWN one is labelled with the open findings that name its
invariant (the campaign's own rule, ``chaos.campaign.classify``) among the
summary's ``known`` ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaos.campaign.classify import findings_by_invariant, open_findings

NEW = "NEW"
KNOWN = "KNOWN"


@dataclass(frozen=True)
class VerdictRow:
    leg: str
    invariant: str
    status: str
    ok: bool
    summary: str
    mark: str


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def verdict_rows(summary: Mapping[str, Any]) -> list[VerdictRow]:
    """Every verdict of the summary, failures first, each failure marked."""
    new = set(_strings(summary.get("new")))
    known_ids = _strings(summary.get("known"))
    by_invariant = findings_by_invariant(open_findings()) if known_ids else {}
    rows = []
    for v in summary.get("verdicts") or []:
        if not isinstance(v, Mapping):
            continue
        leg, invariant = str(v.get("leg", "")), str(v.get("invariant", "?"))
        status = str(v.get("status", "?"))
        ok = bool(v.get("ok", status == "pass"))
        mark = ""
        if not ok:
            if f"{leg}:{invariant}" in new or invariant in new:
                mark = NEW
            else:
                ids = [i for i in by_invariant.get(invariant, ()) if i in known_ids]
                mark = f"{KNOWN} ({', '.join(ids)})" if ids else KNOWN
        rows.append(VerdictRow(leg, invariant, status, ok, str(v.get("summary", "")), mark))
    return [r for r in rows if not r.ok] + [r for r in rows if r.ok]
