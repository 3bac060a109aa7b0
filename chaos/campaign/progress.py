"""Progress of a campaign: a rich bar on a terminal (phase, wave, elapsed, remaining),
plain timestamped lines otherwise (CI logs, pipes), and the final verdict table.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from chaos.campaign.classify import Judged


class CampaignProgress:
    """``note`` a line, ``advance`` the planned seconds done; a context manager.

    The bar's total is the plan's estimate (:func:`chaos.campaign.plan.estimate_s`):
    remaining time is a guess that the campaign corrects as legs finish.
    """

    def __init__(
        self,
        title: str,
        planned_s: float,
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.console = Console(file=self.stream, force_terminal=self.live or None)
        self._clock = clock
        self._began = clock()
        self._title = title
        self._planned = max(planned_s, 1.0)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> CampaignProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                TextColumn("remaining"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._title, total=self._planned)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def status(self, text: str) -> None:
        """The bar's description (phase and wave) on a terminal; a line otherwise."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"{self._title}: {text}")
        else:
            self.note(text)

    def note(self, text: str) -> None:
        elapsed = self._clock() - self._began
        line = f"[{elapsed:7.1f}s] {text}"
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.stream, flush=True)

    def done_until(self, planned_done_s: float) -> None:
        """Move the bar to ``planned_done_s`` of the plan (it never moves back)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=min(planned_done_s, self._planned))


def verdict_table(judged: Sequence[Judged], console: Console) -> None:
    """Every leg's verdicts; failures first, KNOWN ones naming their findings."""
    table = Table(title="verdicts", show_lines=False)
    for column in ("leg", "invariant", "status", "verdict", "summary"):
        table.add_column(column, overflow="fold")
    order = {"new": 0, "known": 1, "ok": 2}
    for j in sorted(judged, key=lambda j: order[j.kind]):
        if j.kind == "new":
            verdict = "[red]NEW[/red]"
        elif j.kind == "known":
            verdict = "[yellow]KNOWN " + ",".join(j.known_by) + "[/yellow]"
        else:
            verdict = "[green]ok[/green]"
        table.add_row(j.leg, j.invariant, j.status, verdict, j.summary[:160])
    console.print(table)
