"""What a campaign prints and keeps: a Markdown table, the score, a JSON document."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.mutants.classify import Fate


@dataclass(frozen=True)
class MutantResult:
    name: str
    description: str
    area: str
    changed_lines: int
    fate: Fate
    reasons: tuple[str, ...] = ()
    #: Seconds per phase (copy+patch+build, waiting for the Docker lock, probe,
    #: scenarios) and in all; ``wall_s - lock_wait_s`` is the mutant's own cost.
    build_s: float = 0.0
    lock_wait_s: float = 0.0
    probe_s: float = 0.0
    scenarios_s: float = 0.0
    wall_s: float = 0.0
    start: str = ""  # healthy, exited, never_healthy, or "" when not probed
    replay: str = ""
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fate"] = self.fate.value
        data["reasons"] = list(self.reasons)
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> MutantResult:
        fields = dict(data)
        fields["fate"] = Fate(fields["fate"])
        fields["reasons"] = tuple(fields.get("reasons", ()))
        return MutantResult(**fields)


@dataclass(frozen=True)
class ControlSummary:
    seconds: float
    returncode: int
    #: test id -> outcome, and the (test, invariant) pairs that failed.
    outcomes: dict[str, str] = field(default_factory=dict)
    failing: list[str] = field(default_factory=list)


def score(results: Sequence[MutantResult]) -> float | None:
    """killed / (killed + survived); None when nothing was judged."""
    killed = sum(r.fate is Fate.KILLED for r in results)
    survived = sum(r.fate is Fate.SURVIVED for r in results)
    return killed / (killed + survived) if killed + survived else None


def counts(results: Sequence[MutantResult]) -> dict[str, int]:
    return {f.value: sum(r.fate is f for r in results) for f in Fate}


def _cell(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def markdown_table(results: Sequence[MutantResult]) -> str:
    lines = [
        "| mutant | area | fate | build s | scenarios s | wall s (lock wait) | first reason |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        why = r.reasons[0] if r.reasons else ""
        more = f" (+{len(r.reasons) - 1} more)" if len(r.reasons) > 1 else ""
        lines.append(
            f"| `{r.name}` | {r.area} | **{r.fate.value}** | {r.build_s:.0f} | "
            f"{r.scenarios_s:.0f} | {r.wall_s:.0f} ({r.lock_wait_s:.0f}) | {_cell(why)}{more} |"
        )
    return "\n".join(lines)


def score_line(results: Sequence[MutantResult]) -> str:
    c = counts(results)
    s = score(results)
    shown = "n/a" if s is None else f"{s:.2f}"
    return (
        f"score {shown} = killed {c['killed']} / (killed {c['killed']} + survived "
        f"{c['survived']}); broken {c['broken']}"
    )


def markdown_report(
    results: Sequence[MutantResult], controls: Sequence[ControlSummary], header: str
) -> str:
    parts = [header, "", markdown_table(results), "", score_line(results), ""]
    for i, c in enumerate(controls, 1):
        failing = ", ".join(c.failing) or "none"
        parts.append(f"control {i}: {c.seconds:.0f} s, exit {c.returncode}, failing: {failing}")
    parts += ["", "## Descriptions and reasons", ""]
    for r in results:
        parts.append(f"- `{r.name}` ({r.changed_lines} changed lines): {r.description}")
        for reason in r.reasons:
            parts.append(f"  - {_cell(reason, 400)}")
    return "\n".join(parts) + "\n"


def json_report(
    results: Sequence[MutantResult], controls: Sequence[ControlSummary], meta: dict[str, Any]
) -> str:
    doc = {
        **meta,
        "score": score(results),
        "counts": counts(results),
        "controls": [asdict(c) for c in controls],
        "mutants": [r.to_dict() for r in results],
    }
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"
