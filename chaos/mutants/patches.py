"""Patch discovery: every ``*.patch`` in a folder, with its one-line description.

A patch is an ordinary unified diff.  Text before the first ``--- `` line is
commentary that ``patch`` and ``git apply`` skip; loomchaos reads two header
lines from it::

    Description: the quota release keeps the last slot (one line: the bug it imitates)
    Area: quota

``Description`` is required (a planted defect nobody can name teaches
nothing); ``Area`` is optional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import SetupError

_HEADER = re.compile(r"^(Description|Area):\s*(.*?)\s*$")
_NEW_FILE = re.compile(r"^\+\+\+ b/(\S+)")
#: A name that is safe in a folder, an image tag and a JUnit file name.
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Patch:
    name: str
    path: Path
    description: str
    area: str
    files: tuple[str, ...]
    text: str

    @property
    def changed_lines(self) -> int:
        """Lines the diff removes or adds (headers excluded)."""
        return sum(
            1
            for line in self.text.splitlines()
            if line[:1] in ("+", "-") and not line.startswith(("+++ ", "--- "))
        )


def parse_patch(path: Path) -> Patch:
    """Read one patch; a missing description or an empty diff is a one-line error."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"cannot read patch {path}: {exc}") from None
    name = path.name.removesuffix(".patch")
    if not _NAME_OK.match(name):
        raise SetupError(f"patch name {name!r} must match {_NAME_OK.pattern}")
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("--- "):
            break
        if m := _HEADER.match(line):
            headers[m.group(1)] = m.group(2)
    files = tuple(m.group(1) for line in text.splitlines() if (m := _NEW_FILE.match(line)))
    if not files:
        raise SetupError(f"{path}: no '+++ b/<file>' line: not a unified diff made with -p1 paths")
    description = headers.get("Description", "")
    if not description:
        raise SetupError(f"{path}: first lines need 'Description: <the bug it imitates>'")
    return Patch(name, path, description, headers.get("Area", ""), files, text)


def discover(folder: Path) -> list[Patch]:
    """Every ``*.patch`` in ``folder``, sorted by name."""
    if not folder.is_dir():
        raise SetupError(f"patch folder {folder} does not exist")
    paths = sorted(folder.glob("*.patch"))
    if not paths:
        raise SetupError(f"no *.patch files in {folder}")
    return [parse_patch(p) for p in paths]
