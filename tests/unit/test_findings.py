"""Every xfail in the suite is a known finding with a write-up, and every write-up is sound.

A non-strict xfail can never fail, and an xfail without a write-up hides a
red scenario behind a reason nobody can check.  So:

* the only way to mark an xfail is :func:`chaos.findings.known_finding`
  (strict, expecting the invariant's exception);
* each id it names has ``docs/findings/<id>.md`` with front matter citing the
  target version's source lines and naming a reproduction test that exists.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chaos.findings import (
    FindingFormatError,
    finding_from,
    known_finding,
    load_findings,
    parse_front_matter,
)

ROOT = Path(__file__).resolve().parents[2]
TARGET_VERSION = "v1.59.0"


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _test_files() -> list[Path]:
    return sorted((ROOT / "tests").rglob("*.py"))


def _known_finding_uses() -> list[tuple[Path, str]]:
    out = []
    for path in _test_files():
        if path.name == Path(__file__).name:
            continue
        for call in _calls(ast.parse(path.read_text())):
            if _name(call.func).endswith("known_finding") and call.args:
                arg = call.args[0]
                assert isinstance(arg, ast.Constant), f"{path}: known_finding needs a literal id"
                out.append((path, str(arg.value)))
    return out


def test_no_bare_xfail_anywhere_in_the_tests() -> None:
    offenders = []
    for path in _test_files():
        if path.name == Path(__file__).name:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            # pytest.mark.xfail, with or without a call; pytest.xfail() inside a test too.
            if isinstance(node, ast.Attribute) and node.attr == "xfail":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"use chaos.findings.known_finding, not a bare xfail: {offenders}"


def test_every_known_finding_has_a_write_up_citing_the_targets_source() -> None:
    findings = load_findings(ROOT)
    for path, fid in _known_finding_uses():
        assert fid in findings, f"{path.relative_to(ROOT)}: {fid} has no docs/findings/{fid}.md"
        finding = findings[fid]
        assert finding.target_version == TARGET_VERSION, finding
        assert finding.source_lines, finding


def test_every_write_up_names_a_reproduction_test_that_exists_and_uses_its_id() -> None:
    uses = _known_finding_uses()
    for fid, finding in load_findings(ROOT).items():
        file_part, _, test_name = finding.reproduction.partition("::")
        test_file = ROOT / file_part
        assert test_file.is_file(), f"{fid}: reproduction file {file_part} does not exist"
        assert f"def {test_name}(" in test_file.read_text(), f"{fid}: no test {test_name}"
        if finding.status == "open":
            assert (test_file, fid) in uses, f"{fid}: {file_part} does not mark it known_finding"


def test_front_matter_parsing_rejects_what_a_checker_could_not_trust(tmp_path: Path) -> None:
    good = (
        "---\nid: LC-999\ninvariant: no_quota_leaks\ntarget_version: v1.59.0\n"
        "source_lines: internal/a.go:10-12, internal/b.go:7\n"
        "reproduction: tests/chaos/x.py::test_x\nstatus: open\n---\n# text\n"
    )
    path = tmp_path / "LC-999.md"
    path.write_text(good)
    finding = finding_from(path)
    assert finding.source_lines == ("internal/a.go:10-12", "internal/b.go:7")

    for broken in (
        good.replace("status: open", "status: maybe"),
        good.replace("source_lines: internal/a.go:10-12, internal/b.go:7", "source_lines: a.go"),
        good.replace("invariant: no_quota_leaks\n", ""),
        good.replace("id: LC-999", "id: LC-998"),
        good.replace("---\n# text", "# text"),
    ):
        path.write_text(broken)
        with pytest.raises(FindingFormatError):
            finding_from(path)
    assert parse_front_matter("---\na: b\n---\n") == {"a": "b"}


def test_known_finding_is_a_strict_xfail_expecting_the_exception() -> None:
    mark = known_finding("LC-001", raises=AssertionError)
    assert mark.kwargs["strict"] is True and mark.kwargs["raises"] is AssertionError
    assert mark.kwargs["reason"].startswith("finding LC-001")
    with pytest.raises(ValueError):
        known_finding("F1", raises=AssertionError)
