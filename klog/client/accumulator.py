"""The producer's record accumulator: per-partition batches waiting to be sent.

``send()`` (any user thread) appends records to the last open batch of their partition
under one lock; the sender task (the client's trio thread) asks which partitions are
ready (``ready``), takes their head batches (``drain``), puts retried batches back at
the head (``reenqueue``) and completes them. A batch closes to appends when it reaches
``batch_size`` or is drained, and is ready when closed, older than ``linger_ms``, when
a flush is in progress, or when another batch waits behind it. Records are kept as the
``(key, value, headers, timestamp)`` tuples ``klog.wire.build_batch`` takes, and encoded
once, by the sender, with the native codec.

Memory: the estimated bytes of unsent records are bounded by ``buffer_memory``; an
append beyond it blocks (up to ``max_block_ms``) until completions free space.

``RecordFuture`` is what ``send()`` returns: one small object per record pointing at its
batch, whose completion (one ``threading.Event`` per batch) resolves all its records.
Shared between the user threads and the loop thread; every mutable field is guarded by
``lock``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from klog.client.errors import KafkaError, KafkaTimeoutError, MessageTooLargeError
from klog.client.partitioner import StickyPartitioner
from klog.client.types import Headers, RecordMetadata, TopicPartition

log = logging.getLogger("klog.client")

# Upper bound of a v2 record's framing around key and value (length, attributes,
# timestamp and offset deltas, key/value lengths, header count), as Kafka estimates it.
RECORD_OVERHEAD = 21
BATCH_OVERHEAD = 61

DeliveryCallback = Callable[[RecordMetadata, "KafkaError | None"], Any]
# Guards the hand-over of a batch's callback list at completion (see add_callback).
_CALLBACKS_LOCK = threading.Lock()


def record_size(key: bytes | None, value: bytes | None, headers: Headers | None) -> int:
    size = RECORD_OVERHEAD
    if key is not None:
        size += len(key)
    if value is not None:
        size += len(value)
    if headers:
        for name, hvalue in headers:
            size += len(name) + (len(hvalue) if hvalue is not None else 0) + 10
    return size


class ProducerBatch:
    """Records for one partition, sent (and retried) as one record batch."""

    __slots__ = (
        "attempts",
        "base_offset",
        "base_sequence",
        "callbacks",
        "closed",
        "created",
        "error",
        "event",
        "log_append_time",
        "payload",
        "producer_epoch",
        "producer_id",
        "records",
        "retry_at",
        "size",
        "tp",
    )

    def __init__(self, tp: TopicPartition, now: float) -> None:
        self.tp = tp
        self.records: list[tuple[Any, Any, Any, int]] = []
        self.size = BATCH_OVERHEAD
        self.created = now
        self.closed = False
        self.attempts = 0
        self.retry_at = 0.0
        self.payload: bytes | None = None
        # The idempotent producer's identity and first sequence, fixed at the first send
        # so that every retry is the same batch to the broker; -1 when not assigned.
        self.producer_id = -1
        self.producer_epoch = -1
        self.base_sequence = -1
        # None once completed: later callbacks run at once in the thread adding them.
        self.callbacks: list[tuple[int, DeliveryCallback]] | None = []
        self.event = threading.Event()
        self.base_offset = -1
        self.log_append_time = -1
        self.error: KafkaError | None = None

    def metadata(self, index: int) -> RecordMetadata:
        offset = self.base_offset + index if self.base_offset >= 0 else -1
        ts = self.log_append_time if self.log_append_time >= 0 else self.records[index][3]
        return RecordMetadata(self.tp.topic, self.tp.partition, offset, ts)

    def complete(
        self, base_offset: int, log_append_time: int, error: KafkaError | None
    ) -> list[Exception]:
        """Resolve every record; returns the exceptions raised by callbacks."""
        self.base_offset = base_offset
        self.log_append_time = log_append_time
        self.error = error
        self.payload = None
        self.event.set()
        with _CALLBACKS_LOCK:
            callbacks, self.callbacks = self.callbacks, None
        failures = []
        for index, callback in callbacks or ():
            try:
                callback(self.metadata(index), error)
            except Exception as exc:
                failures.append(exc)
        return failures


class RecordFuture:
    """The pending result of one ``send()``."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: ProducerBatch, index: int) -> None:
        self._batch = batch
        self._index = index

    def done(self) -> bool:
        return self._batch.event.is_set()

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait for delivery; returns where the record landed or raises its error."""
        batch = self._batch
        if not batch.event.wait(timeout):
            raise KafkaTimeoutError(f"record to {batch.tp} not delivered within {timeout}s")
        if batch.error is not None:
            raise batch.error
        return batch.metadata(self._index)

    def exception(self, timeout: float | None = None) -> KafkaError | None:
        batch = self._batch
        if not batch.event.wait(timeout):
            raise KafkaTimeoutError(f"record to {batch.tp} not delivered within {timeout}s")
        return batch.error

    def add_callback(self, callback: DeliveryCallback) -> None:
        """``callback(metadata, error)`` once the record is delivered or failed; runs
        now (in this thread) if that already happened, else on the client's I/O thread."""
        batch = self._batch
        with _CALLBACKS_LOCK:
            if batch.callbacks is not None:
                batch.callbacks.append((self._index, callback))
                return
        callback(batch.metadata(self._index), batch.error)


class RecordAccumulator:
    def __init__(
        self,
        *,
        batch_size: int,
        linger: float,
        buffer_memory: int,
        max_block: float,
        max_request_size: int,
        wakeup: Callable[[], None],
        partitioner: StickyPartitioner | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.batch_size = batch_size
        self.linger = linger
        self.buffer_memory = buffer_memory
        self.max_block = max_block
        self.max_request_size = max_request_size
        self.lock = threading.Lock()
        self._space = threading.Condition(self.lock)
        self._wakeup = wakeup
        self._partitioner = partitioner or StickyPartitioner()
        self._clock = clock
        self._deques: dict[TopicPartition, deque[ProducerBatch]] = {}
        # (topic, partition or None for sticky) -> the batch its last record went to.
        self._open: dict[tuple[str, int | None], ProducerBatch] = {}
        # The sender's thread, which must never block waiting for buffer space.
        self.loop_thread_ident: int | None = None
        self._incomplete: set[ProducerBatch] = set()
        self._buffered = 0
        self._flushing = 0
        self.closing = False

    # -- user side -----------------------------------------------------------------------

    def append(
        self,
        topic: str,
        partition: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        timestamp: int,
        callback: DeliveryCallback | None,
        num_partitions: int,
        available: Iterable[int] = (),
    ) -> RecordFuture:
        """Add one record; ``partition=None`` picks the sticky partition (KIP-480)."""
        if key is None and headers is None and value is not None:
            size = RECORD_OVERHEAD + len(value)
        else:
            size = record_size(key, value, headers)
        with self.lock:
            # Fast path: room in the open batch this (topic, partition) last appended to.
            batch = self._open.get((topic, partition))
            if (
                batch is not None
                and not batch.closed
                and batch.size + size <= self.batch_size
                and self._buffered + size <= self.buffer_memory
            ):
                records = batch.records
                index = len(records)
                records.append((key, value, headers, timestamp))
                batch.size += size
                self._buffered += size
                if callback is not None:
                    batch.callbacks.append((index, callback))  # type: ignore[union-attr]
                if batch.size < self.batch_size:
                    return RecordFuture(batch, index)
                batch.closed = True
            else:
                batch, index = self._append_slow(
                    topic,
                    partition,
                    key,
                    value,
                    headers,
                    timestamp,
                    callback,
                    size,
                    num_partitions,
                    available,
                )
        self._wakeup()
        return RecordFuture(batch, index)

    def _append_slow(
        self,
        topic: str,
        partition: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        timestamp: int,
        callback: DeliveryCallback | None,
        size: int,
        num_partitions: int,
        available: Iterable[int],
    ) -> tuple[ProducerBatch, int]:
        """Append under ``lock`` when a new batch may be needed; the caller wakes the
        sender (a batch was created or filled)."""
        if size + BATCH_OVERHEAD > self.max_request_size:
            raise MessageTooLargeError(
                detail=f"record of about {size} bytes exceeds max_request_size "
                f"{self.max_request_size}"
            )
        if self._buffered + size > self.buffer_memory and self._buffered:
            self._wait_for_space(size)
        chosen = partition
        if chosen is None:
            chosen = self._partitioner.partition(
                topic, num_partitions, tuple(available), self._has_open_batch
            )
        tp = TopicPartition(topic, chosen)
        dq = self._deques.get(tp)
        if dq is None:
            dq = self._deques[tp] = deque()
        batch = dq[-1] if dq else None
        if batch is None or batch.closed or batch.size + size > self.batch_size:
            if batch is not None:
                batch.closed = True
            batch = ProducerBatch(tp, self._clock())
            dq.append(batch)
            self._incomplete.add(batch)
        self._open[(topic, partition)] = batch
        self._open[(topic, chosen)] = batch
        index = len(batch.records)
        batch.records.append((key, value, headers, timestamp))
        batch.size += size
        if batch.size >= self.batch_size:
            batch.closed = True
        if callback is not None:
            batch.callbacks.append((index, callback))  # type: ignore[union-attr]
        self._buffered += size
        return batch, index

    def _has_open_batch(self, topic: str, partition: int) -> bool:
        dq = self._deques.get(TopicPartition(topic, partition))
        return bool(dq) and not dq[-1].closed

    def _wait_for_space(self, size: int) -> None:
        if threading.get_ident() == self.loop_thread_ident:
            raise KafkaTimeoutError(
                "buffer_memory is full and send() was called from a delivery callback, "
                "which cannot wait for the sender"
            )
        self._wakeup()
        deadline = time.monotonic() + self.max_block
        while self._buffered + size > self.buffer_memory and self._buffered:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closing:
                raise KafkaTimeoutError(
                    f"buffer_memory ({self.buffer_memory} bytes) stayed full for "
                    f"{self.max_block:.1f}s (max_block_ms)"
                )
            self._space.wait(remaining)

    def begin_flush(self) -> list[ProducerBatch]:
        """Make every batch ready now; returns the batches to wait for."""
        with self.lock:
            self._flushing += 1
            pending = list(self._incomplete)
        self._wakeup()
        return pending

    def end_flush(self) -> None:
        with self.lock:
            self._flushing -= 1

    @property
    def has_incomplete(self) -> bool:
        return bool(self._incomplete)

    # -- sender side ---------------------------------------------------------------------

    def ready(
        self,
        now: float,
        leader_of: Callable[[str, int], int],
        muted: set[TopicPartition],
    ) -> tuple[dict[int, list[TopicPartition]], float, set[str]]:
        """Partitions whose head batch can go now, grouped by leader node; the delay
        until the next batch becomes ready; topics whose leader is unknown."""
        nodes: dict[int, list[TopicPartition]] = {}
        unknown: set[str] = set()
        delay = float("inf")
        with self.lock:
            force = self._flushing > 0 or self.closing
            for tp, dq in self._deques.items():
                if not dq or tp in muted:
                    continue
                batch = dq[0]
                if batch.retry_at > now:
                    delay = min(delay, batch.retry_at - now)
                    continue
                due = batch.created + self.linger
                if force or batch.closed or len(dq) > 1 or batch.attempts or due <= now:
                    leader = leader_of(tp.topic, tp.partition)
                    if leader < 0:
                        unknown.add(tp.topic)
                    else:
                        nodes.setdefault(leader, []).append(tp)
                else:
                    delay = min(delay, due - now)
        return nodes, delay, unknown

    def drain(self, tps: list[TopicPartition]) -> list[ProducerBatch]:
        """Take the head batch of each partition, up to ``max_request_size`` in total."""
        out = []
        total = 0
        with self.lock:
            for tp in tps:
                dq = self._deques.get(tp)
                if not dq:
                    continue
                batch = dq[0]
                if out and total + batch.size > self.max_request_size:
                    break
                dq.popleft()
                batch.closed = True
                total += batch.size
                out.append(batch)
        return out

    def reenqueue(self, batch: ProducerBatch, retry_at: float) -> None:
        """Put a batch that failed with a retriable error back at the head of its queue;
        batches with sequences go back in sequence order, ahead of the batches without
        one, as the broker must see them again in that order."""
        with self.lock:
            batch.attempts += 1
            batch.retry_at = retry_at
            dq = self._deques.setdefault(batch.tp, deque())
            if batch.base_sequence < 0:
                dq.appendleft(batch)
                return
            slot = 0
            while slot < len(dq) and 0 <= dq[slot].base_sequence < batch.base_sequence:
                slot += 1
            dq.insert(slot, batch)

    def clear_sequences(self) -> None:
        """Forget the producer identity and sequences of every queued batch (the producer
        got a new id): they are assigned again, in queue order, when next drained."""
        with self.lock:
            for dq in self._deques.values():
                for batch in dq:
                    if batch.base_sequence >= 0:
                        batch.producer_id = batch.producer_epoch = batch.base_sequence = -1
                        batch.payload = None

    def expire(self, now: float, delivery_timeout: float) -> list[ProducerBatch]:
        """Remove queued batches older than ``delivery_timeout``; the caller fails them."""
        expired = []
        with self.lock:
            for dq in self._deques.values():
                while dq and dq[0].created + delivery_timeout <= now:
                    expired.append(dq.popleft())
        return expired

    def incomplete(self) -> list[ProducerBatch]:
        """Every batch not yet delivered or failed, queued or in flight."""
        with self.lock:
            return list(self._incomplete)

    def queued(self) -> list[ProducerBatch]:
        """Remove and return every queued (not in-flight) batch; used when aborting."""
        with self.lock:
            out = [b for dq in self._deques.values() for b in dq]
            for dq in self._deques.values():
                dq.clear()
        return out

    def completed(self, batch: ProducerBatch) -> None:
        """Release the memory of a finished batch (delivered or failed)."""
        with self.lock:
            if batch in self._incomplete:
                self._incomplete.discard(batch)
                self._buffered -= batch.size - BATCH_OVERHEAD
                self._space.notify_all()
