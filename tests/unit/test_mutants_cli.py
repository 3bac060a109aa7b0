"""The ``mutants`` sub-command's argument handling: bad input is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.cli import build_parser, main
from chaos.errors import SetupError
from chaos.mutants.cli import _scenarios, select
from chaos.mutants.patches import discover
from chaos.mutants.scenarios import DEFAULT_SCENARIOS, PytestRunner


def test_the_sub_command_is_registered_with_its_defaults() -> None:
    args = build_parser().parse_args(["mutants", "planted/x"])
    assert (args.patch_dir, args.controls, args.min_score, args.reuse) == (
        "planted/x",
        2,
        1.0,
        False,
    )


def test_scenarios_split_like_a_shell_and_default_to_the_gate_set() -> None:
    assert _scenarios(None) == DEFAULT_SCENARIOS
    assert _scenarios("tests/chaos/test_smoke.py -k 'smoke and not slow'") == (
        "tests/chaos/test_smoke.py",
        "-k",
        "smoke and not slow",
    )
    with pytest.raises(SetupError, match="empty"):
        _scenarios("  ")
    with pytest.raises(SetupError, match="No closing quotation"):
        _scenarios("'unclosed")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mutants", "{tmp}/nowhere"], "does not exist"),
        (["mutants", "{tmp}", "--controls", "0"], "--controls must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_runner_pins_seed_junit_and_artifacts(tmp_path: Path) -> None:
    cmd = PytestRunner(tmp_path, ("tests/chaos/test_smoke.py",)).command(42, tmp_path / "out")
    assert cmd[1:6] == ["-m", "pytest", "-m", "chaos", "tests/chaos/test_smoke.py"]
    assert "--chaos-seed=42" in cmd
    assert f"--junitxml={tmp_path / 'out' / 'junit.xml'}" in cmd


def test_only_selects_in_the_order_of_the_globs(tmp_path: Path) -> None:
    for name in ("01-a", "02-b", "03-c"):
        (tmp_path / f"{name}.patch").write_text(
            "Description: x\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"
        )
    patches = discover(tmp_path)
    assert [p.name for p in select(patches, ["03-*", "0*"])] == ["03-c", "01-a", "02-b"]
    assert select(patches, ["9*"]) == []
