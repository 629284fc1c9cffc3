"""The ``.index`` file: a sparse map from offsets to byte positions in a segment's log.

Each 8-byte entry is ``relative_offset uint32 | position uint32``, big-endian, where
``relative_offset = offset - segment base offset``. As in Kafka, an entry is added when
more than ``index.interval.bytes`` have been appended since the previous one, and it
records the *last* offset of the batch that starts at ``position``. So a lookup for any
offset gives a position at or before the batch containing it, and a short forward scan
of batch headers finds the batch.

Invariants: offsets strictly increase, positions never decrease, and every position is
the start of a batch. Owned by one task (see ``AbstractIndex``).
"""

from __future__ import annotations

import struct

from klog.segment.abstract_index import MAX_RELATIVE_OFFSET, AbstractIndex
from klog.segment.errors import CorruptIndexError

_ENTRY = struct.Struct(">II")
_RELATIVE = struct.Struct(">I")


class OffsetIndex(AbstractIndex):
    """Sparse offset -> position index of one segment."""

    ENTRY_SIZE = 8

    def _slot_offset(self, slot: int) -> int:
        return self.base_offset + _RELATIVE.unpack_from(self._require_mmap(), slot * 8)[0]

    def entry(self, slot: int) -> tuple[int, int]:
        """``(offset, position)`` of entry ``slot``."""
        relative, position = _ENTRY.unpack_from(self._require_mmap(), slot * 8)
        return self.base_offset + relative, position

    @property
    def last_offset(self) -> int:
        """The last indexed offset, or the base offset when the index is empty."""
        return self.entry(self._entries - 1)[0] if self._entries else self.base_offset

    def last_entry(self) -> tuple[int, int]:
        """The last entry, or ``(base_offset, 0)`` when the index is empty."""
        return self.entry(self._entries - 1) if self._entries else (self.base_offset, 0)

    def lookup(self, offset: int) -> tuple[int, int]:
        """The last entry with an offset <= ``offset``, or ``(base_offset, 0)``."""
        slot = self._largest_slot_at_most(self._slot_offset, offset)
        return self.entry(slot) if slot >= 0 else (self.base_offset, 0)

    def append(self, offset: int, position: int) -> None:
        """Add an entry; the offset must be beyond the last one and the index not full."""
        entries = self._entries
        if entries >= self._length >> 3:
            raise ValueError(f"offset index {self.path} is full ({entries} entries)")
        relative = offset - self.base_offset
        mapped = self._require_mmap()
        if entries and relative <= _RELATIVE.unpack_from(mapped, (entries - 1) * 8)[0]:
            raise ValueError(
                f"offset {offset} is not larger than the last indexed offset {self.last_offset}"
            )
        if not 0 <= relative <= MAX_RELATIVE_OFFSET:
            raise ValueError(f"offset {offset} is out of range for segment {self.base_offset}")
        _ENTRY.pack_into(mapped, entries * 8, relative, position)
        self._entries = entries + 1
        self._dirty = True

    def sanity_check(self, log_size: int) -> None:
        """Cheap consistency checks (Kafka's plus first/last bounds); raises
        ``CorruptIndexError``."""
        if self._length % self.ENTRY_SIZE:
            raise CorruptIndexError(
                f"{self.path} has size {self._length}, not a multiple of {self.ENTRY_SIZE}"
            )
        if not self._entries:
            return
        first_offset, first_position = self.entry(0)
        last_offset, last_position = self.entry(self._entries - 1)
        if not (
            first_offset <= last_offset <= self.base_offset + MAX_RELATIVE_OFFSET
            and first_position <= last_position < log_size
        ):
            raise CorruptIndexError(
                f"{self.path} is corrupt: entries ({first_offset}, {first_position}).."
                f"({last_offset}, {last_position}) for a log of {log_size} bytes"
            )
