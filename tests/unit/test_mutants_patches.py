"""Patch discovery and the source-copy plumbing, with the real ``patch`` tool on a tiny tree."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chaos.errors import SetupError
from chaos.labels import LABEL_PID
from chaos.mutants.patches import discover, parse_patch
from chaos.mutants.workspace import (
    LABELS_FILE,
    PatchFailed,
    Workspace,
    apply_patch,
    escape_module_path,
    pinned_source,
    sweep_workspaces,
)

DIFF = "\n".join(
    [
        "--- a/pkg/quota.go",
        "+++ b/pkg/quota.go",
        "@@ -1,3 +1,3 @@",
        " package pkg",
        " ",  # the blank context line
        '-const guard = "active_count > 0"',
        '+const guard = "active_count > 1"',
        "",
    ]
)


def _patch_file(
    folder: Path, name: str, header: str = "Description: keeps the last slot\n"
) -> Path:
    path = folder / f"{name}.patch"
    path.write_text(f"{header}Area: quota\n\n{DIFF}")
    return path


def _source(root: Path) -> Path:
    src = root / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "go.mod").write_text("module example.com/x\n")
    (src / "pkg" / "quota.go").write_text('package pkg\n\nconst guard = "active_count > 0"\n')
    for path in (src / "pkg" / "quota.go", src / "pkg", src):  # read-only, like the module cache
        path.chmod(0o555 if path.is_dir() else 0o444)
    return src


def test_a_patch_names_its_bug_area_files_and_size(tmp_path: Path) -> None:
    patch = parse_patch(_patch_file(tmp_path, "01-quota"))
    assert (patch.name, patch.description, patch.area) == (
        "01-quota",
        "keeps the last slot",
        "quota",
    )
    assert patch.files == ("pkg/quota.go",)
    assert patch.changed_lines == 2


def test_discovery_is_sorted_and_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    _patch_file(tmp_path, "02-b")
    _patch_file(tmp_path, "01-a")
    assert [p.name for p in discover(tmp_path)] == ["01-a", "02-b"]
    with pytest.raises(SetupError, match="Description"):
        parse_patch(_patch_file(tmp_path, "03-c", header=""))
    (tmp_path / "04-d.patch").write_text("Description: x\nnot a diff\n")
    with pytest.raises(SetupError, match="not a unified diff"):
        parse_patch(tmp_path / "04-d.patch")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SetupError, match=r"no \*\.patch"):
        discover(tmp_path / "empty")
    with pytest.raises(SetupError, match="does not exist"):
        discover(tmp_path / "nowhere")


def test_copy_apply_and_remove_a_read_only_source(tmp_path: Path) -> None:
    src = _source(tmp_path)
    ws = Workspace.create(tmp_path / "cache", "s1")
    tree = ws.copy_source(src, "01-quota")
    apply_patch(tree, parse_patch(_patch_file(tmp_path, "01-quota")))
    assert "active_count > 1" in (tree / "pkg" / "quota.go").read_text()
    assert "active_count > 0" in (src / "pkg" / "quota.go").read_text()  # the pin is untouched
    with pytest.raises(PatchFailed):  # applied twice: --forward refuses, leaves no reject
        apply_patch(tree, parse_patch(_patch_file(tmp_path, "01-quota")))
    assert not list(tree.rglob("*.rej")) and not list(tree.rglob("*.orig"))
    ws.remove()
    assert not ws.root.exists()


def test_the_pinned_source_path_uses_the_module_cache_case_encoding(tmp_path: Path) -> None:
    assert escape_module_path("github.com/Shopify/x") == "github.com/!shopify/x"
    with pytest.raises(SetupError, match="no pinned source"):
        pinned_source(tmp_path, "example.com/x", "v1.0.0")
    (tmp_path / "pkg" / "mod" / "example.com" / "x@v1.0.0").mkdir(parents=True)
    (tmp_path / "pkg" / "mod" / "example.com" / "x@v1.0.0" / "go.mod").write_text("module x\n")
    assert pinned_source(tmp_path, "example.com/x", "v1.0.0").name == "x@v1.0.0"


def test_sweep_removes_only_folders_of_dead_campaigns(tmp_path: Path) -> None:
    live = Workspace.create(tmp_path, "live")
    dead = Workspace.create(tmp_path, "dead")
    labels = json.loads((dead.root / LABELS_FILE).read_text())
    labels[LABEL_PID] = "999999999"  # no such process
    (dead.root / LABELS_FILE).write_text(json.dumps(labels))
    _source(dead.root)
    stranger = live.root.parent / "stranger"
    stranger.mkdir()
    assert sweep_workspaces(tmp_path) == [dead.root]
    assert live.root.exists() and stranger.exists() and not dead.root.exists()
    assert int(json.loads((live.root / LABELS_FILE).read_text())[LABEL_PID]) == os.getpid()
