"""The target's terminal states (CONTRACT.md, "Terminal states and who writes them").

The checkers know a target's stop-reason and error words only through
:class:`TerminalWords`, carried in :class:`~chaos.checks.params.CheckParams`
(``params.terminal``) and recorded with them in the history, so a re-check
judges with the words the run was judged by.  The defaults are the contract's
words, which loomcycle (the first target) writes; another target passes its
own from its adapter's check parameters and edits nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from chaos.record.vocabulary import RunRow


@dataclass(frozen=True)
class TerminalWords:
    """Which stop reasons and error texts a target's writers produce, and for what."""

    #: The sweeper reaped a run whose owner replica died (failed).
    replica_died: str = "replica_died"
    replica_died_error: str = "owner replica died"
    #: A cancel found the owner's heartbeat stale and failed the run itself.
    owner_dead: str = "owner_replica_dead"
    owner_dead_error: str = "owner replica heartbeat stale"
    #: The per-run heartbeat went stale (failed).
    heartbeat_timeout: str = "heartbeat_timeout"
    heartbeat_timeout_error: str = "heartbeat timeout"
    #: A cancel through the API with no reason of the caller's.
    cancelled_by_api: str = "cancelled by api"
    #: The client's stream went away / the parent run was cancelled (cancelled).
    client_disconnected: str = "client disconnected"
    parent_cancelled: str = "parent run cancelled"

    @property
    def reap_reasons(self) -> frozenset[str]:
        """Stop reasons written when the owner is judged dead (sweeper or cancel path)."""
        return frozenset({self.replica_died, self.owner_dead})

    def failed_error(self, reason: str) -> str | None:
        """The error text a failed row with ``reason`` must start with; ``None``: no such row."""
        return {
            self.replica_died: self.replica_died_error,
            self.owner_dead: self.owner_dead_error,
            self.heartbeat_timeout: self.heartbeat_timeout_error,
        }.get(reason)

    def in_table(self, row: RunRow) -> bool:
        """Whether (status, stop_reason, error) is a row some writer in the contract produces."""
        status, reason, error = row.status, row.stop_reason, row.error
        if status in ("completed", "cancelled"):
            return bool(reason) and error is None
        if status == "failed":
            if reason is None:
                return bool(error)
            expected = self.failed_error(reason)
            return expected is not None and (error or "").startswith(expected)
        return False

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_value(cls, raw: Any) -> TerminalWords:
        """From :meth:`to_dict` output (unknown keys, a newer suite's, ignored) or as is."""
        if isinstance(raw, TerminalWords):
            return raw
        if not isinstance(raw, Mapping):
            raise TypeError(f"terminal words must be a mapping, got {type(raw).__name__}")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: str(v) for k, v in raw.items() if k in known})


#: The contract's words (loomcycle's): what ``CheckParams()`` judges by unless told.
CONTRACT_WORDS = TerminalWords()
