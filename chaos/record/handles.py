"""The first few handles per key, byte offsets packed: a soak's excerpt index.

An evidence excerpt quotes the first lines about one key (an agent, a circuit), so a
checker of a history file keeps, for every key, where its first lines start.  A soak
has a million keys with two to four lines each: as a list of ``int`` per key that is
about 170 bytes a key (the list, its item array, an object per offset).
:class:`FirstHandles` packs the offsets of one key into one ``bytes`` (8 bytes each):
about 60 bytes a key.  Other handles (records, when the history is in memory) are kept
in a list as they come.  Read back, every key gives a list, in the order added.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

#: One offset: signed 64-bit, native order (any file offset, and -1 for "not from a file").
_OFFSET = struct.Struct("=q")
_WIDTH = _OFFSET.size
_LO, _HI = -(2**63), 2**63


class FirstHandles(Mapping[str, list[Any]]):
    """Key -> the first ``limit`` handles added for it, in order (a read-only mapping)."""

    __slots__ = ("_kept", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._kept: dict[str, bytes | list[Any]] = {}

    def add(self, key: str, handle: Any) -> None:
        """One more handle for ``key``; ignored once ``key`` has ``limit`` of them."""
        kept = self._kept.get(key)
        if type(handle) is int and _LO <= handle < _HI:
            if kept is None:
                self._kept[key] = _OFFSET.pack(handle)
                return
            if type(kept) is bytes:
                if len(kept) < self._limit * _WIDTH:
                    self._kept[key] = kept + _OFFSET.pack(handle)
                return
        if kept is None:
            self._kept[key] = [handle]
            return
        if type(kept) is bytes:  # an offset first, then another kind of handle
            kept = self._kept[key] = _unpack(kept)
        assert type(kept) is list
        if len(kept) < self._limit:
            kept.append(handle)

    def __getitem__(self, key: str) -> list[Any]:
        kept = self._kept[key]
        return _unpack(kept) if type(kept) is bytes else list(kept)

    def __iter__(self) -> Iterator[str]:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)

    def __repr__(self) -> str:
        return f"FirstHandles({dict(self.items())!r})"


def _unpack(packed: bytes) -> list[Any]:
    return [offset for (offset,) in _OFFSET.iter_unpack(packed)]
