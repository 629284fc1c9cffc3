"""``Producer``: the synchronous producer facade and its sender task.

``send()`` runs in the caller's thread: it picks the partition (explicit > murmur2 of
the key > sticky, ``klog.client.partitioner``) from the cached metadata and appends to
the ``RecordAccumulator``; it blocks only to fetch metadata for a topic it has not seen
(``max_block_ms``) or when ``buffer_memory`` is full. The sender task on the client's
trio thread turns ready batches into one ProduceRequest per leader, encodes each batch
once with ``klog.wire.build_batch`` (native codec, then compression), keeps at most
``max_in_flight_requests_per_connection`` requests in flight per broker, and completes
the futures.

Retries: a batch failing with a retriable error (or a lost connection / timeout) goes
back to the head of its partition's queue after ``retry_backoff_ms`` and is retried
until ``retries`` attempts or ``delivery_timeout_ms`` are used up; leader errors
(NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE...) also
refresh the metadata first.

Idempotence (``enable_idempotence``, on by default as in Kafka 3): the sender gets a
producer id (InitProducerId) before its first batch and gives each batch, when first
sent, the next sequence numbers of its partition; a retry resends the same batch, so the
broker writes it once even when only the answer was lost, and answers a duplicate with
the original offsets. Ordering across retries: a failed batch goes back in sequence
order, and while a partition has batches being retried it sends one batch at a time;
later batches the broker refused for the gap (OUT_OF_ORDER_SEQUENCE_NUMBER) are retried
too. A batch that fails for good after getting a sequence leaves a gap no later batch
can cross, so the sender then waits for its in-flight requests, takes a new producer
id and numbers the queued batches again (Kafka bumps the epoch for this).

Without idempotence, ``max_in_flight_requests_per_connection=1`` mutes a partition with
a batch in flight, so its records are appended in send order even across retries; with
more in flight a retried batch may land after a later one, or twice.

Delivery callbacks (``on_delivery=`` per send or for the producer) run on the client's
I/O thread: keep them short; an exception they raise is re-raised by the next
``flush()`` or ``close()`` as ``DeliveryCallbackError``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

import trio

from klog.client._cluster import Cluster
from klog.client._conn import seconds
from klog.client._loop import LoopThread
from klog.client.accumulator import (
    DeliveryCallback,
    ProducerBatch,
    RecordAccumulator,
    RecordFuture,
)
from klog.client.config import parse_bootstrap, resolve
from klog.client.errors import (
    ClientClosedError,
    DeliveryCallbackError,
    KafkaError,
    KafkaTimeoutError,
    UnknownTopicOrPartitionError,
    error_for,
)
from klog.client.partitioner import StickyPartitioner, partition_for_key
from klog.client.types import Headers, TopicPartition
from klog.wire import Compression, ErrorCode, InitProducerIdRequest, ProduceRequest, build_batch

log = logging.getLogger("klog.client")

_LEADER_ERRORS = {
    ErrorCode.NOT_LEADER_OR_FOLLOWER,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.LEADER_NOT_AVAILABLE,
    ErrorCode.FENCED_LEADER_EPOCH,
    ErrorCode.UNKNOWN_LEADER_EPOCH,
    ErrorCode.NETWORK_EXCEPTION,
    ErrorCode.REQUEST_TIMED_OUT,
}
_ACKS = {"all": -1, "-1": -1, "0": 0, "1": 1, -1: -1, 0: 0, 1: 1}
_CODECS = {
    "none": Compression.NONE,
    "gzip": Compression.GZIP,
    "snappy": Compression.SNAPPY,
    "lz4": Compression.LZ4,
    "zstd": Compression.ZSTD,
}


def _as_bytes(what: str, data: Any) -> bytes | None:
    if data is None or data.__class__ is bytes:
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, str or None, not {type(data).__name__}")


class Producer:
    """A Kafka producer. ``Producer("host:9092", acks="all", linger_ms=5)``; settings are
    Kafka's producer configs in snake_case (see ``klog.client.config.PRODUCER``)."""

    def __init__(self, bootstrap_servers: str | list[str] = "localhost:9092", **config: Any):
        self.config = resolve("Producer", config)
        self._acks = _ACKS[self.config["acks"]]
        self._codec = _CODECS[self.config["compression_type"]]
        self._on_delivery: DeliveryCallback | None = self.config["on_delivery"]
        self._max_in_flight = self.config["max_in_flight_requests_per_connection"]
        self._loop = LoopThread("klog-producer")
        self._cluster = Cluster(self._loop, parse_bootstrap(bootstrap_servers), self.config)
        self._cluster.allow_auto_create = True
        self._wake_pending = False
        self._wake: trio.Event | None = None
        self._accumulator = RecordAccumulator(
            batch_size=self.config["batch_size"],
            linger=self.config["linger_ms"] / 1000,
            buffer_memory=self.config["buffer_memory"],
            max_block=seconds(self.config["max_block_ms"]),
            max_request_size=self.config["max_request_size"],
            wakeup=self._wakeup,
            partitioner=StickyPartitioner(),
        )
        self._callback_errors: list[Exception] = []
        self._in_flight: dict[int, int] = defaultdict(int)
        self._muted: set[TopicPartition] = set()
        # Idempotence state, owned by the loop thread.
        self._idempotent: bool = self.config["enable_idempotence"]
        self._producer_id = -1
        self._producer_epoch = -1
        self._needs_new_id = self._idempotent
        self._next_sequence: dict[TopicPartition, int] = defaultdict(int)
        self._in_flight_per_partition: dict[TopicPartition, int] = defaultdict(int)
        self._retrying: dict[TopicPartition, set[ProducerBatch]] = defaultdict(set)
        self._closed = False
        self._loop.start()
        self._loop.run(self._start)

    async def _start(self) -> None:
        self._accumulator.loop_thread_ident = threading.get_ident()
        self._wake = trio.Event()
        self._loop.spawn(self._cluster.refresher)
        self._loop.spawn(self._sender)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public API ----------------------------------------------------------------------

    def send(
        self,
        topic: str,
        value: bytes | str | None = None,
        key: bytes | str | None = None,
        partition: int | None = None,
        headers: Headers | None = None,
        timestamp: int | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> RecordFuture:
        """Queue one record; returns a future whose ``result(timeout)`` is its
        ``RecordMetadata(topic, partition, offset, timestamp)``."""
        if self._closed:
            raise ClientClosedError("send() on a closed Producer")
        if self._loop._task_errors:  # the sender failed: say so instead of queueing
            self._loop.check()
        if value.__class__ is not bytes:
            value = _as_bytes("value", value)
        if key is not None and key.__class__ is not bytes:
            key = _as_bytes("key", key)
        if headers is not None:
            headers = [(str(k), _as_bytes("header value", v)) for k, v in headers]
        meta = self._cluster.topics.get(topic)
        if meta is None:
            meta = self._wait_for_topic(topic)
        num_partitions = len(meta.partitions)
        if partition is None:
            if key is not None:
                partition = partition_for_key(key, num_partitions)  # type: ignore[arg-type]
        elif not 0 <= partition < num_partitions:
            raise UnknownTopicOrPartitionError(
                detail=f"partition {partition} of {topic!r} does not exist "
                f"(it has {num_partitions})"
            )
        if timestamp is None:
            timestamp = time.time_ns() // 1_000_000
        callback = on_delivery or self._on_delivery
        return self._accumulator.append(
            topic,
            partition,
            key,  # type: ignore[arg-type]
            value,  # type: ignore[arg-type]
            headers,
            timestamp,
            callback,
            num_partitions,
            meta.available,
        )

    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued now and wait until every record sent before this call
        is delivered or failed. Raises ``KafkaTimeoutError`` after ``timeout`` seconds."""
        self._loop.check()
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = self._accumulator.begin_flush()
        try:
            for batch in pending:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not batch.event.wait(remaining):
                    raise KafkaTimeoutError(f"flush() did not complete within {timeout}s")
        finally:
            self._accumulator.end_flush()
        self._loop.check()
        self._raise_callback_errors()

    def partitions_for(self, topic: str) -> list[int]:
        """The partition ids of ``topic`` (fetching metadata if needed)."""
        meta = self._cluster.topics.get(topic) or self._wait_for_topic(topic)
        return sorted(meta.partitions)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (waiting up to ``timeout`` seconds, default forever),
        then stop. Records still undelivered at the deadline fail with
        ``KafkaTimeoutError``."""
        if self._closed:
            return
        try:
            if not self._loop.closed:
                try:
                    self.flush(timeout)
                except KafkaTimeoutError:
                    self._loop.run(self._abort, "the producer was closed before delivery")
        finally:
            self._closed = True
            self._accumulator.closing = True
            if not self._loop.closed:
                self._loop.call_soon(self._cluster.close)
            self._loop.stop()

    # -- internals -----------------------------------------------------------------------

    def _raise_callback_errors(self) -> None:
        if self._callback_errors:
            first = self._callback_errors[0]
            count = len(self._callback_errors)
            self._callback_errors.clear()
            raise DeliveryCallbackError(
                f"{count} delivery callback(s) raised; first: {first!r}"
            ) from first

    def _wait_for_topic(self, topic: str) -> Any:
        return self._loop.run(self._fetch_topic, topic)

    async def _fetch_topic(self, topic: str) -> Any:
        max_block = seconds(self.config["max_block_ms"])
        self._cluster.add_interest([topic])
        with trio.move_on_after(max_block):
            while True:
                response = await self._cluster.refresh_metadata([topic])
                meta = self._cluster.topics.get(topic)
                if meta is not None and meta.partitions:
                    return meta
                for t in response.topics:
                    if t.name == topic and t.error_code and not error_for(t.error_code).retriable:
                        raise error_for(t.error_code, f"topic {topic!r}")
                await trio.sleep(self._cluster.retry_backoff)
        raise KafkaTimeoutError(
            f"topic {topic!r} not present in metadata after {self.config['max_block_ms']} ms"
        )

    def _wakeup(self) -> None:
        """Called from any thread after an append that may have made a batch ready."""
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._loop.call_soon(self._on_wake)
            except ClientClosedError:
                self._wake_pending = False

    def _on_wake(self) -> None:
        self._wake_pending = False
        if self._wake is not None:
            self._wake.set()

    async def _abort(self, reason: str) -> None:
        error = KafkaTimeoutError(reason)
        for batch in self._accumulator.queued():
            self._complete(batch, -1, -1, error)

    async def _sender(self) -> None:
        try:
            await self._send_loop()
        except Exception as exc:
            # trio (0.25+) wraps what escapes a nursery in a group: report the error itself.
            while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]  # type: ignore[assignment]
            # Nothing will deliver these any more: fail them, so no flush() waits forever.
            failure = ClientClosedError(f"the producer's sender stopped: {exc!r}")
            failure.__cause__ = exc
            for batch in self._accumulator.incomplete():
                self._complete(batch, -1, -1, failure)
            raise exc from None

    async def _send_loop(self) -> None:
        accumulator = self._accumulator
        cluster = self._cluster
        delivery_timeout = seconds(self.config["delivery_timeout_ms"])
        async with trio.open_nursery() as nursery:
            while True:
                now = time.monotonic()
                for batch in accumulator.expire(now, delivery_timeout):
                    self._complete(batch, -1, -1, self._expired(batch))
                if self._needs_new_id and not await self._new_producer_id():
                    delay = cluster.retry_backoff
                else:
                    delay = self._send_ready(nursery, now)
                assert self._wake is not None
                with trio.move_on_after(delay):
                    await self._wake.wait()
                self._wake = trio.Event()

    def _send_ready(self, nursery: trio.Nursery, now: float) -> float:
        """Start a request per leader for the ready batches; returns how long until the
        next batch may become ready."""
        accumulator = self._accumulator
        cluster = self._cluster
        muted = self._muted
        if self._retrying:
            # A partition resending after a failure sends one batch at a time, in order.
            muted = muted | {tp for tp in self._retrying if self._in_flight_per_partition[tp]}
        ready, delay, unknown = accumulator.ready(now, cluster.leader, muted)
        if unknown:
            cluster.add_interest(unknown)
            cluster.request_update()
            delay = min(delay, cluster.retry_backoff)
        for node, tps in ready.items():
            if self._in_flight[node] >= self._max_in_flight:
                continue
            batches = accumulator.drain(tps)
            if not batches:
                continue
            self._in_flight[node] += 1
            for batch in batches:
                self._in_flight_per_partition[batch.tp] += 1
                if self._idempotent and batch.base_sequence < 0:
                    self._assign_sequence(batch)
            if self._max_in_flight == 1:
                self._muted.update(b.tp for b in batches)
            nursery.start_soon(self._send, node, batches)
        return delay

    def _assign_sequence(self, batch: ProducerBatch) -> None:
        batch.producer_id = self._producer_id
        batch.producer_epoch = self._producer_epoch
        batch.base_sequence = sequence = self._next_sequence[batch.tp]
        # Sequences wrap at Int32.MAX, as the broker expects.
        self._next_sequence[batch.tp] = (sequence + len(batch.records)) & 0x7FFFFFFF

    async def _new_producer_id(self) -> bool:
        """Get a producer id once nothing is in flight; False to try again later."""
        if any(self._in_flight.values()):
            return False
        request = InitProducerIdRequest(
            transactional_id=None,
            transaction_timeout_ms=2147483647,
            producer_id=-1,
            producer_epoch=-1,
        )
        try:
            response = await self._cluster.request_any(request)
        except KafkaError as exc:
            log.debug("InitProducerId failed: %s", exc)
            return False
        if response.error_code:
            error = error_for(response.error_code, "InitProducerId")
            if not error.retriable:
                raise error
            log.debug("InitProducerId failed: %s", error)
            return False
        self._producer_id, self._producer_epoch = response.producer_id, response.producer_epoch
        self._next_sequence.clear()
        self._retrying.clear()
        self._accumulator.clear_sequences()
        self._needs_new_id = False
        return True

    def _expired(self, batch: ProducerBatch) -> KafkaTimeoutError:
        return KafkaTimeoutError(
            f"{len(batch.records)} record(s) for {batch.tp.topic}-{batch.tp.partition} "
            f"expired after {self.config['delivery_timeout_ms']} ms (delivery_timeout_ms)"
        )

    async def _send(self, node: int, batches: list[ProducerBatch]) -> None:
        try:
            await self._send_request(node, batches)
        finally:
            self._in_flight[node] -= 1
            for batch in batches:
                self._in_flight_per_partition[batch.tp] -= 1
                self._muted.discard(batch.tp)
            if self._wake is not None:
                self._wake.set()

    async def _send_request(self, node: int, batches: list[ProducerBatch]) -> None:
        by_topic: dict[str, list[Any]] = {}
        for batch in batches:
            if batch.payload is None:
                batch.payload = build_batch(
                    batch.records,
                    compression=self._codec,
                    compression_level=self.config["compression_level"],
                    producer_id=batch.producer_id,
                    producer_epoch=batch.producer_epoch,
                    base_sequence=batch.base_sequence,
                )
            by_topic.setdefault(batch.tp.topic, []).append(
                ProduceRequest.PartitionProduceData(index=batch.tp.partition, records=batch.payload)
            )
        request = ProduceRequest(
            transactional_id=None,
            acks=self._acks,
            timeout_ms=self.config["request_timeout_ms"],
            topic_data=[
                ProduceRequest.TopicProduceData(name=topic, partition_data=parts)
                for topic, parts in by_topic.items()
            ],
        )
        try:
            conn = await self._cluster.connection(node)
            response = await conn.request(request, expect_response=self._acks != 0)
        except KafkaError as exc:
            self._cluster.request_update()
            for batch in batches:
                self._retry_or_fail(batch, exc)
            return
        if response is None:
            for batch in batches:
                self._complete(batch, -1, -1, None)
            return
        results = {(t.name, p.index): p for t in response.responses for p in t.partition_responses}
        for batch in batches:
            result = results.get(batch.tp)
            if result is None:
                self._complete(
                    batch, -1, -1, error_for(ErrorCode.UNKNOWN_SERVER_ERROR, "no answer")
                )
            elif result.error_code == ErrorCode.DUPLICATE_SEQUENCE_NUMBER:
                # A broker that does not keep the original offsets says only "written".
                self._complete(batch, -1, -1, None)
            elif result.error_code:
                detail = f"{batch.tp.topic}-{batch.tp.partition}"
                if result.error_message:
                    detail += f": {result.error_message}"
                error = error_for(result.error_code, detail)
                if result.error_code in _LEADER_ERRORS:
                    self._cluster.request_update()
                self._retry_or_fail(
                    batch,
                    error,
                    error.retriable
                    or (
                        result.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
                        and self._behind_a_gap(batch)
                    ),
                )
            else:
                self._complete(batch, result.base_offset, result.log_append_time_ms, None)

    def _retry_or_fail(
        self, batch: ProducerBatch, error: KafkaError, retriable: bool | None = None
    ) -> None:
        """Resend ``batch`` later if ``retriable`` (default: the error's own verdict) and
        it has attempts and time left, else fail it with ``error``."""
        now = time.monotonic()
        retry_at = now + self._cluster.retry_backoff
        in_time = retry_at < batch.created + seconds(self.config["delivery_timeout_ms"])
        if retriable is None:
            retriable = error.retriable
        if retriable and batch.attempts < self.config["retries"] and in_time:
            log.debug("retrying %s after %s", batch.tp, error)
            if batch.base_sequence >= 0:
                self._retrying[batch.tp].add(batch)
            self._accumulator.reenqueue(batch, retry_at)
        else:
            self._complete(batch, -1, -1, error)

    def _behind_a_gap(self, batch: ProducerBatch) -> bool:
        """True when the broker refused ``batch`` for a sequence gap this producer made:
        an earlier batch of its partition is being resent, or failed for good (then a new
        producer id is coming, under which the batch is sent again)."""
        if self._needs_new_id or batch.producer_id != self._producer_id:
            return True
        return any(
            0 <= other.base_sequence < batch.base_sequence
            for other in self._retrying.get(batch.tp, ())
        )

    def _complete(
        self, batch: ProducerBatch, base_offset: int, append_time: int, error: KafkaError | None
    ) -> None:
        retrying = self._retrying.get(batch.tp)
        if retrying is not None:
            retrying.discard(batch)
            if not retrying:
                del self._retrying[batch.tp]
        if error is not None and batch.base_sequence >= 0 and self._idempotent:
            # Its sequences are used up without a write: no later batch of the partition
            # can be accepted under this producer id.
            self._needs_new_id = True
        self._callback_errors.extend(batch.complete(base_offset, append_time, error))
        self._accumulator.completed(batch)
