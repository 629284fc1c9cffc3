"""What the offset index and the time index have in common (Kafka's AbstractIndex).

An index file is an array of fixed-size big-endian entries sorted by offset, memory
mapped. A new index file is preallocated (sparse) to ``segment.index.bytes`` rounded down
to a whole number of entries, so appends never grow the file; ``trim_to_valid_size``
cuts it to the entries in use when its segment rolls or closes. An existing file is
opened with ``file size / entry size`` entries (Kafka's rule): only a trimmed file is
trusted this way; recovery rebuilds the indexes of every segment it scans, which covers
the untrimmed active segment after a crash.

Invariants: entry ``i`` holds the ``i``-th indexed offset; offsets strictly increase for
the offset index and never decrease for the time index; ``entries <= max_entries``.
Durability comes from ``fsync`` on the file descriptor (Linux writes back dirty shared
mappings with the file), which a flush job may run in a worker thread while the owner
keeps appending. Otherwise owned by one task (the partition log's owner).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from klog.segment.file_slice import FileHandle

# Kafka stores relative offsets as Java ints.
MAX_RELATIVE_OFFSET = (1 << 31) - 1


class AbstractIndex:
    """A memory-mapped array of fixed-size entries for one segment."""

    ENTRY_SIZE: ClassVar[int]

    def __init__(self, path: Path, base_offset: int, max_index_size: int) -> None:
        self.path = path
        self.base_offset = base_offset
        #: True when the file did not exist: the segment must rebuild it if it has data.
        self.created = not path.exists()
        self._handle: FileHandle | None = FileHandle(path, os.O_RDWR | os.O_CREAT)
        self._mmap: mmap.mmap | None = None
        if self.created:
            os.ftruncate(self._handle.fileno(), self._round_down(max_index_size))
        length = os.fstat(self._handle.fileno()).st_size
        self._length = 0
        self._entries = 0
        # True while the file has changes an fsync has not covered yet.
        self._dirty = self.created
        self._map(length)
        if not self.created:
            self._entries = length // self.ENTRY_SIZE

    # -- sizes ---------------------------------------------------------------------------

    @property
    def entries(self) -> int:
        return self._entries

    @property
    def max_entries(self) -> int:
        return self._length // self.ENTRY_SIZE

    @property
    def is_full(self) -> bool:
        return self._entries >= self.max_entries

    @property
    def size_bytes(self) -> int:
        """Bytes the entries in use occupy (the trimmed file size)."""
        return self._entries * self.ENTRY_SIZE

    @property
    def handle(self) -> FileHandle:
        """The open file, for a flush job's ``fsync``."""
        return self._require_handle()

    def _round_down(self, size: int) -> int:
        return size - size % self.ENTRY_SIZE

    def can_append_offset(self, offset: int) -> bool:
        return 0 <= offset - self.base_offset <= MAX_RELATIVE_OFFSET

    # -- abstract per-entry access -------------------------------------------------------

    def _slot_offset(self, slot: int) -> int:
        """The absolute offset recorded in entry ``slot``."""
        raise NotImplementedError

    def entry(self, slot: int) -> tuple[int, int]:
        """Entry ``slot`` decoded, with an absolute offset."""
        raise NotImplementedError

    def all_entries(self) -> list[tuple[int, int]]:
        """Every entry in order (for checks and tools; not for hot paths)."""
        return [self.entry(slot) for slot in range(self._entries)]

    # -- search --------------------------------------------------------------------------

    def _largest_slot_at_most(self, key: Callable[[int], int], target: int) -> int:
        """The last slot whose key is <= target, or -1; keys never decrease by slot."""
        lo, hi = 0, self._entries - 1
        found = -1
        while lo <= hi:
            mid = (lo + hi) >> 1
            if key(mid) <= target:
                found = mid
                lo = mid + 1
            else:
                hi = mid - 1
        return found

    # -- mutation ------------------------------------------------------------------------

    def truncate_to(self, offset: int) -> None:
        """Drop every entry whose offset is >= ``offset``."""
        self._entries = self._largest_slot_at_most(self._slot_offset, offset - 1) + 1
        self._dirty = True

    def reset(self, max_index_size: int) -> None:
        """Drop all entries and preallocate the file to ``max_index_size`` again."""
        self._entries = 0
        self.resize(max_index_size)

    def resize(self, new_size: int) -> None:
        """Set the file (and mapping) size, keeping the entries that still fit."""
        length = self._round_down(new_size)
        if length == self._length:
            return
        handle = self._require_handle()
        self._unmap()
        os.ftruncate(handle.fileno(), length)
        self._dirty = True
        self._map(length)
        self._entries = min(self._entries, self.max_entries)

    def trim_to_valid_size(self) -> None:
        self.resize(self._entries * self.ENTRY_SIZE)

    def _map(self, length: int) -> None:
        self._length = length
        if length > 0:
            self._mmap = mmap.mmap(self._require_handle().fileno(), length)

    def _unmap(self) -> None:
        if self._mmap is not None:
            self._mmap.close()
            self._mmap = None

    def _require_handle(self) -> FileHandle:
        if self._handle is None:
            raise ValueError(f"index {self.path} is closed")
        return self._handle

    def _require_mmap(self) -> mmap.mmap:
        if self._mmap is None:
            raise ValueError(f"index {self.path} has no room for entries")
        return self._mmap

    def close(self, trim: bool = True) -> None:
        """Trim and fsync (unless the file is about to be deleted), then release the
        file. Blocking when there is something to fsync."""
        if self._handle is None:
            return
        if trim:
            self.trim_to_valid_size()
            if self._dirty:
                self.fsync()
        self._unmap()
        self._handle = None

    def rename(self, new_path: Path) -> None:
        os.rename(self.path, new_path)
        self.path = new_path

    def fsync(self) -> None:
        self._dirty = False
        self._require_handle().fsync()
