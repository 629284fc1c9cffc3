"""The ``.timeindex`` file: a sparse map from timestamps to offsets in a segment.

Each 12-byte entry is ``timestamp int64 | relative_offset uint32``, big-endian. As in
Kafka, an entry is considered at the same moments as an offset index entry (and once
more when the segment rolls or closes), and written only when the segment's largest
timestamp has grown; it records that timestamp and the last offset of the batch that
carried it. One slot is kept free for the entry written at roll time.

Invariants: timestamps strictly increase and offsets never decrease. Owned by one task
(see ``AbstractIndex``).
"""

from __future__ import annotations

import struct

from klog.segment.abstract_index import MAX_RELATIVE_OFFSET, AbstractIndex
from klog.segment.errors import CorruptIndexError

_ENTRY = struct.Struct(">qI")
_TIMESTAMP = struct.Struct(">q")
_RELATIVE = struct.Struct(">I")

NO_TIMESTAMP = -1


class TimeIndex(AbstractIndex):
    """Sparse timestamp -> offset index of one segment."""

    ENTRY_SIZE = 12

    @property
    def is_full(self) -> bool:
        # Kafka keeps the last slot for the entry appended when the segment rolls.
        return self._entries >= self.max_entries - 1

    def _slot_offset(self, slot: int) -> int:
        return self.base_offset + _RELATIVE.unpack_from(self._require_mmap(), slot * 12 + 8)[0]

    def _slot_timestamp(self, slot: int) -> int:
        return _TIMESTAMP.unpack_from(self._require_mmap(), slot * 12)[0]

    def entry(self, slot: int) -> tuple[int, int]:
        """``(timestamp, offset)`` of entry ``slot``."""
        timestamp, relative = _ENTRY.unpack_from(self._require_mmap(), slot * 12)
        return timestamp, self.base_offset + relative

    # (entry count, last entry): maybe_append consults the last entry for every batch
    # it is offered. Keyed by the count because truncation and resizing change only the
    # count, and every write goes through maybe_append, which refreshes it.
    _last: tuple[int, tuple[int, int]] | None = None

    def last_entry(self) -> tuple[int, int]:
        """The last entry, or ``(NO_TIMESTAMP, base_offset)`` when the index is empty."""
        cached = self._last
        if cached is not None and cached[0] == self._entries:
            return cached[1]
        last = self.entry(self._entries - 1) if self._entries else (NO_TIMESTAMP, self.base_offset)
        self._last = (self._entries, last)
        return last

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """The last entry with a timestamp <= ``timestamp``, or
        ``(NO_TIMESTAMP, base_offset)``."""
        slot = self._largest_slot_at_most(self._slot_timestamp, timestamp)
        return self.entry(slot) if slot >= 0 else (NO_TIMESTAMP, self.base_offset)

    def maybe_append(self, timestamp: int, offset: int, skip_full_check: bool = False) -> None:
        """Add ``(timestamp, offset)`` if ``timestamp`` is larger than the last entry's."""
        last_timestamp, last_offset = self.last_entry()
        if timestamp <= last_timestamp:
            return
        if self._entries and offset < last_offset:
            raise ValueError(
                f"time index offset {offset} is below the last indexed offset {last_offset}"
            )
        if not self.can_append_offset(offset):
            raise ValueError(f"offset {offset} is out of range for segment {self.base_offset}")
        if self._entries >= self.max_entries or (self.is_full and not skip_full_check):
            raise ValueError(f"time index {self.path} is full ({self._entries} entries)")
        _ENTRY.pack_into(
            self._require_mmap(), self._entries * 12, timestamp, offset - self.base_offset
        )
        self._entries += 1
        self._last = (self._entries, (timestamp, offset))
        self._dirty = True

    def sanity_check(self, next_offset: int) -> None:
        """Cheap consistency checks against the segment's next offset; raises
        ``CorruptIndexError``."""
        if self._length % self.ENTRY_SIZE:
            raise CorruptIndexError(
                f"{self.path} has size {self._length}, not a multiple of {self.ENTRY_SIZE}"
            )
        if not self._entries:
            return
        first_timestamp, first_offset = self.entry(0)
        last_timestamp, last_offset = self.entry(self._entries - 1)
        if not (
            first_timestamp <= last_timestamp
            and first_offset <= last_offset < next_offset
            and last_offset <= self.base_offset + MAX_RELATIVE_OFFSET
        ):
            raise CorruptIndexError(
                f"{self.path} is corrupt: entries ({first_timestamp}, {first_offset}).."
                f"({last_timestamp}, {last_offset}) for a segment ending at offset {next_offset}"
            )
