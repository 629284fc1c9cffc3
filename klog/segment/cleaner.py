"""Log compaction for logs whose ``cleanup.policy`` has ``compact``: Kafka's LogCleaner
(the background service), LogCleanerManager (which log, from where, up to where) and
Cleaner (one pass over one log).

Files: reads a log's inactive segments; writes each cleaned group of segments as
``<base>.log.cleaned`` with ``.index.cleaned`` and ``.timeindex.cleaned`` in the
partition directory and swaps it in through ``.swap`` (``Log.replace_segments``); keeps
``cleaner-offset-checkpoint`` per log dir (``cleaner_checkpoint``).

One pass over one log
---------------------
1. Plan (``plan_cleaning``, pure). The first dirty offset is the checkpointed one
   (clamped into ``[log start, log end]``, else the log start). The first uncleanable
   offset is the smallest of the active segment's base offset, the caller's upper bound
   (the high watermark: nothing a follower may still truncate is cleaned) and the base
   of the first dirty segment whose largest timestamp is newer than
   ``min.compaction.lag.ms``. The log is due when its dirty ratio (bytes of segments
   overlapping the dirty range over those plus the clean ones) is above
   ``min.cleanable.dirty.ratio``, when the first batch of a dirty segment is older than
   ``max.compaction.lag.ms``, or when a delete horizon seen by the previous pass has
   passed.
2. Key map (worker thread): key -> latest offset over the dirty range, batch by batch,
   stopping before a batch that would take the map past ``log.cleaner.dedupe.buffer.size``
   (estimated as key length plus ``_MAP_ENTRY_BYTES`` per key: a Python dict, not Kafka's
   hashed slots). ``end_offset`` is one past the last mapped batch (or the first
   uncleanable offset when all fit): the next pass's first dirty offset.
3. Groups (worker thread): every segment below ``end_offset``, in runs whose output
   fits ``segment.bytes`` and 2**31 relative offsets, each written into one cleaned
   segment with the base offset of the run's first segment; indexes are built by
   ``Segment.append`` with the usual rule, so they equal what appends would have built.
4. Swap (owner): ``Log.replace_segments`` per group, then the checkpoint is written.

Which records survive (records at or after ``end_offset`` always do)
--------------------------------------------------------------------
* A record whose key has a later offset in the map goes.
* A tombstone (null value) stays until its batch's delete horizon. Kafka >= 3.1's way
  (KIP-534), not the older segment-mtime one: the first pass that keeps a tombstone
  rewrites its batch with ``has_delete_horizon`` set and ``base_timestamp`` = pass time
  + ``delete.retention.ms``; a pass after that time removes it. The service remembers
  the earliest horizon it wrote so a pass runs then even without new writes (forgotten
  at restart: the tombstones then go with the next pass the dirty ratio triggers).
* Keyless records stay (Kafka refuses them on compacted topics; klog keeps what it has).
* Control batches (transaction markers) and transactional data batches are kept byte
  for byte, and transactional records never enter the key map. klog does not serve
  transactions yet; this is the safe reading: an aborted value never hides a committed
  one and no marker is lost, at the price of not compacting transactional data.
* A batch keeping all its records (and needing no horizon) is copied byte for byte; one
  losing some is rebuilt with its base offset and, as in Kafka, its last offset delta,
  codec, timestamp type, producer fields and leader epoch; one losing all disappears.
  Offsets are never renumbered: compaction leaves gaps.

Crash safety
------------
Cleaned files are complete and fsynced before ``Log.replace_segments`` renames them to
``.swap`` and fsyncs the directory: the commit point. Before it, recovery deletes the
``.cleaned`` files and the old segments stand; after it, recovery deletes the segments
whose base offsets lie in the swap's ``[base, next offset)`` and renames the swap in. A
cleaned segment ends inside its group's last segment because a run of trailing segments
that kept nothing never ends a group (it starts the next one), so a crash anywhere
leaves the log as it was after a whole number of group swaps: each group's old segments
or its new one. The exception, as in Kafka: the pass's last group (nothing follows to
carry into) or a group that kept nothing at all, ending in segments that kept nothing; a
crash inside that swap may leave some of those old segments beside the new one: records
that were superseded or expired, never a record that had to be kept.

Concurrency
-----------
The ``Log`` belongs to the trio task that appends to it and this module never mutates
it from a thread. ``CleaningJob`` is created on the owner's side from a snapshot (the
inactive segments with their sizes, the config, the log's truncation generation); its
``build_offset_map`` and ``clean_next_group`` run in a worker thread
(``trio.to_thread.run_sync``) touching only the job, the snapshotted segments' ``.log``
files (read with ``pread``, so a concurrent truncation shows as a short read, never a
SIGBUS) and the cleaned segment they create. The owner then calls
``Log.replace_segments``, which refuses if the log was truncated or those segments went
away meanwhile (the cleaned files are then discarded). Appends, reads and retention go
on during the thread work; a fetch still sending from a replaced segment keeps its file
open. Cancelling a pass asks the thread to stop at its next read and waits for it, so
no thread outlives the pass; leftovers of an interrupted pass are ``.cleaned`` files
that recovery removes.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import trio

from klog import native
from klog.segment.abstract_index import MAX_RELATIVE_OFFSET
from klog.segment.cleaner_checkpoint import CleanerOffsetCheckpoint
from klog.segment.config import LONG_MAX
from klog.segment.errors import CorruptBatchError
from klog.segment.filenames import CLEANED_SUFFIX
from klog.segment.log import Log
from klog.segment.segment import Segment
from klog.segment.time_index import NO_TIMESTAMP
from klog.wire.records import (
    LENGTH_POS,
    LOG_OVERHEAD,
    BatchHeader,
    Record,
    build_batch,
    decode_record_tuples,
    parse_batch_header,
)

_log = logging.getLogger(__name__)

_T = TypeVar("_T")
_LENGTH = struct.Struct(">i")
# Estimated bytes per key in the map besides the key itself: the bytes object header,
# the dict slot and the offset int.
_MAP_ENTRY_BYTES = 130
# Kafka accepts any log.cleaner.io.buffer.size >= 0; reads need room for a batch header.
MIN_IO_BUFFER = 1024

TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True)
class CleanerConfig:
    """Broker-wide cleaner settings (Kafka's ``log.cleaner.*``)."""

    #: ``log.cleaner.enable``
    enabled: bool = True
    #: ``log.cleaner.backoff.ms``: sleep when no log is due.
    backoff_ms: int = 15_000
    #: ``log.cleaner.dedupe.buffer.size``: memory for one pass's key map.
    dedupe_buffer_size: int = 128 * 1024 * 1024
    #: ``log.cleaner.io.buffer.size``: bytes read and written per I/O call (at least
    #: ``MIN_IO_BUFFER`` are used).
    io_buffer_size: int = 512 * 1024

    def __post_init__(self) -> None:
        if self.backoff_ms < 0:
            raise ValueError(f"log.cleaner.backoff.ms must be >= 0, got {self.backoff_ms}")
        if self.dedupe_buffer_size < 1:
            raise ValueError(
                f"log.cleaner.dedupe.buffer.size must be >= 1, got {self.dedupe_buffer_size}"
            )
        if self.io_buffer_size < 0:
            raise ValueError(f"log.cleaner.io.buffer.size must be >= 0, got {self.io_buffer_size}")


# -- planning (pure) -----------------------------------------------------------------------


class SegmentInfo(NamedTuple):
    """What planning looks at in one segment."""

    base_offset: int
    size: int
    #: What min.compaction.lag.ms compares: the max timestamp, or the file's mtime.
    largest_timestamp: int
    #: What max.compaction.lag.ms compares: the first batch's max timestamp (-1: none).
    first_batch_timestamp: int


class CleaningPlan(NamedTuple):
    """Where one log's dirty range is and whether it is due for a pass."""

    first_dirty_offset: int
    first_uncleanable_offset: int
    clean_bytes: int
    cleanable_bytes: int
    #: How far past max.compaction.lag.ms the oldest dirty batch is (0: not past).
    max_compaction_delay_ms: int
    #: Why the log is due now; None when it is not.
    reason: str | None

    @property
    def dirty_ratio(self) -> float:
        total = self.clean_bytes + self.cleanable_bytes
        return self.cleanable_bytes / total if total else 0.0

    @property
    def due(self) -> bool:
        return self.reason is not None


class CleanResult(NamedTuple):
    """What one pass did."""

    #: False when the log changed under the pass (nothing to checkpoint).
    completed: bool
    first_dirty_offset: int
    #: One past what the key map covered: the next pass's first dirty offset.
    end_offset: int
    groups_swapped: int
    segments_replaced: int
    bytes_read: int
    bytes_written: int
    records_removed: int
    #: The earliest delete horizon of the tombstones kept, if any.
    delete_horizon_ms: int | None

    @property
    def progressed(self) -> bool:
        """True if the pass swapped something in or moved the dirty range on."""
        return self.completed and (
            self.groups_swapped > 0 or self.end_offset > self.first_dirty_offset
        )


def first_dirty_offset(checkpoint: int | None, log_start_offset: int, log_end_offset: int) -> int:
    """The checkpointed offset if it lies in the log, else the log start (Kafka's reset)."""
    if checkpoint is not None and log_start_offset <= checkpoint <= log_end_offset:
        return checkpoint
    return log_start_offset


def plan_cleaning(
    segments: Sequence[SegmentInfo],
    *,
    log_start_offset: int,
    log_end_offset: int,
    checkpoint: int | None,
    upper_bound: int | None,
    now_ms: int,
    min_cleanable_dirty_ratio: float,
    min_compaction_lag_ms: int,
    max_compaction_lag_ms: int,
    delete_horizon_ms: int | None,
) -> CleaningPlan:
    """Plan a pass over a log with ``segments`` (oldest first, the last one active); see
    the module docstring. A segment covers offsets up to the next one's base."""
    first_dirty = first_dirty_offset(checkpoint, log_start_offset, log_end_offset)
    inactive = list(zip(segments[:-1], (s.base_offset for s in segments[1:]), strict=True))
    bound = segments[-1].base_offset
    if upper_bound is not None:
        bound = min(bound, upper_bound)
    if min_compaction_lag_ms > 0:
        for segment, end in inactive:
            if end > first_dirty and segment.largest_timestamp > now_ms - min_compaction_lag_ms:
                bound = min(bound, segment.base_offset)
                break
    clean_bytes = sum(s.size for s, _ in inactive if s.base_offset < first_dirty)
    dirty = [s for s, end in inactive if end > first_dirty and s.base_offset < bound]
    cleanable_bytes = sum(s.size for s in dirty) if bound > first_dirty else 0
    delay = 0
    if cleanable_bytes and max_compaction_lag_ms < LONG_MAX:
        firsts = [
            s.first_batch_timestamp
            for s, end in inactive
            if end > first_dirty and s.first_batch_timestamp > 0
        ]
        if firsts:
            delay = max(0, now_ms - max_compaction_lag_ms - min(firsts))
    total = clean_bytes + cleanable_bytes
    ratio = cleanable_bytes / total if total else 0.0
    reason = None
    if delay > 0:
        reason = f"a dirty batch is {delay} ms past max.compaction.lag.ms {max_compaction_lag_ms}"
    elif cleanable_bytes and ratio > min_cleanable_dirty_ratio:
        reason = f"dirty ratio {ratio:.3f} > min.cleanable.dirty.ratio {min_cleanable_dirty_ratio}"
    elif delete_horizon_ms is not None and delete_horizon_ms <= now_ms and inactive:
        reason = f"tombstones reached their delete horizon {delete_horizon_ms}"
    return CleaningPlan(first_dirty, bound, clean_bytes, cleanable_bytes, delay, reason)


def cleaning_plan(
    log: Log,
    *,
    checkpoint: int | None,
    upper_bound: int | None,
    now_ms: int,
    delete_horizon_ms: int | None = None,
) -> CleaningPlan:
    """``plan_cleaning`` for ``log`` (owner side: reads a few batch headers)."""
    config = log.config
    first_dirty = first_dirty_offset(checkpoint, log.log_start_offset, log.log_end_offset)
    infos = []
    for segment in log.segments:
        first_ts = NO_TIMESTAMP
        if config.max_compaction_lag_ms < LONG_MAX and segment.next_offset > first_dirty:
            header = segment.log.read_header(0)
            first_ts = header.max_timestamp if header is not None else NO_TIMESTAMP
        largest = segment.largest_timestamp if config.min_compaction_lag_ms > 0 else NO_TIMESTAMP
        infos.append(SegmentInfo(segment.base_offset, segment.size, largest, first_ts))
    return plan_cleaning(
        infos,
        log_start_offset=log.log_start_offset,
        log_end_offset=log.log_end_offset,
        checkpoint=checkpoint,
        upper_bound=upper_bound,
        now_ms=now_ms,
        min_cleanable_dirty_ratio=config.min_cleanable_dirty_ratio,
        min_compaction_lag_ms=config.min_compaction_lag_ms,
        max_compaction_lag_ms=config.max_compaction_lag_ms,
        delete_horizon_ms=delete_horizon_ms,
    )


# -- one pass (the thread part) ------------------------------------------------------------


class _Aborted(Exception):
    """The owner cancelled the pass: the thread stops at its next read."""


class _LogChanged(Exception):
    """A segment shrank under the cleaner (a truncation): the pass is abandoned."""


class _Group(NamedTuple):
    old: list[Segment]
    new: Segment


class _Source(NamedTuple):
    """A segment as snapshotted by the owner when the pass began."""

    segment: Segment
    size: int
    next_offset: int


class _Output:
    """A cleaned segment being written (``*.cleaned`` files); batches are buffered and
    appended ``flush_bytes`` at a time."""

    def __init__(self, job: CleaningJob, base_offset: int) -> None:
        self.segment = Segment.create(
            job.directory, base_offset, job.config, job.now_ms, file_suffix=CLEANED_SUFFIX
        )
        self._flush_bytes = job.io_buffer_size
        self._buffer = bytearray()
        self.size = 0

    def add(self, batch: Any) -> None:
        self._buffer += batch
        self.size += len(batch)
        if len(self._buffer) >= self._flush_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        # Scanning the output both indexes it and checks every batch written.
        batches, _, error = native.scan_batches(self._buffer)
        if error is not None:
            raise RuntimeError(f"the cleaner built an invalid batch: {error[1]}")
        entries = [(base + delta, pos, size, max_ts) for base, delta, max_ts, pos, size in batches]
        self.segment.append(memoryview(self._buffer), entries)
        self._buffer = bytearray()

    def finish(self, mtime_ns: int) -> Segment:
        """Write what is buffered, trim the indexes, keep the replaced segments' mtime
        (what retention falls back on) and fsync all three files."""
        self._flush()
        segment = self.segment
        segment.on_become_inactive()
        os.utime(segment.log.path, ns=(mtime_ns, mtime_ns))
        segment.log.fsync()
        segment.offset_index.fsync()
        segment.time_index.fsync()
        return segment


def discard_segment(segment: Segment) -> None:
    """Remove a cleaned segment that will not be swapped in."""
    segment.offset_index.close(trim=False)
    segment.time_index.close(trim=False)
    for path in (segment.log.path, segment.offset_index.path, segment.time_index.path):
        path.unlink(missing_ok=True)


class CleaningJob:
    """One pass over one log; see the module docstring for which side runs what."""

    def __init__(self, log: Log, plan: CleaningPlan, now_ms: int, config: CleanerConfig) -> None:
        self.directory = log.dir
        self.config = log.config
        self.generation = log.generation
        self.now_ms = now_ms
        self.io_buffer_size = max(config.io_buffer_size, MIN_IO_BUFFER)
        self._map_budget = config.dedupe_buffer_size
        self._first_dirty = plan.first_dirty_offset
        self._upper = plan.first_uncleanable_offset
        self._sources = [_Source(s, s.size, s.next_offset) for s in log.segments[:-1]]
        self._map: dict[bytes, int] = {}
        self.end_offset = self._first_dirty
        self._todo: list[_Source] | None = None
        self._carried: list[_Source] = []
        self._stop: Callable[[], bool] = _never
        #: A finished group the owner has not swapped in yet (discarded on failure).
        self.pending: _Group | None = None
        self.bytes_read = 0
        self.bytes_written = 0
        self.records_removed = 0
        self.groups_swapped = 0
        self.segments_replaced = 0
        self.delete_horizon_ms: int | None = None

    # -- reading -------------------------------------------------------------------------

    def _batches(self, source: _Source) -> Iterator[memoryview]:
        """Every batch of a snapshotted segment, read with pread in io-buffer chunks and
        validated (size, magic, CRC-32C)."""
        records = source.segment.log
        position = 0
        chunk = self.io_buffer_size
        while position < source.size:
            if self._stop():
                raise _Aborted
            want = min(chunk, source.size - position)
            data = records.read_bytes(position, want)
            if len(data) < want:
                raise _LogChanged(f"{records.path} shrank while being cleaned")
            batches, valid_end, error = native.scan_batches(data)
            view = memoryview(data)
            for _, _, _, start, size in batches:
                yield view[start : start + size]
            position += valid_end
            chunk = self.io_buffer_size
            if error is None:
                continue
            if error[0] != native.SCAN_TRUNCATED or position + len(data) - valid_end >= source.size:
                raise CorruptBatchError(f"{records.path}: {error[1]}", position)
            if valid_end == 0 and len(data) >= LOG_OVERHEAD:
                # One batch larger than the buffer: read exactly that batch next.
                chunk = LOG_OVERHEAD + _LENGTH.unpack_from(data, LENGTH_POS)[0]

    # -- step 2: the key map (worker thread) ---------------------------------------------

    def build_offset_map(self, stop: Callable[[], bool] = lambda: False) -> int:
        """Map key -> latest offset over the dirty range; returns ``end_offset``."""
        self._stop = stop
        end = self._upper
        used = 0
        for source in self._sources:
            if source.next_offset <= self._first_dirty:
                continue
            if source.segment.base_offset >= self._upper:
                break
            for batch in self._batches(source):
                header = parse_batch_header(batch)
                if header.last_offset < self._first_dirty:
                    continue
                if header.last_offset >= self._upper:
                    end = max(self._first_dirty, header.base_offset)
                    break
                if header.is_control or header.is_transactional:
                    continue
                keys = [
                    (offset, key)
                    for offset, _, key, _, _ in decode_record_tuples(batch)
                    if key is not None and offset >= self._first_dirty
                ]
                mapped = self._map
                cost = sum(len(key) + _MAP_ENTRY_BYTES for _, key in keys if key not in mapped)
                if self._map and used + cost > self._map_budget:
                    end = header.base_offset
                    break
                used += cost
                for offset, key in keys:
                    mapped[key] = offset
            else:
                continue
            break
        self.end_offset = end
        return end

    # -- step 3: cleaned groups (worker thread) ------------------------------------------

    def clean_next_group(self, stop: Callable[[], bool] = lambda: False) -> _Group | None:
        """Write the next changed group's cleaned segment; None when the pass is done."""
        self._stop = stop
        if self._todo is None:
            self._todo = [s for s in self._sources if s.segment.base_offset < self.end_offset]
            self._todo.reverse()  # popped from the end
        while self._todo or self._carried:
            group = self._next_group()
            if group is not None:
                self.pending = group
                return group
        return None

    def _next_group(self) -> _Group | None:
        assert self._todo is not None
        group = self._carried
        self._carried = []
        output: _Output | None = None
        kept_until = 0  # group[:kept_until] ends with a segment that kept something
        # Carried segments kept nothing of what they had.
        changed = len(group) > 0
        try:
            while self._todo:
                source = self._todo[-1]
                if group and not self._fits(group[0], output, source):
                    break
                self._todo.pop()
                group.append(source)
                for batch in self._batches(source):
                    kept = self._filter(batch)
                    if kept is not batch:
                        changed = True
                    if kept is not None:
                        if output is None:
                            output = _Output(self, group[0].segment.base_offset)
                        output.add(kept)
                        kept_until = len(group)
            if self._todo and 0 < kept_until < len(group):
                # Trailing segments that kept nothing start the next group instead, so
                # the swap's offset range covers every segment it replaces.
                self._carried = group[kept_until:]
                group = group[:kept_until]
            if not changed and len(group) == 1:
                if output is not None:
                    discard_segment(output.segment)
                return None
            if output is None:
                output = _Output(self, group[0].segment.base_offset)
            mtime = os.fstat(group[-1].segment.log.handle.fileno()).st_mtime_ns
            self.bytes_written += output.size
            return _Group([s.segment for s in group], output.finish(mtime))
        except BaseException:
            if output is not None:
                discard_segment(output.segment)
            raise

    def _fits(self, first: _Source, output: _Output | None, source: _Source) -> bool:
        written = output.size if output is not None else 0
        return (
            written + source.size <= self.config.segment_bytes
            and source.next_offset - 1 - first.segment.base_offset <= MAX_RELATIVE_OFFSET
        )

    def _filter(self, batch: memoryview) -> memoryview | bytes | None:
        """The batch as it survives: itself, a rebuilt batch, or None."""
        self.bytes_read += len(batch)
        header = parse_batch_header(batch)
        if header.is_control or header.is_transactional or header.base_offset >= self.end_offset:
            return batch
        found = decode_record_tuples(batch)
        existing = header.base_timestamp if header.has_delete_horizon else None
        expired = existing is not None and existing <= self.now_ms
        kept = []
        tombstones = False
        for record in found:
            offset, _, key, value, _ = record
            if offset < self.end_offset and key is not None:
                latest = self._map.get(key)
                if latest is not None and offset < latest:
                    continue
                if value is None:
                    if expired:
                        continue
                    tombstones = True
            kept.append(record)
        self.records_removed += len(found) - len(kept)
        horizon = existing
        if tombstones:
            if horizon is None:
                horizon = self.now_ms + self.config.delete_retention_ms
            if self.delete_horizon_ms is None or horizon < self.delete_horizon_ms:
                self.delete_horizon_ms = horizon
        if len(kept) == len(found) and horizon == existing:
            return batch
        if not kept:
            return None
        return _rebuild(header, kept, horizon)

    # -- owner side ----------------------------------------------------------------------

    def swapped(self, group: _Group) -> None:
        self.pending = None
        self.groups_swapped += 1
        self.segments_replaced += len(group.old)

    def discard_pending(self) -> None:
        if self.pending is not None:
            discard_segment(self.pending.new)
            self.pending = None

    def result(self, completed: bool) -> CleanResult:
        return CleanResult(
            completed,
            self._first_dirty,
            self.end_offset,
            self.groups_swapped,
            self.segments_replaced,
            self.bytes_read,
            self.bytes_written,
            self.records_removed,
            self.delete_horizon_ms,
        )


def _never() -> bool:
    return False


def _rebuild(header: BatchHeader, kept: list[Any], horizon: int | None) -> bytes:
    return build_batch(
        [Record(*record) for record in kept],
        base_offset=header.base_offset,
        compression=header.compression,
        timestamp_type=header.timestamp_type,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        partition_leader_epoch=header.partition_leader_epoch,
        last_offset_delta=header.last_offset_delta,
        delete_horizon_ms=horizon,
    )


async def _in_thread(fn: Callable[[Callable[[], bool]], _T]) -> _T:
    """``fn(stop)`` in a worker thread. If this task is cancelled meanwhile, ``stop()``
    turns true so the thread gives up at its next read, and the cancellation goes on
    once it has; no thread outlives the call."""
    stop = threading.Event()
    outcome: list[Any] = []

    async def stop_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stop.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_when_cancelled)
        try:
            outcome.append(await trio.to_thread.run_sync(fn, stop.is_set))
        except _Aborted:
            pass  # only after a cancellation, which the nursery re-raises
        except Exception as exc:
            # Raised after the nursery, so it is never wrapped in an exception group.
            outcome.append(exc)
        nursery.cancel_scope.cancel()
    if not outcome:
        await trio.lowlevel.checkpoint()  # delivers the cancellation that stopped the thread
        raise RuntimeError("a cleaner step stopped without being cancelled")
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]  # type: ignore[no-any-return]


async def clean_log(
    log: Log, plan: CleaningPlan, *, now_ms: int, config: CleanerConfig | None = None
) -> CleanResult:
    """One pass over ``log`` as ``plan`` says (whether or not it is due). Runs in the
    log owner's trio task; the heavy work goes to worker threads. A pass abandoned
    because the log changed returns ``completed=False``; file and data errors raise."""
    job = CleaningJob(log, plan, now_ms, config or CleanerConfig())
    try:
        await _in_thread(job.build_offset_map)
        while (group := await _in_thread(job.clean_next_group)) is not None:
            try:
                log.replace_segments(group.old, group.new, job.generation, now_ms)
            except ValueError:
                return job.result(completed=False)
            finally:
                # Past its commit point a swap stands even if renaming files failed.
                if any(segment is group.new for segment in log.segments):
                    job.swapped(group)
    except _LogChanged:
        return job.result(completed=False)
    finally:
        job.discard_pending()
    return job.result(completed=True)


# -- the service ---------------------------------------------------------------------------


class LogCleaner:
    """The background cleaner of a ``LogManager``: repeatedly cleans the most due
    compacted log (a log past ``max.compaction.lag.ms`` first, then the highest dirty
    ratio) and checkpoints it; sleeps ``log.cleaner.backoff.ms`` when none is due. A log
    whose pass fails with an error is skipped until it is forgotten or the node
    restarts (Kafka's "uncleanable" partitions)."""

    def __init__(
        self,
        config: CleanerConfig,
        log_dirs: Sequence[Path],
        logs: Callable[[], Mapping[Any, Log]],
        log_dir_of: Callable[[Any], Path],
        clock_ms: Callable[[], int],
        high_watermark: Callable[[Any], int | None] | None = None,
    ) -> None:
        self.config = config
        self._checkpoints = {Path(d): CleanerOffsetCheckpoint(Path(d)) for d in log_dirs}
        self._logs = logs
        self._log_dir_of = log_dir_of
        self._clock = clock_ms
        self._high_watermark = high_watermark
        self._horizons: dict[TopicPartitionKey, int] = {}
        self.uncleanable: set[TopicPartitionKey] = set()

    def checkpoint(self, tp: TopicPartitionKey) -> int | None:
        """The checkpointed first dirty offset of ``tp``."""
        return self._checkpoints[self._log_dir_of(tp)].get(tp)

    def plan(self, tp: TopicPartitionKey, log: Log, now_ms: int) -> CleaningPlan:
        upper = self._high_watermark(tp) if self._high_watermark is not None else None
        return cleaning_plan(
            log,
            checkpoint=self.checkpoint(tp),
            upper_bound=upper,
            now_ms=now_ms,
            delete_horizon_ms=self._horizons.get(tp),
        )

    def _most_due(self, now_ms: int) -> tuple[TopicPartitionKey, Log, CleaningPlan] | None:
        best = None
        best_key = (0, 0.0)
        for tp, log in self._logs().items():
            if not log.config.compact_enabled or tp in self.uncleanable:
                continue
            plan = self.plan(tp, log, now_ms)
            key = (plan.max_compaction_delay_ms, plan.dirty_ratio)
            if plan.due and (best is None or key > best_key):
                best, best_key = (tp, log, plan), key
        return best

    async def clean_once(self) -> CleanResult | None:
        """Clean the most due log, if any; returns what the pass did."""
        now = self._clock()
        chosen = self._most_due(now)
        if chosen is None:
            return None
        tp, log, plan = chosen
        _log.info("cleaning %s-%d: %s", tp[0], tp[1], plan.reason)
        try:
            result = await clean_log(log, plan, now_ms=now, config=self.config)
        except Exception:
            if self._logs().get(tp) is log:
                _log.exception("cleaning %s-%d failed; skipping it from now on", tp[0], tp[1])
                self.uncleanable.add(tp)
            return None
        if not result.completed or self._logs().get(tp) is not log:
            return result
        if result.delete_horizon_ms is None:
            self._horizons.pop(tp, None)
        else:
            self._horizons[tp] = result.delete_horizon_ms
        checkpoint = self._checkpoints[self._log_dir_of(tp)]
        checkpoint.set(tp, result.end_offset)
        await trio.to_thread.run_sync(checkpoint.write, checkpoint.snapshot())
        _log.info(
            "cleaned %s-%d up to offset %d: %d segment(s) into %d, %d records removed, "
            "%d -> %d bytes",
            tp[0],
            tp[1],
            result.end_offset,
            result.segments_replaced,
            result.groups_swapped,
            result.records_removed,
            result.bytes_read,
            result.bytes_written,
        )
        return result

    def forget(self, tp: TopicPartitionKey) -> None:
        """``tp``'s log was deleted: drop its checkpoint entry (written with the next
        pass), delete horizon and uncleanable mark."""
        for checkpoint in self._checkpoints.values():
            checkpoint.remove(tp)
        self._horizons.pop(tp, None)
        self.uncleanable.discard(tp)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Clean until cancelled."""
        task_status.started()
        while True:
            result = await self.clean_once()
            if result is None or not result.progressed:
                await trio.sleep(self.config.backoff_ms / 1000)
