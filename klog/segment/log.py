"""``Log``: one partition's log, a sequence of segments in one directory (Kafka's
UnifiedLog/LocalLog without the replication state).

Directory ``<log.dir>/<topic>-<partition>/``: segments (see ``segment``) plus
``leader-epoch-checkpoint`` and the idempotent producers' snapshots ``<offset>.snapshot``
(see ``producer_state``; taken at each roll and on close). Appends go to the last
(active) segment, which rolls on ``segment.bytes``, ``segment.ms``, a full index or an
offset that would not fit in a relative offset. Batches are stored byte for byte as
received, except that a leader append patches each batch's base offset and partition
leader epoch in place (neither is covered by the CRC); with
``message.timestamp.type=LogAppendTime`` it also stamps the max timestamp and
timestamp-type bit and recomputes that batch's CRC, as Kafka does. Reads return
``FileSlice`` regions for ``sendfile``; record data never becomes Python objects on
append or read (idempotence reads batch headers only).

Invariants: ``log_start_offset <= log_end_offset``; segments are sorted by base offset
and do not overlap; every byte in a segment file is a whole valid batch; the recovery
point never exceeds the log end offset, and everything below it is on disk.

Concurrency: synchronous and single-owner (the task that appends also reads, truncates
and runs retention). The only thing that may run elsewhere is a ``FlushJob`` (fsync of
file descriptors) in a worker thread; the owner hands it out with ``start_flush`` and
takes the result back with ``finish_flush``. ``flush`` and ``close`` block on fsync:
async callers run them in a worker thread. The log cleaner (``cleaner``) likewise only
reads inactive segments in its thread; the owner swaps its output in with
``replace_segments``.
"""

from __future__ import annotations

import bisect
import logging
import random
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import crc32c

from klog import native
from klog.segment.checkpoint import fsync_dir
from klog.segment.config import LogConfig
from klog.segment.errors import (
    CorruptBatchError,
    CrcMismatchError,
    InvalidBatchLengthError,
    InvalidRecordError,
    InvalidTxnStateError,
    KafkaStorageError,
    OffsetOutOfRangeError,
    OffsetsOutOfOrderError,
    RecordBatchTooLargeError,
    RecordTooLargeError,
    TruncatedBatchError,
    UnexpectedAppendOffsetError,
    UnsupportedMagicError,
)
from klog.segment.file_records import BatchHeader
from klog.segment.file_slice import FileHandle, FileSlice
from klog.segment.filenames import CLEANED_SUFFIX, LEADER_EPOCH_CHECKPOINT, SWAP_SUFFIX
from klog.segment.leader_epoch import EpochEntry, LeaderEpochFileCache
from klog.segment.producer_state import (
    DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    AppendOrigin,
    BatchMetadata,
    ProducerBatch,
    ProducerStateManager,
    fsync_file,
)
from klog.segment.recovery import load_log
from klog.segment.retention import RetentionPlan, SegmentStats, plan_retention
from klog.segment.segment import IndexedBatch, Segment
from klog.segment.time_index import NO_TIMESTAMP
from klog.wire import records

_log = logging.getLogger(__name__)

_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")
# producer_id, producer_epoch, base_sequence, records_count: adjacent header fields.
_PRODUCER_FIELDS = struct.Struct(">qhii")

_SCAN_ERRORS: dict[int, type[CorruptBatchError]] = {
    native.SCAN_TRUNCATED: TruncatedBatchError,
    native.SCAN_BAD_LENGTH: InvalidBatchLengthError,
    native.SCAN_BAD_MAGIC: UnsupportedMagicError,
    native.SCAN_BAD_CRC: CrcMismatchError,
}

# ListOffsets' special timestamps.
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class AppendInfo(NamedTuple):
    """What an append did (Kafka's LogAppendInfo, the parts storage knows)."""

    base_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    #: The stamped time with LogAppendTime, else -1 (Kafka's NO_TIMESTAMP).
    log_append_time: int
    log_start_offset: int
    valid_bytes: int
    batch_count: int


class TimestampAndOffset(NamedTuple):
    """A ListOffsets answer: ``timestamp`` is -1 for the earliest/latest lookups."""

    timestamp: int
    offset: int
    leader_epoch: int | None


class FlushJob:
    """fsyncs handed to a worker thread; touches no ``Log`` state while it runs."""

    def __init__(
        self,
        offset: int,
        generation: int,
        handles: list[FileHandle],
        epochs: LeaderEpochFileCache,
        epoch_snapshot: tuple[int, list[EpochEntry]] | None,
        directory: Path | None,
        dir_version: int,
        producer_snapshots: list[Path],
    ) -> None:
        self.offset = offset
        self.generation = generation
        self._handles = handles
        self._epochs = epochs
        self.epoch_snapshot = epoch_snapshot
        self._directory = directory
        self.dir_version = dir_version
        self._producer_snapshots = producer_snapshots

    def run(self) -> None:
        """Blocking: fsync the data and indexes, the producer state snapshots, then the
        epoch checkpoint and the directory. Safe to call from any thread."""
        for handle in self._handles:
            handle.fsync()
        for path in self._producer_snapshots:
            fsync_file(path)
        if self.epoch_snapshot is not None:
            self._epochs.write_snapshot(self.epoch_snapshot[1])
        if self._directory is not None:
            fsync_dir(self._directory)


class Log:
    """One partition's segments; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        config: LogConfig,
        epochs: LeaderEpochFileCache,
        segments: list[Segment],
        *,
        log_end_offset: int,
        log_start_offset: int,
        recovery_point: int,
        now_ms: int,
        on_change: Callable[[Log], None] | None,
        producer_state: ProducerStateManager,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    ) -> None:
        self.dir = directory
        self._config = config
        self.leader_epoch_cache = epochs
        self._segments = segments
        self._bases = [segment.base_offset for segment in segments]
        self._log_end_offset = log_end_offset
        self._log_start_offset = log_start_offset
        self._recovery_point = recovery_point
        self._last_flush_ms = now_ms
        self._on_change = on_change
        # Bumped whenever offsets are removed from the end, so a flush that started
        # before cannot advance the recovery point over data written after.
        self._generation = 0
        self._dir_version = 1  # unsynced directory changes exist while > _dir_synced
        self._dir_synced = 0
        self._pending_deletes: list[tuple[int, list[Path]]] = []
        self._closed = False
        self.producer_state = producer_state
        #: ``producer.id.expiration.ms``; the manager may change it at any time.
        self.producer_id_expiration_ms = producer_id_expiration_ms
        # Snapshots written at rolls, fsynced by the next flush.
        self._unsynced_snapshots: list[Path] = []

    @classmethod
    def open(
        cls,
        directory: Path | str,
        config: LogConfig | None = None,
        *,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        had_clean_shutdown: bool = False,
        now_ms: int | None = None,
        on_change: Callable[[Log], None] | None = None,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    ) -> Log:
        """Open (creating if needed) the log in ``directory``, recovering it unless
        ``had_clean_shutdown``, and rebuild its idempotent producers' state (see
        ``producer_state``; producers idle for ``producer_id_expiration_ms`` are left
        out). Blocking. ``on_change(log)`` is called after a roll, a truncation or a new
        log start offset: things its manager may want to flush or checkpoint soon."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = config or LogConfig()
        now_ms = wall_clock_ms() if now_ms is None else now_ms
        epochs = LeaderEpochFileCache(directory / LEADER_EPOCH_CHECKPOINT)
        loaded = load_log(
            directory,
            config,
            epochs,
            recovery_point=recovery_point,
            log_start_offset=log_start_offset,
            had_clean_shutdown=had_clean_shutdown,
            now_ms=now_ms,
            jitter=lambda: _jitter(config),
        )
        producer_state = ProducerStateManager(directory)
        producer_state.load(
            loaded.segments,
            loaded.log_start_offset,
            loaded.log_end_offset,
            now_ms,
            producer_id_expiration_ms,
            had_clean_shutdown=had_clean_shutdown,
        )
        return cls(
            directory,
            config,
            epochs,
            loaded.segments,
            log_end_offset=loaded.log_end_offset,
            log_start_offset=loaded.log_start_offset,
            recovery_point=loaded.recovery_point,
            now_ms=now_ms,
            on_change=on_change,
            producer_state=producer_state,
            producer_id_expiration_ms=producer_id_expiration_ms,
        )

    # -- state ---------------------------------------------------------------------------

    @property
    def config(self) -> LogConfig:
        return self._config

    def update_config(self, config: LogConfig) -> None:
        """New settings apply to the next append, roll and retention check; index sizes
        apply to segments created from now on."""
        self._config = config

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._log_end_offset

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(self._segments)

    @property
    def active_segment(self) -> Segment:
        return self._segments[-1]

    @property
    def size(self) -> int:
        """Bytes in all segment files."""
        return sum(segment.size for segment in self._segments)

    @property
    def latest_epoch(self) -> int | None:
        return self.leader_epoch_cache.latest_epoch

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    # -- appending -----------------------------------------------------------------------

    def append(
        self,
        buf: object,
        leader_epoch: int,
        now_ms: int,
        origin: AppendOrigin = AppendOrigin.COORDINATOR,
    ) -> AppendInfo:
        """Validate the batches in ``buf``, assign offsets from the log end offset, stamp
        ``leader_epoch``, and write them in one write. ``buf`` is patched in place when
        it is writable (bytes are copied once).

        Batches with a producer id are checked against the idempotent producers' state
        first (``producer_state``; ``origin`` CLIENT, a produce request, gets Kafka's
        full client checks, the default COORDINATOR only the epoch check). If a client
        batch repeats one the producer already wrote (a retry), nothing is written and
        the original batch's offsets come back, as in Kafka, with ``batch_count`` 0.
        Raises a ``CorruptBatchError`` subclass,
        ``InvalidRecordError``, ``RecordTooLargeError``, ``RecordBatchTooLargeError``,
        ``OutOfOrderSequenceError``, ``InvalidProducerEpochError``,
        ``InvalidTxnStateError`` or ``KafkaStorageError``; on error nothing is
        written."""
        view = _writable_view(buf)
        scanned = self._scan(view)
        max_size = self._config.max_message_bytes
        stamp = self._config.log_append_time
        offset = self._log_end_offset
        entries: list[IndexedBatch] = []
        max_timestamp = NO_TIMESTAMP
        offset_of_max = offset
        producer_batches: list[ProducerBatch] = []
        next_offset = offset
        for base, delta, batch_max_ts, position, size in scanned:
            if size > max_size:
                raise RecordTooLargeError(
                    f"batch at position {position} is {size} bytes, above max.message.bytes "
                    f"{max_size}"
                )
            if base != 0:
                raise InvalidRecordError(
                    f"batch at position {position} has base offset {base}; a producer's "
                    f"batches must start at 0"
                )
            producer_id, producer_epoch, sequence, count = _PRODUCER_FIELDS.unpack_from(
                view, position + records.PRODUCER_ID_POS
            )
            if count <= 0 or count != delta + 1:
                raise InvalidRecordError(
                    f"batch at position {position} has {count} records but offset deltas 0..{delta}"
                )
            if producer_id >= 0:
                if origin is AppendOrigin.CLIENT:
                    _check_client_batch(view, position, producer_id, sequence)
                timestamp = now_ms if stamp else batch_max_ts
                producer_batches.append(
                    ProducerBatch.of_batch(
                        producer_id, producer_epoch, sequence, next_offset, delta, timestamp
                    )
                )
            next_offset += delta + 1
        pending = None
        if producer_batches:
            pending = self.producer_state.prepare(producer_batches, origin)
            if isinstance(pending, BatchMetadata):
                return self._duplicate(pending)
        for _, delta, batch_max_ts, position, size in scanned:
            _INT64.pack_into(view, position + records.BASE_OFFSET_POS, offset)
            _INT32.pack_into(view, position + records.PARTITION_LEADER_EPOCH_POS, leader_epoch)
            if stamp:
                batch_max_ts = now_ms
                _stamp_log_append_time(view, position, size, now_ms)
            last = offset + delta
            if batch_max_ts > max_timestamp:
                max_timestamp, offset_of_max = batch_max_ts, last
            entries.append((last, position, size, batch_max_ts))
            offset = last + 1
        first = self._log_end_offset
        self._write(view, entries, first, offset - 1, max_timestamp, now_ms)
        if pending:
            self.producer_state.commit(pending)
        if leader_epoch >= 0 and self.leader_epoch_cache.latest_epoch != leader_epoch:
            self.leader_epoch_cache.assign(leader_epoch, first)
        return AppendInfo(
            first,
            offset - 1,
            max_timestamp,
            offset_of_max,
            now_ms if stamp else NO_TIMESTAMP,
            self._log_start_offset,
            view.nbytes,
            len(scanned),
        )

    def _duplicate(self, batch: BatchMetadata) -> AppendInfo:
        """What a retried batch gets: the offsets it was written at, and under
        LogAppendTime the time it was stamped with. (Kafka fills log_append_time with the
        stored batch's max timestamp even under CreateTime; klog answers -1 there, as
        for a first write, since clients read any other value as the broker's time.)"""
        stamped = batch.timestamp if self._config.log_append_time else NO_TIMESTAMP
        return AppendInfo(
            batch.first_offset,
            batch.last_offset,
            batch.timestamp,
            batch.last_offset,
            stamped,
            self._log_start_offset,
            0,
            0,
        )

    def append_as_follower(self, buf: object, now_ms: int | None = None) -> AppendInfo:
        """Append batches that already carry their offsets and leader epochs (from the
        leader). Offsets must start at or after the log end offset and increase; gaps are
        allowed (compacted data). ``buf`` is not modified. Raises like ``append``, plus
        ``UnexpectedAppendOffsetError`` and ``OffsetsOutOfOrderError``."""
        view = memoryview(buf).cast("B")  # type: ignore[arg-type]
        scanned = self._scan(view)
        now_ms = wall_clock_ms() if now_ms is None else now_ms
        first = scanned[0][0]
        if first < self._log_end_offset:
            raise UnexpectedAppendOffsetError(
                f"follower append starts at offset {first}, below the log end offset "
                f"{self._log_end_offset}"
            )
        entries: list[IndexedBatch] = []
        epochs: list[tuple[int, int]] = []
        producer_batches: list[ProducerBatch] = []
        max_timestamp = NO_TIMESTAMP
        offset_of_max = first
        expected = first
        for base, delta, batch_max_ts, position, size in scanned:
            last = base + delta
            if base < expected or delta < 0:
                raise OffsetsOutOfOrderError(
                    f"batch at position {position} has offsets {base}..{last}, expected them "
                    f"to start at or after {expected}"
                )
            producer_id, producer_epoch, sequence, _ = _PRODUCER_FIELDS.unpack_from(
                view, position + records.PRODUCER_ID_POS
            )
            if producer_id >= 0 and not _is_control(view, position):
                producer_batches.append(
                    ProducerBatch.of_batch(
                        producer_id, producer_epoch, sequence, base, delta, batch_max_ts
                    )
                )
            epoch = _INT32.unpack_from(view, position + records.PARTITION_LEADER_EPOCH_POS)[0]
            if epoch >= 0 and (not epochs or epochs[-1][0] != epoch):
                epochs.append((epoch, base))
            if batch_max_ts > max_timestamp:
                max_timestamp, offset_of_max = batch_max_ts, last
            entries.append((last, position, size, batch_max_ts))
            expected = last + 1
        self._write(view, entries, first, expected - 1, max_timestamp, now_ms)
        self.producer_state.apply(producer_batches)
        for epoch, base in epochs:
            self.leader_epoch_cache.assign(epoch, base)
        return AppendInfo(
            first,
            expected - 1,
            max_timestamp,
            offset_of_max,
            NO_TIMESTAMP,
            self._log_start_offset,
            view.nbytes,
            len(scanned),
        )

    def _scan(self, view: memoryview) -> list[tuple[int, int, int, int, int]]:
        batches, _, error = native.scan_batches(view)
        if error is not None:
            code, message = error
            position = batches[-1][3] + batches[-1][4] if batches else 0
            raise _SCAN_ERRORS[code](message, position)
        if not batches:
            raise InvalidRecordError("the append holds no record batches")
        if view.nbytes > self._config.segment_bytes:
            raise RecordBatchTooLargeError(
                f"append of {view.nbytes} bytes exceeds segment.bytes {self._config.segment_bytes}"
            )
        return batches

    def _write(
        self,
        view: memoryview,
        entries: list[IndexedBatch],
        first: int,
        last: int,
        max_timestamp: int,
        now_ms: int,
    ) -> None:
        segment = self.active_segment
        if segment.should_roll(self._config, now_ms, view.nbytes, max_timestamp, last):
            segment = self.roll(now_ms, max(first, self._log_end_offset))
        if not segment.can_hold(last):
            raise RecordBatchTooLargeError(
                f"offsets {first}..{last} span more than a segment can index"
            )
        segment.append(view, entries)
        self._log_end_offset = last + 1

    def roll(self, now_ms: int, base_offset: int | None = None) -> Segment:
        """Start a new active segment at ``base_offset`` (default: the log end offset).
        Rolling an empty active segment to its own base offset does nothing; otherwise,
        as in Kafka, an empty segment simply stays behind."""
        base = self._log_end_offset if base_offset is None else base_offset
        active = self.active_segment
        if base < self._log_end_offset:
            raise ValueError(
                f"cannot roll to offset {base}, below the log end {self._log_end_offset}"
            )
        if active.size == 0 and active.base_offset == base:
            return active
        active.on_become_inactive()
        # Kafka's roll snapshot: a restart reads the state at this offset instead of
        # scanning the segments before it.
        self._unsynced_snapshots.append(self.producer_state.take_snapshot(base))
        segment = Segment.create(self.dir, base, self._config, now_ms, _jitter(self._config))
        self._segments.append(segment)
        self._bases.append(base)
        self._dir_version += 1
        self._changed()
        return segment

    # -- reading -------------------------------------------------------------------------

    def _segment_index(self, offset: int) -> int:
        """Index of the segment whose range holds ``offset`` (0 if below all)."""
        return max(0, bisect.bisect_right(self._bases, offset) - 1)

    def read(
        self,
        offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        min_one_message: bool = True,
    ) -> FileSlice:
        """Bytes of one segment from the batch holding ``offset``: up to ``max_bytes``
        (the last batch may be cut short, as in Kafka), never reaching the batch that
        holds ``max_offset`` (e.g. the high watermark) or the log end. A first batch
        larger than ``max_bytes`` comes whole when ``min_one_message``, else not at all.
        An offset at or past the bound gives an empty slice. Raises
        ``OffsetOutOfRangeError`` outside ``[log_start_offset, log_end_offset]``."""
        if not self._log_start_offset <= offset <= self._log_end_offset:
            raise OffsetOutOfRangeError(
                f"offset {offset} is outside [{self._log_start_offset}, "
                f"{self._log_end_offset}] in {self.dir.name}"
            )
        bound = (
            self._log_end_offset if max_offset is None else min(max_offset, self._log_end_offset)
        )
        if offset >= bound:
            return self._empty_slice()
        bound_index, bound_position = len(self._segments) - 1, self.active_segment.size
        if bound < self._log_end_offset:
            bound_index = self._segment_index(bound)
            header = self._segments[bound_index].translate_offset(bound)
            if header is not None:
                bound_position = header.position
            else:
                bound_position = self._segments[bound_index].size
        for index in range(self._segment_index(offset), bound_index + 1):
            segment = self._segments[index]
            max_position = bound_position if index == bound_index else segment.size
            found = segment.read(offset, max_bytes, max_position, min_one_message)
            if found is not None:
                return found
        return self._empty_slice()

    def _empty_slice(self) -> FileSlice:
        active = self.active_segment
        return active.log.slice(active.size, 0)

    def offset_for_timestamp(self, timestamp: int) -> TimestampAndOffset | None:
        """ListOffsets: the first record with a timestamp >= ``timestamp`` (None if
        there is none), or for the special values: -1 latest (log end offset), -2
        earliest (log start offset), -3 the record with the largest timestamp, -4
        earliest local (same as -2 here)."""
        epochs = self.leader_epoch_cache
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            start = self._log_start_offset
            return TimestampAndOffset(NO_TIMESTAMP, start, epochs.epoch_for_offset(start))
        if timestamp == LATEST_TIMESTAMP:
            return TimestampAndOffset(NO_TIMESTAMP, self._log_end_offset, epochs.latest_epoch)
        if timestamp == MAX_TIMESTAMP:
            return self._max_timestamp_record()
        if timestamp < 0:
            raise ValueError(f"unknown special timestamp {timestamp}")
        for segment in self._segments:
            if segment.max_timestamp < timestamp:
                continue
            header = segment.find_batch_by_timestamp(timestamp, self._log_start_offset)
            while header is not None:
                found = _first_record_at_or_after(
                    segment, header, timestamp, self._log_start_offset
                )
                if found is not None:
                    return found
                header = segment.log.search_for_timestamp(
                    timestamp, header.position + header.size, self._log_start_offset
                )
        return None

    def _max_timestamp_record(self) -> TimestampAndOffset | None:
        segment = max(self._segments, key=lambda s: s.max_timestamp)
        if segment.max_timestamp < 0:
            return None
        _, position = segment.offset_index.lookup(segment.offset_of_max_timestamp)
        for header in segment.log.headers(position):
            if header.max_timestamp == segment.max_timestamp:
                return _first_record_at_or_after(segment, header, header.max_timestamp, 0)
        return None

    # -- truncation and deletion ---------------------------------------------------------

    def truncate_to(self, offset: int, now_ms: int | None = None) -> bool:
        """Remove everything at and after ``offset`` (replication: a diverged follower).
        Cuts at a batch boundary: the batch holding ``offset`` goes entirely, so the log
        end offset becomes ``offset`` or that batch's base offset. False if there was
        nothing to remove."""
        if offset < 0:
            raise ValueError(f"cannot truncate to negative offset {offset}")
        if offset >= self._log_end_offset:
            return False
        if offset < self._segments[0].base_offset:
            self.truncate_fully_and_start_at(offset, now_ms)
            return True
        now_ms = wall_clock_ms() if now_ms is None else now_ms
        while len(self._segments) > 1 and self._segments[-1].base_offset > offset:
            self._schedule_delete(self._segments.pop(), now_ms, with_snapshot=False)
            self._bases.pop()
        active = self.active_segment
        active.resize_indexes()
        end = active.truncate_to(offset)
        self._after_truncation(end, min(self._log_start_offset, end))
        # Kafka's truncateAndReload: the newest snapshot not past the new end, then the
        # headers after it.
        self.producer_state.load(
            self._segments, self._log_start_offset, end, now_ms, self.producer_id_expiration_ms
        )
        return True

    def truncate_fully_and_start_at(self, offset: int, now_ms: int | None = None) -> None:
        """Delete every segment and start empty at ``offset`` (replication: a follower
        far behind the leader's log start)."""
        if offset < 0:
            raise ValueError(f"cannot start a log at negative offset {offset}")
        now_ms = wall_clock_ms() if now_ms is None else now_ms
        for segment in self._segments:
            self._schedule_delete(segment, now_ms, with_snapshot=False)
        self._segments = [
            Segment.create(self.dir, offset, self._config, now_ms, _jitter(self._config))
        ]
        self._bases = [offset]
        self.leader_epoch_cache.clear()
        self.producer_state.truncate_fully()
        # Nothing below the new start exists, so nothing below it is unflushed.
        self._recovery_point = offset
        self._after_truncation(offset, offset)

    def _after_truncation(self, end: int, log_start_offset: int) -> None:
        self._log_end_offset = end
        self._log_start_offset = log_start_offset
        self._recovery_point = min(self._recovery_point, end)
        self._generation += 1
        self._dir_version += 1
        self.leader_epoch_cache.truncate_from_end(end)
        self._changed()

    def delete_records_before(self, offset: int, now_ms: int | None = None) -> int:
        """DeleteRecords: advance the log start offset to ``offset`` (never backwards)
        and delete the segments entirely below it, except the active one. Returns the
        log start offset. Raises ``OffsetOutOfRangeError`` past the log end offset; the
        caller checks the high watermark."""
        if offset > self._log_end_offset:
            raise OffsetOutOfRangeError(
                f"cannot delete records before {offset}: the log ends at {self._log_end_offset}"
            )
        if offset > self._log_start_offset:
            self._log_start_offset = offset
            self.leader_epoch_cache.truncate_from_start(offset)
            self._delete_oldest(self._plan(now_ms, retention=False).delete_count, now_ms)
            self._changed()
        return self._log_start_offset

    def remove_expired_producers(self, now_ms: int) -> int:
        """Forget idempotent producers idle for ``producer_id_expiration_ms`` (Kafka's
        periodic producer expiration check); returns how many."""
        return self.producer_state.remove_expired(now_ms, self.producer_id_expiration_ms)

    def _stats(self) -> list[SegmentStats]:
        return [SegmentStats(s.base_offset, s.size, s.largest_timestamp) for s in self._segments]

    def _plan(
        self, now_ms: int | None, retention: bool = True, max_offset: int | None = None
    ) -> RetentionPlan:
        config = self._config
        return plan_retention(
            self._stats(),
            log_start_offset=self._log_start_offset,
            retention_ms=config.retention_ms,
            retention_bytes=config.retention_bytes,
            delete_enabled=retention and config.delete_enabled,
            now_ms=wall_clock_ms() if now_ms is None else now_ms,
            max_offset=max_offset,
        )

    def delete_old_segments(self, now_ms: int, max_offset: int | None = None) -> RetentionPlan:
        """Apply retention (see ``retention``): delete whole old segments, never the
        active one nor any at or above ``max_offset``. Returns the plan carried out."""
        plan = self._plan(now_ms, max_offset=max_offset)
        if plan.delete_count:
            _log.info(
                "deleting %d segment(s) of %s: %s", plan.delete_count, self.dir.name, plan.reason
            )
            self._delete_oldest(plan.delete_count, now_ms)
            self._changed()
        return plan

    def _delete_oldest(self, count: int, now_ms: int | None) -> None:
        if not count:
            return
        now_ms = wall_clock_ms() if now_ms is None else now_ms
        doomed = self._segments[:count]
        del self._segments[:count]
        del self._bases[:count]
        for segment in doomed:
            self._schedule_delete(segment, now_ms)
        self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
        self.leader_epoch_cache.truncate_from_start(self._log_start_offset)

    def _schedule_delete(self, segment: Segment, now_ms: int, with_snapshot: bool = True) -> None:
        """Rename the segment's files (and, unless ``with_snapshot`` is False because the
        caller's truncation deletes snapshots at once, as Kafka's does, its producer
        state snapshot) to ``*.deleted`` for removal after ``file.delete.delay.ms``."""
        paths = segment.rename_to_deleted()
        if with_snapshot:
            snapshot = self.producer_state.remove_snapshot(segment.base_offset)
            if snapshot is not None:
                paths.append(snapshot)
        self._pending_deletes.append((now_ms + self._config.file_delete_delay_ms, paths))
        self._dir_version += 1

    def due_deletions(self, now_ms: int) -> list[Path]:
        """Files of deleted segments whose ``file.delete.delay.ms`` has passed; the
        caller removes them (in a worker thread: unlinking big files can block)."""
        due = [entry for entry in self._pending_deletes if entry[0] <= now_ms]
        if not due:
            return []
        self._pending_deletes = [entry for entry in self._pending_deletes if entry[0] > now_ms]
        return [path for _, paths in due for path in paths]

    @property
    def next_deletion_ms(self) -> int | None:
        return min((due for due, _ in self._pending_deletes), default=None)

    # -- log cleaner hook: swapping cleaned segments in (see klog.segment.cleaner) ----------

    @property
    def generation(self) -> int:
        """Bumped whenever offsets are removed from the end; work planned against one
        generation (a flush, a cleaning) must not be applied to another."""
        return self._generation

    def replace_segments(
        self,
        old: Sequence[Segment],
        new: Segment,
        generation: int,
        now_ms: int | None = None,
    ) -> None:
        """Swap the cleaned segment ``new`` in for ``old``, a run of consecutive inactive
        segments. ``new`` starts at ``old[0]``'s base offset, ends within ``old``'s range,
        and its files are complete, fsynced and named ``*.cleaned``.

        Kafka's crash-safe order: rename ``new`` to ``*.swap`` and fsync the directory
        (from then on recovery finishes the swap: it removes the segments the swap
        covers and renames it into place), rename ``old`` to ``*.deleted``, then ``new``
        to its final names. Raises ``ValueError`` and changes nothing when the log was
        truncated since ``generation`` or ``old`` is no longer a run of inactive
        segments of it; the caller then discards ``new``. Blocking (one directory
        fsync): the cost of keeping the swap atomic."""
        if not old:
            raise ValueError("no segments to replace")
        start = next((i for i, s in enumerate(self._segments) if s is old[0]), len(self._segments))
        end = start + len(old)
        # The active segment (the last) is never replaced.
        current = self._segments[start:end] if end < len(self._segments) else []
        if (
            generation != self._generation
            or len(current) != len(old)
            or any(a is not b for a, b in zip(current, old, strict=True))
        ):
            raise ValueError(f"{self.dir.name} changed while its segments were being cleaned")
        if new.base_offset != old[0].base_offset or new.next_offset > old[-1].next_offset:
            raise ValueError(f"{new} does not cover the range of {old[0]}..{old[-1]}")
        now_ms = wall_clock_ms() if now_ms is None else now_ms
        try:
            new.change_file_suffixes(CLEANED_SUFFIX, SWAP_SUFFIX)
            fsync_dir(self.dir)
        except OSError as exc:
            raise KafkaStorageError(f"cannot swap cleaned segments into {self.dir}: {exc}") from exc
        # The commit point has passed: from here on the new segment is the log's.
        self._segments[start:end] = [new]
        self._bases[start:end] = [new.base_offset]
        try:
            for segment in old:
                self._schedule_delete(segment, now_ms)
            new.change_file_suffixes(SWAP_SUFFIX, "")
        except OSError as exc:
            raise KafkaStorageError(
                f"swapped cleaned segments into {self.dir} but could not rename their files "
                f"(recovery finishes this at the next start): {exc}"
            ) from exc
        finally:
            self._changed()

    # -- flushing ------------------------------------------------------------------------

    def flush_due(self, now_ms: int) -> bool:
        """True when the flush policy (or a roll, or a leader epoch change) wants an
        fsync: ``flush.messages`` unflushed offsets, ``flush.ms`` since the last flush,
        or segments rolled since the recovery point."""
        unflushed = self._log_end_offset - self._recovery_point
        config = self._config
        return (
            (config.flush_messages is not None and unflushed >= config.flush_messages)
            or (
                config.flush_ms is not None
                and unflushed > 0
                and now_ms - self._last_flush_ms >= config.flush_ms
            )
            or self._recovery_point < self.active_segment.base_offset
            or self.leader_epoch_cache.dirty
        )

    def start_flush(self) -> FlushJob:
        """A job that makes everything appended so far durable; run it (in a worker
        thread), then pass it to ``finish_flush``."""
        handles: list[FileHandle] = []
        for segment in self._segments[self._segment_index(self._recovery_point) :]:
            handles.extend(segment.flush_handles())
        epochs = self.leader_epoch_cache
        # A failed job leaves these unsynced: they only shorten a restart's scan, and a
        # torn one fails its CRC and is skipped.
        snapshots, self._unsynced_snapshots = self._unsynced_snapshots, []
        return FlushJob(
            self._log_end_offset,
            self._generation,
            handles,
            epochs,
            epochs.snapshot() if epochs.dirty else None,
            self.dir if self._dir_version > self._dir_synced else None,
            self._dir_version,
            snapshots,
        )

    def finish_flush(self, job: FlushJob, now_ms: int) -> None:
        """Record a completed ``FlushJob``: the recovery point moves up to its offset
        unless the log was truncated meanwhile."""
        if job.generation == self._generation:
            self._recovery_point = max(self._recovery_point, min(job.offset, self._log_end_offset))
        if job.epoch_snapshot is not None:
            self.leader_epoch_cache.mark_written(job.epoch_snapshot[0])
        self._dir_synced = max(self._dir_synced, job.dir_version)
        self._last_flush_ms = now_ms

    def flush(self, now_ms: int | None = None) -> None:
        """Blocking: fsync everything appended so far and advance the recovery point."""
        job = self.start_flush()
        job.run()
        self.finish_flush(job, wall_clock_ms() if now_ms is None else now_ms)

    def close(self) -> None:
        """Blocking: trim and fsync the indexes (adding the final time index entry),
        write the leader epoch checkpoint and a producer state snapshot at the log end
        (fsynced with the directory: the clean-shutdown marker will skip the scan that
        would otherwise rebuild it). Does not flush the log data: call ``flush`` first
        for a clean shutdown. Slices already handed out stay readable."""
        if self._closed:
            return
        self._closed = True
        try:
            self.producer_state.take_snapshot(self._log_end_offset, sync=True)
            fsync_dir(self.dir)
        except OSError as exc:
            # The next start scans the log instead; closing must still finish.
            _log.warning("cannot write the producer state snapshot of %s: %s", self.dir, exc)
        for segment in self._segments:
            segment.close()
        if self.leader_epoch_cache.dirty:
            self.leader_epoch_cache.write()

    def __repr__(self) -> str:
        return (
            f"Log({self.dir.name!r}, start={self._log_start_offset}, "
            f"end={self._log_end_offset}, segments={len(self._segments)})"
        )


def _jitter(config: LogConfig) -> int:
    return random.randrange(config.segment_jitter_ms) if config.segment_jitter_ms else 0


def _writable_view(buf: object) -> memoryview:
    view = memoryview(buf).cast("B")  # type: ignore[arg-type]
    if view.readonly:
        view = memoryview(bytearray(view))
    return view


def _is_control(view: memoryview, position: int) -> bool:
    attributes = _INT16.unpack_from(view, position + records.ATTRIBUTES_POS)[0]
    return bool(attributes & records.CONTROL_MASK)


def _check_client_batch(view: memoryview, position: int, producer_id: int, sequence: int) -> None:
    """Kafka's LogValidator rules for a client batch with a producer id."""
    attributes = _INT16.unpack_from(view, position + records.ATTRIBUTES_POS)[0]
    if attributes & records.CONTROL_MASK:
        raise InvalidRecordError(
            f"batch at position {position}: clients may not write control batches"
        )
    if sequence < 0:
        raise InvalidRecordError(
            f"batch at position {position} of producer {producer_id} has sequence {sequence}"
        )
    if attributes & records.TRANSACTIONAL_MASK:
        raise InvalidTxnStateError(
            f"batch at position {position} of producer {producer_id} is transactional, but no "
            f"transaction is open: klog has no transaction coordinator"
        )


def _stamp_log_append_time(view: memoryview, position: int, size: int, now_ms: int) -> None:
    attributes = _INT16.unpack_from(view, position + records.ATTRIBUTES_POS)[0]
    _INT16.pack_into(
        view, position + records.ATTRIBUTES_POS, attributes | records.TIMESTAMP_TYPE_MASK
    )
    _INT64.pack_into(view, position + records.MAX_TIMESTAMP_POS, now_ms)
    crc = crc32c.crc32c(view[position + records.ATTRIBUTES_POS : position + size])
    _UINT32.pack_into(view, position + records.CRC_POS, crc)


def _first_record_at_or_after(
    segment: Segment, header: BatchHeader, timestamp: int, min_offset: int
) -> TimestampAndOffset | None:
    """Decode one batch (ListOffsets only, never the produce/fetch path) to find its
    first record with a timestamp >= ``timestamp`` at an offset >= ``min_offset``."""
    data = segment.log.read_bytes(header.position, header.size)
    for record in records.decode_records(data):
        if record.timestamp >= timestamp and record.offset >= min_offset:
            epoch = header.partition_leader_epoch
            return TimestampAndOffset(
                record.timestamp, record.offset, epoch if epoch >= 0 else None
            )
    return None
