"""Idempotent producers' state of one partition (Kafka's ProducerStateManager).

What it keeps: per producer id, the producer epoch and the metadata of its last five
batches (first/last sequence, first/last offset, max timestamp), read from batch
*headers* only. It decides, before an append writes anything, whether each idempotent
batch is new, a retry of one of those five (a duplicate: nothing is written and the
producer gets the original offsets back), or refused:

* an epoch older than the producer's current one: ``InvalidProducerEpochError``
  (Kafka 2.7+ answers INVALID_PRODUCER_EPOCH on produce; PRODUCER_FENCED is the
  transaction coordinator's answer);
* a newer epoch whose first sequence is not 0, or a sequence that does not continue the
  last one (``Int32.MAX`` wraps to 0): ``OutOfOrderSequenceError``;
* an unknown producer id (new, expired, or its batches deleted) is accepted at any
  sequence, as current Kafka does (KIP-360).

Those are the checks of a client's append (``AppendOrigin.CLIENT``); a coordinator
writing its own records only has its epoch checked, and batches a follower copies or
loading finds in the log are recorded unchecked, as Kafka's AppendOrigin has it.

Snapshot files ``<20-digit offset>.snapshot`` in the partition directory hold the state
as of that offset, in Kafka's version-1 layout (all big-endian)::

    version int16 (1) | crc uint32 (CRC-32C of everything after it) | count int32
    | count x (producer_id int64 | epoch int16 | last_sequence int32 | last_offset int64
               | offset_delta int32 | timestamp int64 | coordinator_epoch int32
               | current_txn_first_offset int64)

Kafka writes one entry per producer (its last batch). klog writes up to five entries per
producer, oldest batch first, so a restart keeps all five for duplicate detection;
Kafka's reader keeps the last entry of a producer id, so it still reads these files.
A snapshot is taken when a segment rolls (named by the new segment's base offset) and on
clean shutdown (at the log end). Loading takes the newest snapshot that is intact and
not past the log end, then scans the batch headers after it: at most the active segment
after an unclean stop (the last roll left a snapshot at its base), nothing after a clean
one. A log with no snapshot that was shut down cleanly (data written before klog kept
snapshots) is not scanned, as Kafka skips that upgrade case; after an unclean stop it is
scanned from the log start.

Invariants: every entry has at most five batches, all of its current epoch, oldest
first, with increasing offsets; ``prepare`` changes nothing (``commit`` applies what it
returned, after the write succeeded). Expiry (``producer.id.expiration.ms``) compares
a producer's last batch max timestamp with the clock, as Kafka does; batches deleted by
retention or DeleteRecords do not remove their producers (Kafka keeps them in memory
too, until expiry). Not shared: owned by the ``Log`` (and its task) it belongs to.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import crc32c

from klog.segment.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from klog.wire.records import (
    BATCH_HEADER_SIZE,
    CONTROL_MASK,
    LOG_OVERHEAD,
    NO_PRODUCER_EPOCH,
    NO_SEQUENCE,
)

if TYPE_CHECKING:
    from klog.segment.segment import Segment

_log = logging.getLogger(__name__)

SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_VERSION = 1
#: Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN (and the client's in-flight limit).
NUM_BATCHES_TO_RETAIN = 5
#: Kafka's default ``producer.id.expiration.ms`` (one day).
DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000
INT32_MAX = (1 << 31) - 1

_SNAPSHOT_HEAD = struct.Struct(">hIi")  # version, crc, entry count
_CRC_END = 6  # the CRC covers the bytes from here on
_SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")
# base_offset, batch_length, partition_leader_epoch, magic, crc, attributes,
# last_offset_delta, base_timestamp, max_timestamp, producer_id, producer_epoch,
# base_sequence, records_count.
_HEADER = struct.Struct(">qiibIhiqqqhii")
_DIGITS = 20


class AppendOrigin(Enum):
    """Who appends as leader, which decides the checks (Kafka's AppendOrigin): a client's
    produce request gets them all; a coordinator writing its own records only the
    epoch check."""

    CLIENT = "client"
    COORDINATOR = "coordinator"


class CorruptSnapshotError(ValueError):
    """A snapshot file does not parse or fails its CRC; loading falls back past it."""


class BatchMetadata(NamedTuple):
    """One appended batch of a producer, as duplicate detection needs it."""

    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


class ProducerBatch(NamedTuple):
    """The header fields of one batch with a producer id, at the offsets it gets."""

    producer_id: int
    epoch: int
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int

    @classmethod
    def of_batch(
        cls, producer_id: int, epoch: int, first_seq: int, first_offset: int, delta: int,
        timestamp: int,
    ) -> ProducerBatch:  # fmt: skip
        """The batch whose last offset delta is ``delta``, placed at ``first_offset``."""
        return cls(
            producer_id,
            epoch,
            first_seq,
            next_sequence(first_seq, delta),
            first_offset,
            first_offset + delta,
            timestamp,
        )


class ProducerEntry(NamedTuple):
    """A producer's epoch and its last batches of that epoch (oldest first)."""

    producer_id: int
    epoch: int
    batches: tuple[BatchMetadata, ...]
    last_timestamp: int

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    def find_duplicate(self, batch: ProducerBatch) -> BatchMetadata | None:
        """The retained batch with exactly ``batch``'s epoch and sequence range."""
        if batch.epoch != self.epoch:
            return None
        for kept in self.batches:
            if kept.first_seq == batch.first_seq and kept.last_seq == batch.last_seq:
                return kept
        return None

    def with_batch(self, batch: ProducerBatch) -> ProducerEntry:
        meta = BatchMetadata(
            batch.first_seq, batch.last_seq, batch.first_offset, batch.last_offset, batch.timestamp
        )
        # A new epoch starts a new history (Kafka's maybeUpdateProducerEpoch).
        kept = self.batches[1 - NUM_BATCHES_TO_RETAIN :] if batch.epoch == self.epoch else ()
        return ProducerEntry(self.producer_id, batch.epoch, (*kept, meta), batch.timestamp)


def next_sequence(sequence: int, increment: int) -> int:
    """``sequence + increment`` wrapping past ``Int32.MAX`` to 0 (Kafka's
    DefaultRecordBatch.incrementSequence)."""
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


def _previous_sequence(sequence: int, decrement: int) -> int:
    if sequence < decrement:
        return INT32_MAX - (decrement - sequence) + 1
    return sequence - decrement


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


def snapshot_path(directory: Path, offset: int) -> Path:
    return directory / f"{offset:0{_DIGITS}d}{SNAPSHOT_SUFFIX}"


def _parse_snapshot_name(name: str) -> int | None:
    digits, dot, rest = name.partition(".")
    if not dot or dot + rest != SNAPSHOT_SUFFIX or len(digits) != _DIGITS or not digits.isdigit():
        return None
    return int(digits)


# -- snapshot files ----------------------------------------------------------------------


def encode_snapshot(entries: Iterable[ProducerEntry]) -> bytes:
    """The snapshot file contents for ``entries`` (see the module docstring)."""
    body = bytearray()
    count = 0
    for entry in entries:
        for meta in entry.batches or (None,):
            if meta is None:  # an epoch without batches: Kafka's empty entry
                fields = (NO_SEQUENCE, -1, 0, entry.last_timestamp)
            else:
                delta = meta.last_offset - meta.first_offset
                fields = (meta.last_seq, meta.last_offset, delta, meta.timestamp)
            body += _SNAPSHOT_ENTRY.pack(entry.producer_id, entry.epoch, *fields, -1, -1)
            count += 1
    tail = struct.pack(">i", count) + body
    return struct.pack(">hI", SNAPSHOT_VERSION, crc32c.crc32c(tail)) + tail


def decode_snapshot(data: bytes) -> list[ProducerEntry]:
    """Entries of a snapshot file; raises ``CorruptSnapshotError``. Consecutive entries
    of one producer id and epoch are its batches, oldest first; otherwise a later entry
    for a producer id replaces an earlier one (Kafka's reading)."""
    if len(data) < _SNAPSHOT_HEAD.size:
        raise CorruptSnapshotError(f"{len(data)} bytes is shorter than a snapshot header")
    version, crc, count = _SNAPSHOT_HEAD.unpack_from(data)
    if version != SNAPSHOT_VERSION:
        raise CorruptSnapshotError(f"unknown snapshot version {version}")
    if count < 0 or len(data) != _SNAPSHOT_HEAD.size + count * _SNAPSHOT_ENTRY.size:
        raise CorruptSnapshotError(f"{len(data)} bytes do not hold {count} entries")
    if crc32c.crc32c(data[_CRC_END:]) != crc:
        raise CorruptSnapshotError("CRC mismatch")
    entries: dict[int, ProducerEntry] = {}
    previous = None
    for fields in _SNAPSHOT_ENTRY.iter_unpack(data[_SNAPSHOT_HEAD.size :]):
        pid, epoch, last_seq, last_offset, delta, timestamp, _, _ = fields
        meta = (
            BatchMetadata(
                _previous_sequence(last_seq, delta),
                last_seq,
                last_offset - delta,
                last_offset,
                timestamp,
            )
            if last_offset >= 0
            else None
        )
        current = entries.get(pid)
        if current is not None and previous == pid and current.epoch == epoch and meta:
            batches = (*current.batches[1 - NUM_BATCHES_TO_RETAIN :], meta)
        else:
            batches = (meta,) if meta else ()
        entries[pid] = ProducerEntry(pid, epoch, batches, timestamp)
        previous = pid
    return list(entries.values())


def _write_file(path: Path, data: bytes, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """fsync a file by path; a file removed meanwhile needs nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading batch headers from segments -------------------------------------------------


def scan_producer_batches(
    segment: Segment, start_offset: int, end_offset: int
) -> Iterator[ProducerBatch]:
    """Batches with a producer id among ``segment``'s batches whose offsets lie in
    ``[start_offset, end_offset)``, from their headers only (control batches skipped:
    without transactions they change no producer's state)."""
    header = segment.translate_offset(start_offset)
    size = segment.size
    if header is None or size == 0:
        return
    with mmap.mmap(segment.log.handle.fileno(), size, access=mmap.ACCESS_READ) as mapped:
        position = header.position
        while position + BATCH_HEADER_SIZE <= size:
            (base, length, _, _, _, attributes, delta, _, max_ts, pid, epoch, seq,
             _) = _HEADER.unpack_from(mapped, position)  # fmt: skip
            if base >= end_offset or length <= 0:
                return
            position += LOG_OVERHEAD + length
            if pid >= 0 and base >= start_offset and not attributes & CONTROL_MASK:
                last_seq = next_sequence(seq, delta)
                yield ProducerBatch(pid, epoch, seq, last_seq, base, base + delta, max_ts)


# -- the state ---------------------------------------------------------------------------


class ProducerStateManager:
    """The producer state of the partition log in ``directory``; see the module docstring."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._producers: dict[int, ProducerEntry] = {}
        self._snapshots: set[int] = set()

    @property
    def producers(self) -> dict[int, ProducerEntry]:
        """A copy of the active producers by id."""
        return dict(self._producers)

    def entry(self, producer_id: int) -> ProducerEntry | None:
        return self._producers.get(producer_id)

    @property
    def snapshot_offsets(self) -> list[int]:
        return sorted(self._snapshots)

    # -- appends ---------------------------------------------------------------------------

    def prepare(
        self, batches: Sequence[ProducerBatch], origin: AppendOrigin = AppendOrigin.CLIENT
    ) -> dict[int, ProducerEntry] | BatchMetadata:
        """Check a leader append's batches (in log order) against the state. Returns the
        retained batch a client batch duplicates (then nothing may be written), else the
        updated entries to ``commit`` once the append is written. Raises
        ``InvalidProducerEpochError`` or ``OutOfOrderSequenceError``; changes nothing."""
        client = origin is AppendOrigin.CLIENT
        updated: dict[int, ProducerEntry] = {}
        for batch in batches:
            pid = batch.producer_id
            stored = self._producers.get(pid)
            if client and stored is not None:
                duplicate = stored.find_duplicate(batch)
                if duplicate is not None:
                    return duplicate
            current = updated.get(pid, stored)
            if current is None or current.epoch == NO_PRODUCER_EPOCH:
                current = ProducerEntry(pid, NO_PRODUCER_EPOCH, (), batch.timestamp)
            else:
                _check(current, batch, client)
            updated[pid] = current.with_batch(batch)
        return updated

    def commit(self, updated: dict[int, ProducerEntry]) -> None:
        """Apply what ``prepare`` returned, after the append was written."""
        self._producers.update(updated)

    def apply(self, batches: Iterable[ProducerBatch]) -> None:
        """Record batches already in the log (a follower append, or loading) without
        checking them, as Kafka does for replicated appends."""
        producers = self._producers
        for batch in batches:
            current = producers.get(batch.producer_id)
            if current is None:
                current = ProducerEntry(batch.producer_id, NO_PRODUCER_EPOCH, (), batch.timestamp)
            producers[batch.producer_id] = current.with_batch(batch)

    def remove_expired(self, now_ms: int, expiration_ms: int) -> int:
        """Forget producers whose last batch timestamp is ``expiration_ms`` or more before
        ``now_ms``; returns how many."""
        expired = [
            pid
            for pid, entry in self._producers.items()
            if now_ms - entry.last_timestamp >= expiration_ms
        ]
        for pid in expired:
            del self._producers[pid]
        return len(expired)

    # -- snapshots -------------------------------------------------------------------------

    def take_snapshot(self, offset: int, *, sync: bool = False) -> Path:
        """Write the state as of ``offset`` (the log end offset now) to its snapshot
        file; returns the path (fsync it later unless ``sync``). Blocking file write."""
        path = snapshot_path(self.dir, offset)
        _write_file(path, encode_snapshot(self._producers.values()), sync)
        self._snapshots.add(offset)
        return path

    def remove_snapshot(self, offset: int) -> Path | None:
        """Rename the snapshot at ``offset`` (its segment is being deleted) to
        ``*.deleted``; returns the new path for the caller to remove later."""
        if offset not in self._snapshots:
            return None
        self._snapshots.discard(offset)
        path = snapshot_path(self.dir, offset)
        deleted = path.with_name(path.name + ".deleted")
        try:
            path.rename(deleted)
        except FileNotFoundError:
            return None
        return deleted

    def _delete_snapshots(self, offsets: Iterable[int]) -> None:
        for offset in list(offsets):
            snapshot_path(self.dir, offset).unlink(missing_ok=True)
            self._snapshots.discard(offset)

    # -- loading, truncation -----------------------------------------------------------------

    def load(
        self,
        segments: Sequence[Segment],
        log_start_offset: int,
        log_end_offset: int,
        now_ms: int,
        expiration_ms: int,
        *,
        had_clean_shutdown: bool = False,
    ) -> None:
        """Rebuild the state of a log holding ``segments`` (recovered, the last active)
        between the two offsets: newest usable snapshot plus a header scan after it.
        Snapshots past the log end or below its start are deleted, and so are strays
        without a segment of their base offset (a compaction merged it away), except
        the newest when it is above every segment's base (a clean shutdown's), as in
        Kafka's removeStraySnapshots. Blocking."""
        self._producers.clear()
        self._snapshots = set()
        for path in self.dir.iterdir():
            offset = _parse_snapshot_name(path.name)
            if offset is not None:
                self._snapshots.add(offset)
        bases = {segment.base_offset for segment in segments}
        strays = sorted(o for o in self._snapshots if o not in bases)
        if strays and strays[-1] > max(bases, default=-1):
            strays.pop()
        self._delete_snapshots(strays)
        self._delete_snapshots(
            [o for o in self._snapshots if o > log_end_offset or o < log_start_offset]
        )
        if not self._snapshots and had_clean_shutdown:
            return
        start = log_start_offset
        for offset in sorted(self._snapshots, reverse=True):
            path = snapshot_path(self.dir, offset)
            try:
                entries = decode_snapshot(path.read_bytes())
            except (CorruptSnapshotError, OSError) as exc:
                _log.warning("ignoring producer state snapshot %s: %s", path, exc)
                self._delete_snapshots([offset])
                continue
            self._producers = {entry.producer_id: entry for entry in entries}
            start = offset
            break
        for segment in segments:
            if segment.next_offset > start and segment.base_offset < log_end_offset:
                self.apply(scan_producer_batches(segment, start, log_end_offset))
        self.remove_expired(now_ms, expiration_ms)

    def truncate_fully(self) -> None:
        """Forget every producer and delete every snapshot (the log starts over)."""
        self._producers.clear()
        self._delete_snapshots(self._snapshots)


def _check(current: ProducerEntry, batch: ProducerBatch, check_sequence: bool) -> None:
    """Kafka's ProducerAppendInfo.checkProducerEpoch, then (for clients) checkSequence,
    for an append by a producer the partition knows."""
    pid = batch.producer_id
    if batch.epoch < current.epoch:
        raise InvalidProducerEpochError(
            f"epoch {batch.epoch} of producer {pid} at offset {batch.first_offset} is older "
            f"than its last epoch {current.epoch}"
        )
    if not check_sequence:
        return
    if batch.epoch > current.epoch:
        if batch.first_seq != 0:
            raise OutOfOrderSequenceError(
                f"producer {pid} started epoch {batch.epoch} at sequence {batch.first_seq}, "
                f"not 0 (its previous epoch was {current.epoch})"
            )
    elif not _in_sequence(current.last_seq, batch.first_seq):
        raise OutOfOrderSequenceError(
            f"producer {pid} sent sequence {batch.first_seq} at offset {batch.first_offset}; "
            f"its last sequence is {current.last_seq}"
        )
