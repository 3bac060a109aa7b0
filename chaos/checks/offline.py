"""Re-check a saved scenario: ``loomchaos check PATH``.

The history file holds everything the checkers read (operations, faults,
snapshots, audit rows, the bounds of the run), so the verdicts of a re-check
equal the ones the scenario printed, on any machine, without Docker.  The file
is read once, streamed, so a soak's millions of runs are checked in bounded
memory (:mod:`chaos.checks.streamed`).
"""

from __future__ import annotations

from pathlib import Path

from chaos.checks import run_checks
from chaos.checks.params import CheckParams
from chaos.checks.streamed import MalformedFacts, context_from_path
from chaos.errors import SetupError
from chaos.record.history import HistoryError
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


def check_path(path: Path, params: CheckParams | None = None) -> list[Verdict]:
    """Every verdict for a saved history; ``params`` overrides the recorded bounds.

    The file is read once, streamed (:mod:`chaos.checks.streamed`): a soak's history
    is checked without ever being held in memory whole.
    """
    source = resolve_history_path(path)
    try:
        ctx = context_from_path(source, params)
    except MalformedFacts as exc:
        raise SetupError(f"{path}: a snapshot, audit or params note is malformed: {exc}") from exc
    except HistoryError as exc:
        raise SetupError(f"{source} is not a loomchaos history: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"cannot read {source}: {exc}") from exc
    return run_checks(ctx)
