"""Exit codes: new breaches fail, written-up findings are KNOWN unless --strict (no Docker)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chaos.campaign.classify import (
    EXIT_BREACH,
    EXIT_INTERRUPTED,
    EXIT_OK,
    exit_code,
    findings_by_invariant,
    findings_root,
    judge,
    known_and_new,
    open_findings,
    repository_root,
    shipped_findings_root,
)
from chaos.campaign.run import point_latest
from chaos.verdict import Verdict

KNOWN = {"no_quota_leaks": ("LC-003",), "no_zombies": ("LC-002",)}


def verdicts(*items: Verdict) -> list[dict[str, object]]:
    return [v.to_dict() for v in items]


def test_a_known_finding_does_not_fail_unless_strict() -> None:
    judged = judge(
        "faults",
        verdicts(Verdict.failed("no_quota_leaks", "slots held"), Verdict.passed("one_truth", "ok")),
        KNOWN,
    )
    assert [j.kind for j in judged] == ["known", "ok"]
    assert exit_code(judged, strict=False) == EXIT_OK
    assert exit_code(judged, strict=True) == EXIT_BREACH
    assert known_and_new(judged) == (["LC-003"], [])


def test_a_new_breach_fails() -> None:
    judged = judge("burst", verdicts(Verdict.failed("terminal_is_final", "row changed")), KNOWN)
    assert [j.kind for j in judged] == ["new"]
    assert exit_code(judged, strict=False) == EXIT_BREACH
    assert known_and_new(judged) == ([], ["burst:terminal_is_final"])


def test_vacuous_is_new_even_for_a_known_invariant_unless_allowed() -> None:
    judged = judge(
        "burst",
        verdicts(
            Verdict.vacuous("no_quota_leaks", "never sampled under load"),
            Verdict.vacuous("cancel_classification", "no cancel").allowing_vacuous(),
        ),
        KNOWN,
    )
    assert [j.kind for j in judged] == ["new", "ok"]
    assert exit_code(judged, strict=False) == EXIT_BREACH


def test_interrupted_wins() -> None:
    assert exit_code([], strict=False, interrupted=True) == EXIT_INTERRUPTED


def test_the_repository_findings_name_their_invariants() -> None:
    by_invariant = findings_by_invariant(open_findings(repository_root()))
    assert "LC-003" in by_invariant["no_quota_leaks"]
    assert "LC-002" in by_invariant["no_zombies"]
    assert "terminal_is_final" not in by_invariant


def test_no_findings_folder_means_nothing_is_known(tmp_path: Path) -> None:
    assert open_findings(tmp_path) == {}


def test_latest_link_is_replaced_but_a_real_folder_is_left(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    first, second = reports / "campaigns" / "a", reports / "campaigns" / "b"
    first.mkdir(parents=True)
    second.mkdir()
    point_latest(first, reports)
    point_latest(second, reports)
    assert (reports / "latest").resolve() == second.resolve()
    (reports / "latest").unlink()
    (reports / "latest").mkdir()
    assert "left alone" in point_latest(first, reports)


# -- the write-ups an installed wheel ships (share/loomchaos/docs/findings) --------------


def _fake_distribution(site: Path, name: str, listed: str) -> None:
    """A dist-info folder whose RECORD lists ``listed`` (relative to ``site``)."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "RECORD").write_text(f"{listed},,\n{info.name}/METADATA,,\n")


def test_an_installed_wheels_findings_are_found_from_its_file_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    data = tmp_path / "share" / "loomchaos"
    (data / "docs" / "findings").mkdir(parents=True)
    shutil.copy(repository_root() / "docs" / "findings" / "LC-003.md", data / "docs" / "findings")
    _fake_distribution(site, "fakechaos", "../share/loomchaos/docs/findings/LC-003.md")
    monkeypatch.syspath_prepend(str(site))
    root = shipped_findings_root("fakechaos")
    assert root == data.resolve()
    assert sorted(open_findings(root)) == ["LC-003"]


def test_a_distribution_without_findings_ships_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "notes").mkdir(parents=True)
    (site / "notes" / "LC-003.md").write_text("---\n---\n")  # an LC file, not under docs/findings
    _fake_distribution(site, "otherchaos", "notes/LC-003.md")
    monkeypatch.syspath_prepend(str(site))
    assert shipped_findings_root("otherchaos") is None
    assert shipped_findings_root("no-such-distribution-here") is None


def test_a_checkout_reads_its_own_write_ups_first() -> None:
    assert findings_root() == repository_root()
