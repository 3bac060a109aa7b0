"""Which failing verdicts are already written up, and the campaign's exit code.

A failing verdict is KNOWN when an open finding in
``docs/findings/`` names its invariant in its front matter (``invariant:``):
the campaign prints it as KNOWN and, unless ``--strict``, does not fail for
it.  Everything else that is not ok (a not-allowed vacuous verdict too) is
NEW and makes the exit code 1.  The match
is by invariant name only: a finding's own reproduction test is what pins its
exact signature, so a campaign that breaks an already-known invariant in a
new way is still printed (with its evidence) for a human to read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from chaos.findings import FINDINGS_DIR, Finding, FindingFormatError, load_findings

EXIT_OK = 0
EXIT_BREACH = 1
EXIT_INTERRUPTED = 130

_WORD = re.compile(r"[a-z_]+")
#: The distribution whose wheel ships the write-ups as data files (pyproject.toml).
DISTRIBUTION = "loomchaos"


@dataclass(frozen=True)
class Judged:
    """One verdict of one leg, with the findings that already explain it (if it failed)."""

    leg: str
    invariant: str
    ok: bool
    status: str
    summary: str
    known_by: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        if self.ok:
            return "ok"
        return "known" if self.known_by else "new"


def repository_root() -> Path:
    """The checkout this package runs from (where docs/findings lives)."""
    return Path(__file__).resolve().parents[2]


def shipped_findings_root(distribution: str = DISTRIBUTION) -> Path | None:
    """Where an installed wheel put the write-ups: the folder holding ``docs/findings``.

    Read from the distribution's own file list, so it holds for any install
    scheme (venv, ``--user``, ``--prefix``); None when not installed from a wheel
    that ships them.
    """
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        if entry.name.startswith("LC-") and entry.name.endswith(".md"):
            path = Path(str(entry.locate())).resolve()
            if path.parent.parts[-2:] == FINDINGS_DIR.parts and path.is_file():
                return path.parents[2]
    return None


def findings_root() -> Path | None:
    """The checkout's write-ups when running from one, else the installed copy's."""
    root = repository_root()
    if (root / FINDINGS_DIR).is_dir():
        return root
    return shipped_findings_root()


def open_findings(root: Path | None = None) -> dict[str, Finding]:
    """Open findings by id; none when the write-ups are absent or unreadable."""
    root = root or findings_root()
    if root is None:
        return {}
    try:
        found = load_findings(root)
    except (OSError, FindingFormatError):
        return {}
    return {fid: f for fid, f in found.items() if f.status == "open"}


def findings_by_invariant(findings: Mapping[str, Finding]) -> dict[str, tuple[str, ...]]:
    """invariant name -> ids of the open findings that name it."""
    out: dict[str, list[str]] = {}
    for fid, finding in sorted(findings.items()):
        for word in set(_WORD.findall(finding.invariant)):
            out.setdefault(word, []).append(fid)
    return {k: tuple(v) for k, v in out.items()}


def judge(
    leg: str, verdicts: Iterable[Mapping[str, object]], known: Mapping[str, tuple[str, ...]]
) -> list[Judged]:
    """Verdict dicts (``Verdict.to_dict()``) of one leg, each marked ok, known or new."""
    out = []
    for v in verdicts:
        invariant, ok = str(v["invariant"]), bool(v["ok"])
        out.append(
            Judged(
                leg=leg,
                invariant=invariant,
                ok=ok,
                status=str(v["status"]),
                summary=str(v["summary"]),
                # Only a real failure can be a finding's; a vacuous verdict (not enough
                # evidence) is the campaign's own shortfall, and always NEW.
                known_by=known.get(invariant, ()) if not ok and v["status"] == "fail" else (),
            )
        )
    return out


def exit_code(judged: Sequence[Judged], *, strict: bool, interrupted: bool = False) -> int:
    """130 when interrupted; 1 when anything NEW failed (or anything KNOWN, with strict)."""
    if interrupted:
        return EXIT_INTERRUPTED
    if any(j.kind == "new" for j in judged):
        return EXIT_BREACH
    if strict and any(j.kind == "known" for j in judged):
        return EXIT_BREACH
    return EXIT_OK


def known_and_new(judged: Sequence[Judged]) -> tuple[list[str], list[str]]:
    """(finding ids behind KNOWN failures, ``leg:invariant`` of NEW failures), each once."""
    known = sorted({fid for j in judged if j.kind == "known" for fid in j.known_by})
    new = [f"{j.leg}:{j.invariant}" for j in judged if j.kind == "new"]
    return known, list(dict.fromkeys(new))
