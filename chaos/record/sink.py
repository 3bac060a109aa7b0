"""Mirror a history to a file while it grows, flushed in batches.

Flushing after every record costs a system call per record on the driver's hot
path; never flushing loses the tail when a test hangs and is killed.  The
middle: a flush every :data:`FLUSH_EVERY` records, and a daemon thread that
flushes whatever is pending every :data:`FLUSH_S` seconds, so a hung test's
file is at most that far behind its last record.
"""

from __future__ import annotations

import threading
from typing import TextIO

from chaos.record.jsonl import encode_record
from chaos.record.record import Record

FLUSH_EVERY = 512
FLUSH_S = 0.5


class BatchedSink:
    """Writes records' lines to ``fp``; :meth:`close` flushes and stops the flusher."""

    def __init__(
        self,
        fp: TextIO,
        *,
        flush_every: int = FLUSH_EVERY,
        flush_s: float = FLUSH_S,
        owns_file: bool = False,
    ) -> None:
        self._fp = fp
        self._every = max(1, flush_every)
        self._owns = owns_file
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._flusher = threading.Thread(
            target=self._tick, args=(flush_s,), name="history-flush", daemon=True
        )
        self._flusher.start()

    def write_line(self, line: str) -> None:
        """A raw line (the header); flushed with the next batch."""
        with self._lock:
            self._fp.write(line + "\n")
            self._pending += 1

    def write(self, rec: Record) -> None:
        lines = encode_record(rec)
        with self._lock:
            for line in lines:
                self._fp.write(line + "\n")
            self._pending += 1
            if self._pending >= self._every:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if self._pending and not self._fp.closed:
            self._fp.flush()
        self._pending = 0

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _tick(self, seconds: float) -> None:
        # Event.wait is the timer: it returns early (True) only when close() is called.
        while not self._closed.wait(seconds):
            self.flush()

    def close(self) -> None:
        self._closed.set()
        self._flusher.join()
        with self._lock:
            self._flush_locked()
            if self._owns:
                self._fp.close()
