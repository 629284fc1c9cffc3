"""The ``__cluster_metadata-0`` log: KRaft metadata records stored as Kafka record batches.

Format (Kafka's, so its tools read it): each metadata record is one Kafka record with a
null key, no headers, and as value Kafka's ``MetadataRecordSerde`` frame
(``klog.wire.versioned.encode_metadata_record``: frame version 1, record type, record
version, body). Every record is written at version 0, which every KRaft reader accepts
and which carries every field klog sets. The records of one controller decision form ONE
uncompressed batch, appended atomically and stamped with the quorum epoch as partition
leader epoch. Control batches (Raft's LeaderChange and snapshot markers) are skipped on
replay.

Commit rule: a ``Quorum`` decides when an appended batch is committed. On one node
(``SingleNodeQuorum``) a batch is committed once written and fsynced; the Raft issue
swaps in a quorum that waits for a majority, without touching the controller. Only
committed batches are replayed.

Invariants: ``append`` returns only after its batch is committed; the log holds whole
batches only (the segment layer's recovery drops a torn tail); if committing fails the
log is in an unknown state and every later ``append`` raises ``MetadataLogFailedError``
(the node must restart and replay, as Kafka's controller does on a fatal fault).

Not shared: one writer task (the controller serialises its decisions) owns it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import trio

from klog.controller.image import MetadataReplayError
from klog.segment import Log
from klog.wire import DecodeError
from klog.wire.messages import Message
from klog.wire.records import build_batch, decode_records, iter_batches
from klog.wire.versioned import decode_metadata_record, encode_metadata_record

# The version every record is written at (see the module docstring).
RECORD_VERSION = 0

# Bytes read per step on replay; a larger batch is still read whole.
_REPLAY_READ_BYTES = 1 << 20


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class MetadataLogFailedError(Exception):
    """Committing a metadata batch failed; the metadata log accepts no more appends."""


class Quorum(Protocol):
    """How metadata batches commit. ``MetadataLog`` appends, then awaits ``commit``."""

    @property
    def epoch(self) -> int:
        """The leader epoch stamped on the batches this node appends."""
        ...

    @property
    def committed_end(self) -> int:
        """Offsets below this are committed (Raft's high watermark)."""
        ...

    async def commit(self, last_offset: int) -> None:
        """Return once every offset up to ``last_offset`` is committed."""
        ...


class SingleNodeQuorum:
    """A quorum of one: committed means written and fsynced.

    At startup this node is the leader of a new epoch (one above the latest epoch in the
    log, as a single KRaft voter elects itself), and everything that survived the segment
    layer's recovery counts as committed.
    """

    def __init__(self, log: Log, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self._log = log
        self._clock_ms = clock_ms
        latest = log.latest_epoch
        self._epoch = 1 if latest is None else latest + 1
        self._committed_end = log.log_end_offset

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def committed_end(self) -> int:
        return self._committed_end

    async def commit(self, last_offset: int) -> None:
        if last_offset < self._committed_end:
            return
        job = self._log.start_flush()
        await trio.to_thread.run_sync(job.run)
        self._log.finish_flush(job, self._clock_ms())
        self._committed_end = max(self._committed_end, job.offset)


class MetadataLog:
    """Metadata records in a ``klog.segment.Log``; see the module docstring."""

    def __init__(
        self,
        log: Log,
        quorum: Quorum | None = None,
        *,
        clock_ms: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        """``quorum`` defaults to ``SingleNodeQuorum(log, clock_ms)``. ``log`` is owned
        from now on: nobody else appends to, truncates or flushes it."""
        self.log = log
        self.quorum: Quorum = quorum if quorum is not None else SingleNodeQuorum(log, clock_ms)
        self._clock_ms = clock_ms
        self._failed: BaseException | None = None

    @property
    def next_offset(self) -> int:
        """The offset the first record of the next ``append`` gets (Kafka's broker epoch
        for a RegisterBrokerRecord is this offset)."""
        return self.log.log_end_offset

    @property
    def committed_end(self) -> int:
        return self.quorum.committed_end

    def replay(self) -> Iterator[tuple[list[Message], int]]:
        """``(records, last_offset)`` for every committed batch, from the log start.
        Blocking reads (page cache): callers replay before serving. Raises
        ``MetadataReplayError`` on a record that is not a metadata record."""
        offset = self.log.log_start_offset
        end = self.quorum.committed_end
        while offset < end:
            data = self.log.read(offset, _REPLAY_READ_BYTES, max_offset=end).read_bytes()
            start = offset
            for header, batch in iter_batches(data, allow_partial=True):
                if header.next_offset > end:
                    return
                offset = header.next_offset
                if not header.is_control:
                    yield _decode_batch(batch), header.last_offset
            if offset == start:
                raise MetadataReplayError(f"no whole batch at offset {offset} of {self.log!r}")

    async def append(self, records: Sequence[Message]) -> int:
        """Write ``records`` as one batch, wait until it is committed, and return the
        offset of its last record. Raises the segment layer's errors if the write is
        refused (nothing written), ``MetadataLogFailedError`` if committing failed now
        or before."""
        if not records:
            raise ValueError("a metadata batch needs at least one record")
        if self._failed is not None:
            raise MetadataLogFailedError("an earlier metadata commit failed") from self._failed
        now_ms = self._clock_ms()
        batch = build_batch(
            [(None, encode_metadata_record(r, RECORD_VERSION), (), now_ms) for r in records]
        )
        info = self.log.append(bytearray(batch), self.quorum.epoch, now_ms)
        try:
            await self.quorum.commit(info.last_offset)
        except Exception as exc:
            self._failed = exc
            raise MetadataLogFailedError(
                f"commit of metadata offsets {info.base_offset}-{info.last_offset} failed: {exc!r}"
            ) from exc
        except BaseException as exc:  # cancelled: whether the batch commits is unknown
            self._failed = exc
            raise
        return info.last_offset


def _decode_batch(batch: memoryview) -> list[Message]:
    records = []
    for record in decode_records(batch):
        if record.value is None:
            raise MetadataReplayError(f"metadata record at offset {record.offset} has no value")
        try:
            message, _version = decode_metadata_record(record.value)
        except DecodeError as exc:
            raise MetadataReplayError(f"metadata record at offset {record.offset}: {exc}") from exc
        records.append(message)
    return records
