"""``render_report(out_dir)``: read a campaign folder, analyse it, write the report files.

Writes ``report.html`` (self-contained: charts embedded as base64 PNG),
``report.md`` (for terminals; it links the PNGs), ``charts/*.png`` and
``analysis.json``, and returns the HTML's path.  It never touches Docker or
the cluster: a saved campaign folder can be re-rendered anywhere.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.campaign.report.analysis import analyse
from chaos.campaign.report.figures import png_bytes
from chaos.campaign.report.load import load_campaign
from chaos.campaign.report.sections import Section, TextTable, build_sections
from chaos.campaign.report.templates import HTML, MARKDOWN, environment
from chaos.campaign.report.verdicts import verdict_rows

CHARTS_DIR = "charts"
HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
ANALYSIS_FILE = "analysis.json"


@dataclass(frozen=True)
class RenderedSection:
    """A section as the templates see it: the chart already a base64 PNG."""

    name: str
    title: str
    png: str
    tables: tuple[TextTable, ...]
    methods: tuple[str, ...]
    notes: tuple[str, ...]


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def save_chart(section: Section, charts: Path) -> RenderedSection:
    png = b""
    if section.figure is not None:
        png = png_bytes(section.figure)
        (charts / f"{section.name}.png").write_bytes(png)
    return RenderedSection(
        section.name,
        section.title,
        base64.b64encode(png).decode("ascii"),
        section.tables,
        section.methods,
        section.notes,
    )


def _wall(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    minutes, secs = divmod(float(seconds), 60.0)
    return f"{int(minutes)} min {secs:.0f} s" if minutes else f"{secs:.1f} s"


def target_mode(summary: Mapping[str, Any]) -> str:
    """How the target ran: cluster mode (every campaign folder before the option existed)
    or the single binary of the baseline."""
    options = summary.get("options")
    if isinstance(options, Mapping) and options.get("cluster_mode") is False:
        return "single binary (no cluster mode)"
    return "cluster mode"


def render_report(out_dir: Path) -> Path:
    """Render ``out_dir``'s report; returns the path of ``report.html``."""
    data = load_campaign(out_dir)
    analysis = analyse(data)
    charts = out_dir / CHARTS_DIR
    charts.mkdir(exist_ok=True)
    sections = [save_chart(s, charts) for s in build_sections(data, analysis)]
    summary = data.summary
    context = {
        "title": f"Campaign {summary.get('campaign', '?')}",
        "summary": {
            k: summary.get(k, "-") for k in ("build", "seed", "started_at_utc", "exit_code")
        },
        "wall": _wall(summary.get("wall_s")),
        "mode": target_mode(summary),
        "verdicts": verdict_rows(summary),
        "known": ", ".join(str(k) for k in summary.get("known") or []),
        "new": ", ".join(str(k) for k in summary.get("new") or []),
        "sections": sections,
    }
    report = {"campaign": summary.get("campaign"), "arms": data.arms, **analysis.to_dict()}
    (out_dir / ANALYSIS_FILE).write_text(
        json.dumps(finite(report), indent=2, allow_nan=False) + "\n"
    )
    (out_dir / MARKDOWN_FILE).write_text(
        environment(html=False).from_string(MARKDOWN).render(context)
    )
    html = out_dir / HTML_FILE
    html.write_text(environment(html=True).from_string(HTML).render(context))
    return html
