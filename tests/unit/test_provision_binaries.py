"""Go installs: stamps decide reuse, the go error becomes one line, overrides are honoured.

A fake ``go`` on PATH stands in for the toolchain, so these run offline in
milliseconds and still go through the real subprocess and log handling.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chaos.errors import SetupError
from chaos.provision.binaries import (
    ENV_LOOMCYCLE_BIN,
    ENV_LOOMCYCLE_VERSION,
    TOXIPROXY,
    GoProgram,
    ensure_loomcycle,
    ensure_toxiproxy,
    go_error_line,
    install_go_program,
    is_current,
    loomcycle_program,
    write_stamp,
)

REFUSED = (
    "go: github.com/denn-gubsky/loomcycle/cmd/loomcycle@v1.59.0: "
    "github.com/denn-gubsky/loomcycle/cmd/loomcycle@v1.59.0: reading "
    "https://proxy.example.invalid/github.com/denn-gubsky/loomcycle/cmd/loomcycle/@v/v1.59.0.info: "
    "403 Forbidden\n\tserver response: This module version is not available.\n"
)


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``go`` that fails like the proxy does for loomcycle and builds anything else.

    Each call appends a line to ``calls`` so a test can see whether go ran.
    """
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    _executable(
        bindir / "go",
        f"""#!/bin/sh
echo "$@" >> {calls}
case "$2" in
  *loomcycle*) printf '%s' '{REFUSED}' >&2; exit 1 ;;
esac
echo "go: downloading github.com/example/dep v1.0.0" >&2
name=$(basename "${{2%@*}}")
printf 'binary %s CGO=%s' "$2" "$CGO_ENABLED" > "$GOBIN/$name"
chmod +x "$GOBIN/$name"
""",
    )
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return calls


def _calls(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_go_error_line_drops_chatter_and_keeps_the_error() -> None:
    output = "go: downloading github.com/x/y v1\n" + REFUSED
    line = go_error_line(output, 1)
    assert line.startswith("go: github.com/denn-gubsky/loomcycle/cmd/loomcycle@v1.59.0")
    assert line.endswith("403 Forbidden server response: This module version is not available.")
    assert "\n" not in line and "downloading" not in line


def test_go_error_line_without_output_says_the_exit_code() -> None:
    assert go_error_line("go: downloading a v1\n", 2) == "go install exited 2 with no message"


def test_stamp_matches_only_the_same_program_and_bytes(tmp_path: Path) -> None:
    binary = _executable(tmp_path / "toxiproxy-server", "v1")
    assert not is_current(binary, TOXIPROXY)  # no stamp yet
    write_stamp(binary, TOXIPROXY)
    assert is_current(binary, TOXIPROXY)
    other_version = GoProgram(TOXIPROXY.name, TOXIPROXY.module, "v2.11.0")
    assert not is_current(binary, other_version)
    binary.write_text("v1 but changed")
    assert not is_current(binary, TOXIPROXY)


def test_a_corrupt_stamp_means_rebuild(tmp_path: Path) -> None:
    binary = _executable(tmp_path / "toxiproxy-server", "v1")
    (tmp_path / "toxiproxy-server.stamp").write_text("{not json")
    assert not is_current(binary, TOXIPROXY)


def test_install_renames_stamps_and_then_reuses(tmp_path: Path, fake_go: Path) -> None:
    cache = tmp_path / "cache"
    path, built = install_go_program(TOXIPROXY, cache, progress=lambda _: None)
    assert built and path == cache / "bin" / "toxiproxy-server"
    assert path.read_text() == f"binary {TOXIPROXY.module}@{TOXIPROXY.version} CGO=0"
    again, built_again = install_go_program(TOXIPROXY, cache, progress=lambda _: None)
    assert again == path and not built_again
    assert _calls(fake_go) == 1  # the second call did not run go


def test_missing_go_is_one_line_unless_the_binary_is_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SetupError) as info:
        ensure_toxiproxy(tmp_path / "cache", progress=lambda _: None)
    assert "\n" not in str(info.value) and "install Go" in str(info.value)
    binary = tmp_path / "cache" / "bin" / "toxiproxy-server"
    binary.parent.mkdir(parents=True)
    _executable(binary, "prebuilt")
    write_stamp(binary, TOXIPROXY)
    assert ensure_toxiproxy(tmp_path / "cache", progress=lambda _: None) == (binary, False)


def test_refused_loomcycle_is_returned_not_raised(tmp_path: Path, fake_go: Path) -> None:
    result = ensure_loomcycle(tmp_path / "cache", lambda _: None, env={})
    assert result.path is None
    assert result.error is not None
    assert result.error.endswith(
        "403 Forbidden server response: This module version is not available."
    )
    log = tmp_path / "cache" / "logs" / "go-install-loomcycle.log"
    assert "403 Forbidden" in log.read_text()


def test_loomcycle_binary_override(tmp_path: Path, fake_go: Path) -> None:
    binary = _executable(tmp_path / "my-loomcycle", "mine")
    result = ensure_loomcycle(
        tmp_path / "cache", lambda _: None, env={ENV_LOOMCYCLE_BIN: str(binary)}
    )
    assert result.path == binary and result.error is None
    assert _calls(fake_go) == 0
    with pytest.raises(SetupError, match=ENV_LOOMCYCLE_BIN):
        ensure_loomcycle(tmp_path / "cache", lambda _: None, env={ENV_LOOMCYCLE_BIN: "/nope"})


def test_loomcycle_version_override() -> None:
    assert loomcycle_program({}).version == "v1.59.0"
    assert loomcycle_program({ENV_LOOMCYCLE_VERSION: "v1.60.1"}).version == "v1.60.1"
