"""``Segment``: one ``.log`` file with its ``.index`` and ``.timeindex`` (Kafka's LogSegment).

Files: ``<20-digit base offset>.log|.index|.timeindex`` in the partition directory (see
``filenames``). The log holds whole v2 batches; both indexes are sparse and are updated
per batch with Kafka's rule: when more than ``index.interval.bytes`` were appended since
the last entry, the batch gets an offset index entry (its last offset and position) and
the time index gets the largest timestamp so far if it grew. Recovery rebuilds the
indexes with the same rule, so a rebuilt index equals the one appends produced.

Invariants: every batch's offsets lie in ``[base_offset, base_offset + 2**31 - 1]`` and
increase; ``next_offset`` is one past the last batch's last offset (``base_offset`` when
empty). The active segment's indexes are preallocated; an inactive or closed segment's
are trimmed. Owned by one task (the partition log's owner); ``flush_handles`` are safe
to fsync from a worker thread.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path

from klog.segment.config import LogConfig
from klog.segment.errors import CorruptIndexError
from klog.segment.file_records import BatchHeader, FileRecords
from klog.segment.file_slice import FileHandle, FileSlice
from klog.segment.filenames import (
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    segment_file,
)
from klog.segment.offset_index import OffsetIndex
from klog.segment.time_index import NO_TIMESTAMP, TimeIndex
from klog.wire.records import PARTITION_LEADER_EPOCH_POS

_EPOCH = struct.Struct(">i")

# (last offset, position in the segment file, size, max timestamp) of an appended batch.
IndexedBatch = tuple[int, int, int, int]


class Segment:
    """One segment of a partition log."""

    def __init__(
        self,
        directory: Path,
        base_offset: int,
        config: LogConfig,
        now_ms: int,
        roll_jitter_ms: int = 0,
        file_suffix: str = "",
    ) -> None:
        self.base_offset = base_offset
        self.created_ms = now_ms
        self.roll_jitter_ms = roll_jitter_ms
        self._max_index_size = config.segment_index_bytes
        self._index_interval_bytes = config.index_interval_bytes
        self.log = FileRecords(segment_file(directory, base_offset, LOG_SUFFIX, file_suffix))
        self.offset_index = OffsetIndex(
            segment_file(directory, base_offset, INDEX_SUFFIX, file_suffix),
            base_offset,
            self._max_index_size,
        )
        self.time_index = TimeIndex(
            segment_file(directory, base_offset, TIME_INDEX_SUFFIX, file_suffix),
            base_offset,
            self._max_index_size,
        )
        self._next_offset = base_offset
        self._max_timestamp = NO_TIMESTAMP
        self._offset_of_max_timestamp = base_offset
        self._bytes_since_last_index_entry = 0
        # Max timestamp of the first batch: what segment.ms rolls are measured from.
        self._rolling_timestamp: int | None = None

    @classmethod
    def create(
        cls,
        directory: Path,
        base_offset: int,
        config: LogConfig,
        now_ms: int,
        jitter_ms: int = 0,
        file_suffix: str = "",
    ) -> Segment:
        """A new empty segment; stale files with the same name are removed first.
        ``file_suffix`` (e.g. ``.cleaned``) names files not yet part of the log."""
        for extension in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            segment_file(directory, base_offset, extension, file_suffix).unlink(missing_ok=True)
        return cls(directory, base_offset, config, now_ms, jitter_ms, file_suffix)

    # -- state ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self.log.size

    @property
    def next_offset(self) -> int:
        return self._next_offset

    @property
    def max_timestamp(self) -> int:
        """Largest batch max timestamp in the segment, ``NO_TIMESTAMP`` if none."""
        return self._max_timestamp

    @property
    def offset_of_max_timestamp(self) -> int:
        return self._offset_of_max_timestamp

    @property
    def largest_timestamp(self) -> int:
        """What retention.ms compares: the max timestamp, or the file's mtime without one."""
        if self._max_timestamp >= 0:
            return self._max_timestamp
        return os.stat(self.log.path).st_mtime_ns // 1_000_000

    def flush_handles(self) -> list[FileHandle]:
        return [self.log.handle, self.offset_index.handle, self.time_index.handle]

    @property
    def indexes_created(self) -> bool:
        """True if an index file was missing when the segment was opened."""
        return self.offset_index.created or self.time_index.created

    # -- loading -------------------------------------------------------------------------

    def load(self) -> None:
        """Derive the in-memory state from the files, trusting them; raises
        ``CorruptIndexError`` when an index is missing or inconsistent."""
        if self.size and self.indexes_created:
            raise CorruptIndexError(f"index files of {self.log.path} are missing")
        self.offset_index.sanity_check(self.size)
        if self.offset_index.entries:
            indexed_offset, position = self.offset_index.last_entry()
            header = self.log.read_header(position)
            if header is None or not header.base_offset <= indexed_offset <= header.last_offset:
                raise CorruptIndexError(
                    f"{self.offset_index.path}: entry ({indexed_offset}, {position}) does not "
                    f"point at the batch holding that offset"
                )
        self._load_tail()
        self.time_index.sanity_check(self._next_offset)

    def _load_tail(self) -> None:
        """Recompute next offset, max timestamp and bytes since the last index entry by
        reading the headers after the last offset index entry (< index.interval.bytes
        plus one batch)."""
        timestamp, offset = self.time_index.last_entry()
        self._max_timestamp, self._offset_of_max_timestamp = timestamp, offset
        _, position = self.offset_index.last_entry()
        self._next_offset = self.base_offset
        if self.offset_index.entries:
            self._next_offset = self.offset_index.last_offset + 1
        self._bytes_since_last_index_entry = 0
        for header in self.log.headers(position):
            self._track_timestamp(header.max_timestamp, header.last_offset)
            self._next_offset = header.last_offset + 1
            self._bytes_since_last_index_entry += header.size
        self._rolling_timestamp = None

    def recover(self, on_epoch: Callable[[int, int], None]) -> tuple[int, str | None]:
        """Validate every batch, rebuild both indexes, and cut the file at the first
        invalid batch. ``on_epoch(epoch, base_offset)`` sees every valid batch's partition
        leader epoch. Returns ``(bytes truncated, why)``."""
        self.offset_index.reset(self._max_index_size)
        self.time_index.reset(self._max_index_size)
        self._next_offset = self.base_offset
        self._max_timestamp = NO_TIMESTAMP
        self._offset_of_max_timestamp = self.base_offset
        self._bytes_since_last_index_entry = 0
        self._rolling_timestamp = None
        valid_end = 0
        problem: str | None = None
        with closing(self.log.scan(0)) as windows:
            for batches, window_end, error, mapped in windows:
                for base, delta, max_timestamp, position, size in batches:
                    last = base + delta
                    if base < self._next_offset or delta < 0 or not self.can_hold(last):
                        problem = (
                            f"batch at position {position} has offsets {base}..{last}, "
                            f"expected them to start at or after {self._next_offset}"
                        )
                        break
                    epoch = _EPOCH.unpack_from(mapped, position + PARTITION_LEADER_EPOCH_POS)[0]
                    on_epoch(epoch, base)
                    self._index_batch(last, position, size, max_timestamp)
                    self._next_offset = last + 1
                    valid_end = position + size
                else:
                    valid_end = window_end
                    problem = error[1] if error is not None else None
                    continue
                break
        return self.log.truncate_to(valid_end), problem

    # -- appending -----------------------------------------------------------------------

    def can_hold(self, offset: int) -> bool:
        """True if ``offset`` is representable relative to this segment's base."""
        return self.offset_index.can_append_offset(offset)

    def _track_timestamp(self, max_timestamp: int, last_offset: int) -> None:
        if max_timestamp > self._max_timestamp:
            self._max_timestamp = max_timestamp
            self._offset_of_max_timestamp = last_offset

    def _index_batch(self, last_offset: int, position: int, size: int, max_timestamp: int) -> None:
        if max_timestamp > self._max_timestamp:
            self._max_timestamp = max_timestamp
            self._offset_of_max_timestamp = last_offset
        if self._bytes_since_last_index_entry > self._index_interval_bytes:
            # A full index only happens when segment.index.bytes shrank under existing
            # data; a sparser index is still correct, so skip rather than fail.
            if not self.offset_index.is_full:
                self.offset_index.append(last_offset, position)
            if not self.time_index.is_full:
                self.time_index.maybe_append(self._max_timestamp, self._offset_of_max_timestamp)
            self._bytes_since_last_index_entry = 0
        self._bytes_since_last_index_entry += size

    def append(self, data: memoryview, batches: Iterable[IndexedBatch]) -> None:
        """Write ``data`` (whole batches, offsets already assigned) in one write, then
        index each batch; positions in ``batches`` are relative to ``data``."""
        start = self.size
        self.log.append(data)
        for last_offset, position, size, max_timestamp in batches:
            if self._rolling_timestamp is None and start + position == 0:
                self._rolling_timestamp = max_timestamp
            self._index_batch(last_offset, start + position, size, max_timestamp)
            self._next_offset = last_offset + 1

    def should_roll(
        self,
        config: LogConfig,
        now_ms: int,
        append_bytes: int,
        append_max_timestamp: int,
        append_last_offset: int,
    ) -> bool:
        """Kafka's roll rule: size, age (``segment.ms`` minus jitter), full indexes, or an
        offset that cannot be stored relative to the base offset."""
        size = self.log.size
        return (
            size > config.segment_bytes - append_bytes
            or (
                size > 0
                and self._time_waited_for_roll(now_ms, append_max_timestamp)
                > config.segment_ms - self.roll_jitter_ms
            )
            or self.offset_index.is_full
            or self.time_index.is_full
            or not self.can_hold(append_last_offset)
        )

    def _time_waited_for_roll(self, now_ms: int, append_max_timestamp: int) -> int:
        # Like Kafka: measured on record timestamps when the segment has them, else on
        # the wall clock since the segment was created (or loaded).
        if self._rolling_timestamp is None and self.size:
            first = self.log.read_header(0)
            self._rolling_timestamp = first.max_timestamp if first else NO_TIMESTAMP
        if self._rolling_timestamp is not None and self._rolling_timestamp >= 0:
            return append_max_timestamp - self._rolling_timestamp
        return now_ms - self.created_ms

    # -- reading -------------------------------------------------------------------------

    def translate_offset(self, offset: int, start_position: int = 0) -> BatchHeader | None:
        """The first batch whose last offset is >= ``offset``, found from the offset
        index plus a forward scan of headers; None if the segment ends before it."""
        _, position = self.offset_index.lookup(offset)
        return self.log.search_for_offset(offset, max(position, start_position))

    def read(
        self, offset: int, max_bytes: int, max_position: int, min_one_message: bool
    ) -> FileSlice | None:
        """A slice from the batch holding ``offset`` up to ``max_bytes`` and at most up
        to ``max_position``; None if the segment ends before ``offset``. A first batch
        larger than ``max_bytes`` is returned whole when ``min_one_message``, else
        nothing is (Kafka returns no partial first batch)."""
        header = self.translate_offset(offset)
        if header is None:
            return None
        if min_one_message:
            limit = max(max_bytes, header.size)
        else:
            limit = max_bytes if max_bytes >= header.size else 0
        size = max(0, min(max_position - header.position, limit))
        return self.log.slice(header.position, size)

    def find_batch_by_timestamp(self, timestamp: int, min_offset: int) -> BatchHeader | None:
        """The first batch with a max timestamp >= ``timestamp`` and a last offset >=
        ``min_offset``, found through the time index."""
        _, indexed_offset = self.time_index.lookup(timestamp)
        _, position = self.offset_index.lookup(max(indexed_offset, min_offset))
        return self.log.search_for_timestamp(timestamp, position, min_offset)

    # -- truncation, rolling, closing ------------------------------------------------------

    def truncate_to(self, offset: int) -> int:
        """Remove every batch whose last offset is >= ``offset`` (so the batch holding
        ``offset`` goes entirely). Returns the new ``next_offset`` bound for the log:
        ``offset`` or the removed batch's base offset, whichever is smaller."""
        header = self.translate_offset(offset)
        if header is None:
            return offset
        end = min(offset, header.base_offset)
        self.offset_index.truncate_to(end)
        self.time_index.truncate_to(end)
        self.log.truncate_to(header.position)
        self._load_tail()
        return end

    def resize_indexes(self) -> None:
        """Preallocate the indexes again: this segment becomes (or is) the active one."""
        self.offset_index.resize(self._max_index_size)
        self.time_index.resize(self._max_index_size)

    def _append_final_time_entry(self) -> None:
        # Kafka's roll/close rule: the time index ends with the segment's max timestamp,
        # which retention and ListOffsets read from it after a restart.
        if self._max_timestamp <= self.time_index.last_entry()[0]:
            return
        if self.time_index.entries >= self.time_index.max_entries:
            self.time_index.resize((self.time_index.entries + 1) * TimeIndex.ENTRY_SIZE)
        self.time_index.maybe_append(
            self._max_timestamp, self._offset_of_max_timestamp, skip_full_check=True
        )

    def on_become_inactive(self) -> None:
        """Called on roll (and for older segments after loading): record the final max
        timestamp and trim the indexes."""
        self._append_final_time_entry()
        self.offset_index.trim_to_valid_size()
        self.time_index.trim_to_valid_size()

    def close(self) -> None:
        """Trim the indexes and release them; the log file closes with its last user."""
        self._append_final_time_entry()
        self.offset_index.close()
        self.time_index.close()

    def rename_to_deleted(self) -> list[Path]:
        """Rename all three files to ``*.deleted`` and release the indexes; readers
        holding slices keep the log file open. Returns the new paths."""
        self.offset_index.close(trim=False)
        self.time_index.close(trim=False)
        paths = []
        for item in (self.log, self.offset_index, self.time_index):
            new_path = item.path.with_name(item.path.name + DELETED_SUFFIX)
            item.rename(new_path)
            paths.append(new_path)
        return paths

    # -- log cleaner: files renamed through .cleaned -> .swap -> final (see cleaner) ----------

    def change_file_suffixes(self, old_suffix: str, new_suffix: str) -> None:
        """Rename all three files from ``<name><old_suffix>`` to ``<name><new_suffix>``
        (Kafka's changeFileSuffixes); open mappings and handles stay valid."""
        for item in (self.log, self.offset_index, self.time_index):
            name = item.path.name
            if not name.endswith(old_suffix):
                raise ValueError(f"{item.path} does not end with {old_suffix!r}")
            item.rename(item.path.with_name(name[: len(name) - len(old_suffix)] + new_suffix))

    # -- end of log cleaner part ----------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"Segment(base_offset={self.base_offset}, size={self.size}, "
            f"next_offset={self._next_offset})"
        )
