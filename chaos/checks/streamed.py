"""Check a history file in one pass, without loading the history.

A soak's history is millions of records; held as a :class:`~chaos.record.history.History`
it does not fit in this machine's memory.  :func:`context_from_path` reads the file line
by line into a :class:`~chaos.checks.facts.FactsFold` (a snapshot's rows part by part),
keeps the compact facts the checkers read, and remembers where each key's first lines
are, so a verdict's evidence excerpt re-reads those few lines from the file.  The
checkers then run unchanged: the facts are the ones
:meth:`~chaos.checks.context.CheckContext.from_history` builds by the same fold.
"""

from __future__ import annotations

from pathlib import Path

from chaos.checks.context import CheckContext
from chaos.checks.facts import FactsFold, gc_paused
from chaos.checks.params import CheckParams
from chaos.record.history import HistoryError, Record
from chaos.record.jsonl import Header, iter_lines, read_record_at


class MalformedFacts(ValueError):
    """A well-formed history whose snapshot, audit or params content cannot be decoded."""


class RecordAt:
    """Re-reads the record that starts at a byte offset of ``path`` (an excerpt line)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, offset: int) -> Record:
        with self.path.open("rb") as fp:
            return read_record_at(fp, offset)


def context_from_path(path: Path, params: CheckParams | None = None) -> CheckContext:
    """The checkers' context of a history file; ``params`` overrides the recorded ones.

    Raises :class:`HistoryError` when the file is not a history (reported first, as a load
    would), :class:`MalformedFacts` when a snapshot, audit or params note cannot be
    decoded, and ``OSError``/``UnicodeDecodeError`` when the file cannot be read.
    """
    fold = FactsFold()
    broken: Exception | None = None
    with gc_paused(promote=True), path.open("rb") as fp:
        for item in iter_lines(fp, Header(), typed_rows=True):
            if broken is not None:
                continue  # read on: a format error further down is the one to report
            try:
                fold.add_item(item)
            except (KeyError, TypeError, ValueError) as exc:
                broken = exc
    try:
        if broken is not None:
            raise broken
        facts = fold.finish(RecordAt(path))
        chosen = params or facts.recorded_params() or CheckParams()
    except HistoryError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedFacts(str(exc)) from exc
    return CheckContext(facts, chosen)
