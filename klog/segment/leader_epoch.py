"""``LeaderEpochFileCache``: which leader epoch started at which offset (Kafka's
``leader-epoch-checkpoint``), for OffsetsForLeaderEpoch and follower truncation.

Invariants (as Kafka's): entries are sorted with strictly increasing epochs *and*
strictly increasing start offsets; assigning an entry first removes every entry with an
epoch or start offset at or above the new one.

Durability: changes are made in memory. The file is rewritten atomically (with fsync)
by ``write`` -- which a flush job runs in a worker thread before the log's recovery point
moves past the new entries, and which runs on close -- so the event loop never waits for
it. After a crash, log recovery re-assigns epochs from the batches it scans (every batch
carries its partition leader epoch), which restores anything written after the last
flush. Owned by one task; ``snapshot`` hands an immutable copy to a worker thread.
"""

from __future__ import annotations

import bisect
import logging
from pathlib import Path
from typing import NamedTuple

from klog.segment.checkpoint import CorruptCheckpointError, LeaderEpochCheckpointFile

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1

_log = logging.getLogger(__name__)


class EpochEntry(NamedTuple):
    epoch: int
    start_offset: int


class LeaderEpochFileCache:
    """In-memory leader epoch history of one partition, backed by a checkpoint file."""

    def __init__(self, path: Path) -> None:
        self._file = LeaderEpochCheckpointFile(path)
        self._entries: list[EpochEntry] = []
        self._version = 0
        self._written_version = 0
        try:
            loaded = self._file.read()
        except CorruptCheckpointError as exc:
            _log.warning("ignoring %s; log recovery rebuilds what it can", exc)
            loaded = []
        for epoch, offset in loaded:
            self._assign(EpochEntry(epoch, offset))
        self._written_version = self._version

    @property
    def path(self) -> Path:
        return self._file.path

    def entries(self) -> list[EpochEntry]:
        return list(self._entries)

    @property
    def latest_epoch(self) -> int | None:
        return self._entries[-1].epoch if self._entries else None

    @property
    def dirty(self) -> bool:
        """True when memory holds changes the file does not have yet."""
        return self._version != self._written_version

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that ``epoch`` starts at ``start_offset``; True if anything changed."""
        if epoch < 0 or start_offset < 0:
            raise ValueError(f"bad leader epoch entry ({epoch}, {start_offset})")
        return self._assign(EpochEntry(epoch, start_offset))

    def _assign(self, entry: EpochEntry) -> bool:
        if self._entries:
            last = self._entries[-1]
            if entry.epoch == last.epoch and entry.start_offset >= last.start_offset:
                return False
        while self._entries and (
            self._entries[-1].epoch >= entry.epoch
            or self._entries[-1].start_offset >= entry.start_offset
        ):
            self._entries.pop()
        self._entries.append(entry)
        self._version += 1
        return True

    def epoch_for_offset(self, offset: int) -> int | None:
        """The epoch of the leader that wrote ``offset``, None if before every entry."""
        slot = bisect.bisect_right(self._entries, offset, key=lambda e: e.start_offset) - 1
        return self._entries[slot].epoch if slot >= 0 else None

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """Kafka's ``endOffsetFor``: ``(epoch, end offset)`` where the end offset is the
        start offset of the first epoch after ``requested_epoch`` (the log end offset for
        the latest epoch), and the epoch is the largest known one <= the requested one.
        ``(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`` when it cannot be answered."""
        undefined = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
        if requested_epoch == UNDEFINED_EPOCH:
            return undefined
        if self._entries and self._entries[-1].epoch == requested_epoch:
            return requested_epoch, log_end_offset
        higher = bisect.bisect_right(self._entries, requested_epoch, key=lambda e: e.epoch)
        if higher == len(self._entries):
            return undefined
        if higher == 0:
            return requested_epoch, self._entries[0].start_offset
        return self._entries[higher - 1].epoch, self._entries[higher].start_offset

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs starting at or after ``end_offset`` (the log was truncated)."""
        changed = False
        while self._entries and self._entries[-1].start_offset >= end_offset:
            self._entries.pop()
            changed = True
        if changed:
            self._version += 1

    def truncate_from_start(self, start_offset: int) -> None:
        """Forget history before ``start_offset``; the epoch in force there now starts
        at ``start_offset``."""
        slot = bisect.bisect_right(self._entries, start_offset, key=lambda e: e.start_offset)
        if slot == 0:
            return
        floor = self._entries[slot - 1]
        self._entries[:slot] = [EpochEntry(floor.epoch, start_offset)]
        if slot > 1 or floor.start_offset != start_offset:
            self._version += 1

    def clear(self) -> None:
        if self._entries:
            self._entries.clear()
            self._version += 1

    def snapshot(self) -> tuple[int, list[EpochEntry]]:
        """``(version, entries)`` to hand to ``write_snapshot`` in another thread."""
        return self._version, list(self._entries)

    def write_snapshot(self, entries: list[EpochEntry]) -> None:
        """Write ``entries`` to the checkpoint file (thread-safe: touches no state)."""
        self._file.write(entries)

    def mark_written(self, version: int) -> None:
        """Owner-side bookkeeping after a snapshot of ``version`` was written."""
        self._written_version = max(self._written_version, version)

    def write(self) -> None:
        """Write the current entries now (clean shutdown, tests)."""
        version, entries = self.snapshot()
        self.write_snapshot(entries)
        self.mark_written(version)
