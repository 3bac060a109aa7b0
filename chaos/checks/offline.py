"""Re-check a saved scenario: ``loomchaos check PATH``.

The history file holds everything the checkers read (operations, faults,
snapshots, audit rows, the bounds of the run), so the verdicts of a re-check
equal the ones the scenario printed, on any machine, without Docker.
"""

from __future__ import annotations

from pathlib import Path

from chaos.checks import run_checks
from chaos.checks.context import CheckContext
from chaos.checks.params import CheckParams
from chaos.errors import SetupError
from chaos.record.history import History, HistoryError
from chaos.verdict import Verdict

HISTORY_FILE = "history.jsonl"


def resolve_history_path(path: Path) -> Path:
    """A history JSONL file, or an artifact directory holding ``history.jsonl``."""
    if path.is_dir():
        candidate = path / HISTORY_FILE
        if not candidate.is_file():
            raise SetupError(
                f"{path} is a directory without {HISTORY_FILE}: pass the file itself "
                "or a scenario's artifact directory"
            )
        return candidate
    if not path.exists():
        raise SetupError(
            f"{path} does not exist: pass a history JSONL file or an artifact directory"
        )
    return path


def load_history(path: Path) -> History:
    source = resolve_history_path(path)
    try:
        return History.read(source)
    except (HistoryError, ValueError) as exc:  # json errors in the header are ValueErrors
        raise SetupError(f"{source} is not a loomchaos history: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"cannot read {source}: {exc}") from exc


def check_path(path: Path, params: CheckParams | None = None) -> list[Verdict]:
    """Every verdict for a saved history; ``params`` overrides the recorded bounds."""
    history = load_history(path)
    try:
        ctx = CheckContext.from_history(history, params)
    except (KeyError, TypeError, ValueError) as exc:
        raise SetupError(f"{path}: a snapshot, audit or params note is malformed: {exc}") from exc
    return run_checks(ctx)
