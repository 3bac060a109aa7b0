"""Reading a campaign's output folder: the CSV and JSON files of the data contract.

``waves.csv`` and ``summary.json`` must exist; ``samples.csv``, ``cancels.csv``
and ``reap.csv`` may be absent or empty (their charts and analyses are then
skipped).  Columns are read by name, so a writer may add columns; a missing
column, a non-numeric number or malformed JSON is a :class:`CampaignDataError`
whose message is one line naming the file, row and column.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chaos.campaign.data import CANCELS_COLUMNS, REAP_COLUMNS, SAMPLES_COLUMNS, WAVES_COLUMNS

Floats = NDArray[np.float64]

WAVES_FILE = "waves.csv"
SAMPLES_FILE = "samples.csv"
CANCELS_FILE = "cancels.csv"
REAP_FILE = "reap.csv"
SUMMARY_FILE = "summary.json"

WAVE_TEXT = ("campaign", "build", "phase")
WAVE_NUMBERS = tuple(c for c in WAVES_COLUMNS if c not in WAVE_TEXT)
SAMPLE_TEXT = ("campaign", "build", "replica")
SAMPLE_NUMBERS = tuple(c for c in SAMPLES_COLUMNS if c not in SAMPLE_TEXT)
CANCEL_TEXT = ("replica", "outcome")
CANCEL_NUMBERS = tuple(c for c in CANCELS_COLUMNS if c not in CANCEL_TEXT)
REAP_TEXT = ("event", "run_id", "replica")
REAP_NUMBERS = tuple(c for c in REAP_COLUMNS if c not in REAP_TEXT)
#: The column the report adds to waves and samples: what is drawn side by side (``arms``).
ARM = "arm"


class CampaignDataError(ValueError):
    """A campaign file that does not follow the data contract; the message is one line."""


@dataclass(frozen=True)
class Table:
    """Columns of one CSV file: text columns as strings, numeric ones as floats (NaN = empty)."""

    text: Mapping[str, NDArray[np.str_]]
    numbers: Mapping[str, Floats]
    rows: int

    def __len__(self) -> int:
        return self.rows

    def num(self, column: str) -> Floats:
        return self.numbers[column]

    def txt(self, column: str) -> NDArray[np.str_]:
        return self.text[column]

    def where(self, mask: NDArray[np.bool_]) -> Table:
        """The rows where ``mask`` is true, in their order."""
        return self.take(np.flatnonzero(mask))

    def take(self, index: NDArray[np.intp]) -> Table:
        """The rows at ``index``, in that order."""
        return Table(
            {k: v[index] for k, v in self.text.items()},
            {k: v[index] for k, v in self.numbers.items()},
            len(index),
        )

    def matching(self, **text_values: str) -> Table:
        """The rows whose text columns equal the given values."""
        mask = np.ones(self.rows, dtype=bool)
        for column, value in text_values.items():
            mask &= self.text[column] == value
        return self.where(mask)

    def with_text(self, column: str, values: NDArray[np.str_]) -> Table:
        """This table with one more (or a replaced) text column."""
        return Table({**self.text, column: values}, self.numbers, self.rows)

    def distinct(self, column: str) -> list[str]:
        """The values of a text column in order of first appearance."""
        return list(dict.fromkeys(self.text[column].tolist()))


def empty_table(text: Sequence[str], numbers: Sequence[str]) -> Table:
    return Table(
        {c: np.array([], dtype=str) for c in text},
        {c: np.array([], dtype=np.float64) for c in numbers},
        0,
    )


@dataclass(frozen=True)
class CampaignData:
    """Everything a report is made from."""

    out_dir: Path
    summary: Mapping[str, Any]
    waves: Table
    samples: Table
    cancels: Table
    reap: Table
    arms: list[str] = field(default_factory=list)

    @property
    def is_compare(self) -> bool:
        return len(self.arms) > 1


def _number(text: str, where: str) -> float:
    if text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise CampaignDataError(f"{where}: {text!r} is not a number") from None


def read_table(path: Path, text: Sequence[str], numbers: Sequence[str], *, required: bool) -> Table:
    """Read ``path``; an absent or empty optional file gives an empty table."""
    if not path.is_file():
        if required:
            raise CampaignDataError(f"{path}: missing (every campaign writes it)")
        return empty_table(text, numbers)
    with path.open(newline="") as handle:
        lines = list(csv.reader(handle))
    header = [h.strip() for h in lines[0]] if lines else []
    if not header:
        if required:
            raise CampaignDataError(f"{path}: empty, expected a header row")
        return empty_table(text, numbers)
    missing = [c for c in (*text, *numbers) if c not in header]
    if missing:
        raise CampaignDataError(f"{path}: missing columns {', '.join(missing)}")
    index = {c: header.index(c) for c in (*text, *numbers)}
    text_cols: dict[str, list[str]] = {c: [] for c in text}
    num_cols: dict[str, list[float]] = {c: [] for c in numbers}
    for line, row in enumerate(lines[1:], start=2):
        if not row:
            continue
        if len(row) < len(header):
            raise CampaignDataError(
                f"{path}:{line}: {len(row)} fields, the header has {len(header)}"
            )
        for c in text:
            text_cols[c].append(row[index[c]].strip())
        for c in numbers:
            num_cols[c].append(_number(row[index[c]], f"{path}:{line} column {c}"))
    rows = len(text_cols[text[0]])
    return Table(
        {c: np.array(v, dtype=str) for c, v in text_cols.items()},
        {c: np.array(v, dtype=np.float64) for c, v in num_cols.items()},
        rows,
    )


def read_summary(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CampaignDataError(f"{path}: missing (every campaign writes it)")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CampaignDataError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    if not isinstance(raw, dict):
        raise CampaignDataError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    return raw
