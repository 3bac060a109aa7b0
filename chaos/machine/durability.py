"""The durability invariant as a pure function of write operations and what the table holds.

Jepsen's rule for a register of unique values: a write whose commit was
acknowledged (``ok``) must be there when read back, a write that certainly
never reached the server (``fail``) must not be, and a write whose outcome
the client never learned (``info``, or still open) may or may not be.
"""

from __future__ import annotations

from collections.abc import Iterable, Set

from chaos.record.history import Operation
from chaos.verdict import Verdict

INVARIANT = "acknowledged_writes_durable"


def write_value(op: Operation) -> int:
    """The value a ``write`` operation carries (its key)."""
    if op.key is None:
        raise ValueError(f"write invoke {op.invoke.index} has no key (the value written)")
    return int(op.key)


def check_durability(writes: Iterable[Operation], present: Set[int]) -> Verdict:
    """Judge ``writes`` (``write`` operations, key = value) against the values ``present``.

    Vacuous when no write was acknowledged: nothing was at stake.
    """
    acked: list[int] = []
    lost: list[int] = []
    phantom: list[int] = []
    unknown = 0
    for op in writes:
        value = write_value(op)
        if op.outcome == "ok":
            acked.append(value)
            if value not in present:
                lost.append(value)
        elif op.outcome == "fail":
            if value in present:
                phantom.append(value)
        else:
            unknown += 1
    evidence: dict[str, object] = {
        "acknowledged": len(acked),
        "unknown_outcome": unknown,
        "present": len(present),
    }
    if lost or phantom:
        parts = []
        if lost:
            parts.append(f"{len(lost)} acknowledged write(s) missing")
        if phantom:
            parts.append(f"{len(phantom)} failed write(s) present")
        return Verdict.failed(
            INVARIANT, ", ".join(parts), (), lost=sorted(lost), phantom=sorted(phantom), **evidence
        )
    if not acked:
        return Verdict.vacuous(INVARIANT, "no write was acknowledged", **evidence)
    return Verdict.passed(INVARIANT, f"all {len(acked)} acknowledged write(s) present", **evidence)
