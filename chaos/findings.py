"""Known findings about the target, and the strict xfail that keeps each one visible.

A finding is a defect of the target that the suite reproduced and explained
from the target's source.  It lives in two places that must agree:

* a write-up ``docs/findings/<id>.md`` whose front matter the suite reads
  (``id``, ``invariant``, ``target_version``, ``source_lines``,
  ``reproduction``, ``status``);
* a reduced reproduction test marked with :func:`known_finding`, a
  ``xfail(strict=True)`` that expects the invariant's own exception.  When the
  target is fixed the test passes, strict turns that into a failure, and the
  finding is closed on purpose, never silently.

Front matter is the plain ``key: value`` block between two ``---`` lines;
``source_lines`` is a comma-separated list of ``path:line[-line]``.  An
optional ``scenarios`` key lists (comma-separated) the other tests where the
finding shows, so the release gate (:mod:`chaos.gate`) can tell it is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Where the write-ups live, relative to the repository root.
FINDINGS_DIR = Path("docs") / "findings"
REQUIRED_KEYS = ("id", "invariant", "target_version", "source_lines", "reproduction", "status")
STATUSES = ("open", "fixed", "wontfix")
_ID = re.compile(r"^LC-\d{3}$")
_SOURCE_LINE = re.compile(r"^[\w./-]+\.go:\d+(-\d+)?$")


@dataclass(frozen=True)
class Finding:
    """One write-up's front matter."""

    id: str
    invariant: str
    target_version: str
    source_lines: tuple[str, ...]
    reproduction: str
    status: str
    path: Path
    #: Tests besides ``reproduction`` where the finding shows (optional front matter).
    scenarios: tuple[str, ...] = ()


class FindingFormatError(ValueError):
    """A write-up whose front matter is missing or malformed."""


def parse_front_matter(text: str) -> dict[str, str]:
    """The ``key: value`` pairs between the first two ``---`` lines."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise FindingFormatError("no front matter: the file must start with a '---' line")
    out: dict[str, str] = {}
    for line in lines[1:]:
        if line.strip() == "---":
            return out
        key, sep, value = line.partition(":")
        if not sep:
            raise FindingFormatError(f"front matter line without 'key: value': {line!r}")
        out[key.strip()] = value.strip()
    raise FindingFormatError("front matter is not closed by a '---' line")


def finding_from(path: Path) -> Finding:
    """Parse and validate one write-up; :class:`FindingFormatError` says what is wrong."""
    raw = parse_front_matter(path.read_text())
    missing = [k for k in REQUIRED_KEYS if not raw.get(k)]
    if missing:
        raise FindingFormatError(f"{path}: front matter lacks {', '.join(missing)}")
    if not _ID.match(raw["id"]) or path.stem != raw["id"]:
        raise FindingFormatError(f"{path}: id {raw['id']!r} must be LC-NNN and name the file")
    sources = tuple(s.strip() for s in raw["source_lines"].split(",") if s.strip())
    bad = [s for s in sources if not _SOURCE_LINE.match(s)]
    if not sources or bad:
        raise FindingFormatError(f"{path}: source_lines must be path.go:line[-line], got {bad}")
    if raw["status"] not in STATUSES:
        raise FindingFormatError(f"{path}: status {raw['status']!r} is not one of {STATUSES}")
    return Finding(
        id=raw["id"],
        invariant=raw["invariant"],
        target_version=raw["target_version"],
        source_lines=sources,
        reproduction=raw["reproduction"],
        status=raw["status"],
        path=path,
        scenarios=tuple(s.strip() for s in raw.get("scenarios", "").split(",") if s.strip()),
    )


def load_findings(root: Path) -> dict[str, Finding]:
    """Every write-up under ``root/docs/findings`` by id (README.md is the index, not one)."""
    folder = root / FINDINGS_DIR
    out: dict[str, Finding] = {}
    for path in sorted(folder.glob("LC-*.md")):
        finding = finding_from(path)
        out[finding.id] = finding
    return out


def known_finding(
    finding_id: str, raises: type[BaseException] | tuple[type[BaseException], ...]
) -> Any:
    """Mark a reproduction test: strict xfail expecting the invariant's own exception.

    The mark's reason starts with ``finding <id>`` so the fast tier can tie
    every xfail in the suite to its write-up.
    """
    if not _ID.match(finding_id):
        raise ValueError(f"finding id {finding_id!r} must look like LC-NNN")
    return pytest.mark.xfail(
        strict=True,
        raises=raises,
        reason=f"finding {finding_id} (docs/findings/{finding_id}.md)",
    )


def finding_ids_in_reason(reason: str) -> Iterator[str]:
    yield from re.findall(r"\bfinding (LC-\d{3})\b", reason)
