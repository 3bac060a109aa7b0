"""Scratch folders for source copies and binaries, labelled and swept like containers.

A campaign works under ``<cache>/mutants/work/<session>/``.  The folder holds
``loomchaos-labels.json`` with the suite's labels (suite, session, pid), so
:func:`sweep_workspaces` removes exactly what a killed campaign left, the way
``loomchaos sweep`` removes orphaned containers.  Module-cache files are
read-only; a copy is made writable so the patch applies and the sweep can delete it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import SetupError
from chaos.labels import LABEL_PID, LABEL_SESSION, LABEL_SUITE, SUITE, docker_labels, pid_alive
from chaos.mutants.patches import Patch

LABELS_FILE = "loomchaos-labels.json"


class PatchFailed(Exception):
    """``patch -p1`` refused the diff; ``output`` is what it said."""

    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


def escape_module_path(module: str) -> str:
    """The module cache's case encoding: an upper-case letter becomes ``!`` + lower case."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in module)


def pinned_source(gopath: Path, module: str, version: str) -> Path:
    """Where ``go`` keeps ``module@version``; a one-line error if it is not there."""
    path = gopath / "pkg" / "mod" / f"{escape_module_path(module)}@{version}"
    if not (path / "go.mod").is_file():
        raise SetupError(
            f"no pinned source at {path}: run `loomchaos setup` (it downloads {module}@{version})"
        )
    return path


def workspaces_root(cache: Path) -> Path:
    return cache / "mutants" / "work"


def _make_writable(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, os.stat(dirpath).st_mode | stat.S_IWUSR | stat.S_IXUSR)
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)


def remove_tree(path: Path) -> None:
    if path.exists():
        _make_writable(path)
        shutil.rmtree(path)


@dataclass
class Workspace:
    """One campaign's scratch folder; remove it with :meth:`remove` (or let the sweep)."""

    root: Path
    session_id: str

    @classmethod
    def create(cls, cache: Path, session_id: str) -> Workspace:
        root = workspaces_root(cache) / session_id
        root.mkdir(parents=True, exist_ok=False)
        (root / LABELS_FILE).write_text(json.dumps(docker_labels(session_id, role="mutants")))
        return cls(root, session_id)

    def copy_source(self, source: Path, name: str) -> Path:
        """A writable copy of ``source`` at ``<root>/<name>/src`` (replacing any older one)."""
        dest = self.root / name / "src"
        remove_tree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, dest, symlinks=True)
        _make_writable(dest)
        return dest

    def binary_path(self, name: str) -> Path:
        return self.root / name / "bin"

    def remove(self) -> None:
        remove_tree(self.root)


def apply_patch(tree: Path, patch: Patch) -> None:
    """Apply ``patch`` to ``tree`` with ``patch -p1``; :class:`PatchFailed` if it does not fit.

    ``--forward`` refuses a patch that looks already applied, ``--batch`` never
    asks a question, and no reject or backup files are left behind.
    """
    tool = shutil.which("patch")
    if tool is None:
        raise SetupError("the `patch` program is not installed (apt-get install patch)")
    quiet = ("--batch", "--forward", "--no-backup-if-mismatch", "-r", "-")
    proc = subprocess.run(
        [tool, "-p1", *quiet, "-d", str(tree)],
        input=patch.text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise PatchFailed((proc.stdout + proc.stderr).strip())


def sweep_workspaces(cache: Path) -> list[Path]:
    """Remove the scratch folders of campaigns whose process is gone; return them."""
    removed: list[Path] = []
    root = workspaces_root(cache)
    if not root.is_dir():
        return removed
    for folder in sorted(root.iterdir()):
        try:
            labels = json.loads((folder / LABELS_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or being created right now: leave it
        if labels.get(LABEL_SUITE) != SUITE or labels.get(LABEL_SESSION) != folder.name:
            continue
        pid = str(labels.get(LABEL_PID, ""))
        if pid.isdigit() and not pid_alive(int(pid)):
            remove_tree(folder)
            removed.append(folder)
    return removed
