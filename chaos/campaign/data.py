"""The campaign's output folder: its CSV files (columns fixed by the data contract) and summary.

Rows are appended and flushed one at a time, so an interrupted campaign
leaves every row it had; ``summary.json`` is written last (and also when
interrupted).  Missing values are written as empty cells.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

WAVES_COLUMNS = (
    "campaign",
    "build",
    "replicas",
    "phase",
    "wave",
    "scale",
    "started_at",
    "wall_s",
    "runs_per_s",
    "circuits",
    "completed",
    "failed",
    "silent_regressions",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "cancels",
    "cancel_p50_ms",
    "cancel_p99_ms",
)
SAMPLES_COLUMNS = (
    "campaign",
    "build",
    "t",
    "replica",
    "cpu_pct",
    "rss_mb",
    "goroutines",
    "active_runs",
    "queued_runs",
)
CANCELS_COLUMNS = ("t", "replica", "ack_ms", "outcome")
REAP_COLUMNS = ("t", "event", "run_id", "replica")

FILES: Mapping[str, tuple[str, ...]] = {
    "waves.csv": WAVES_COLUMNS,
    "samples.csv": SAMPLES_COLUMNS,
    "cancels.csv": CANCELS_COLUMNS,
    "reap.csv": REAP_COLUMNS,
}


def cell(value: Any) -> str:
    """A CSV cell: empty for None or NaN, floats rounded to 3 decimals, the rest as str."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3f}".rstrip("0").rstrip(".") or "0"
    return str(value)


class CsvAppender:
    """One CSV file with a fixed header; ``add`` checks the row's keys against it."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = tuple(columns)
        self.rows = 0
        self._fp: TextIO = path.open("w", newline="")
        self._writer = csv.writer(self._fp)
        self._writer.writerow(self.columns)
        self._fp.flush()

    def add(self, row: Mapping[str, Any]) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"{self.path.name}: unknown columns {sorted(unknown)}")
        self._writer.writerow([cell(row.get(c)) for c in self.columns])
        self._fp.flush()
        self.rows += 1

    def close(self) -> None:
        self._fp.close()


class OutputFolder:
    """The four CSV files of one campaign, opened at once; use as a context manager."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.files = {name: CsvAppender(root / name, cols) for name, cols in FILES.items()}

    @property
    def waves(self) -> CsvAppender:
        return self.files["waves.csv"]

    @property
    def samples(self) -> CsvAppender:
        return self.files["samples.csv"]

    @property
    def cancels(self) -> CsvAppender:
        return self.files["cancels.csv"]

    @property
    def reap(self) -> CsvAppender:
        return self.files["reap.csv"]

    def close(self) -> None:
        for appender in self.files.values():
            appender.close()

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_summary(root: Path, summary: Mapping[str, Any]) -> Path:
    """``summary.json``, written to a temporary name first so a reader never sees half of it."""
    path = root / "summary.json"
    tmp = root / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path
