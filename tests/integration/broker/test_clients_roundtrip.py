"""Every client family round-trips records through klog under every compression codec.

For each of confluent-kafka, kafka-python, aiokafka and kcat, on a 1- and a 12-partition
topic: keyed records with headers and explicit timestamps (kcat: client-set timestamps,
one header set per run) are produced under each codec, then consumed from the earliest
offset, from a timestamp and from the end (only records produced after positioning come
back). Keys, values, headers, timestamps, partitions and per-partition order are
compared with what was sent and with the producer's delivery reports; the segment files
show the batches really were stored with the requested codec.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence

import kafka
import kafka.errors
import pytest

from klog.wire.compression import Compression
from tests.integration.broker.conftest import (
    CODECS,
    TIMEOUT,
    Consumed,
    Deliveries,
    Driver,
    Rec,
    segment_batches,
)

PARTITION_COUNTS = (1, 12)
FIRST_ROUND = 120
SECOND_ROUND = 24


def make_records(driver: Driver, start: int, count: int, base_ts: int) -> list[Rec]:
    """Distinct values (so each record is identifiable), 17 keys, varied headers.

    Values are compressible so that every codec actually compresses every batch.
    """
    records = []
    for i in range(start, start + count):
        key: bytes | None = f"k{i % 17}".encode()
        value: bytes | None = f"v{i:05d}-".encode() + b"x" * 300
        if driver.nulls:
            headers: tuple = (
                ()
                if i % 5 == 0
                else (("seq", str(i).encode()), ("bin", bytes([0, 255, i % 256])), ("dup", b"a"))
                + (("dup", b"b"),)
                + ((("nil", None),) if driver.null_header_values else ())
            )
            if i == 1:
                key = None
            if i == 2:
                value = None
            records.append(Rec(key, value, headers, base_ts + 10 * i))
        else:
            # kcat: one header set per run, so change it every 40 records (three runs).
            group = str(i // 40).encode()
            records.append(Rec(key, value, (("grp", group), ("dup", b"a"), ("dup", b"b"))))
    return records


def by_partition(consumed: Sequence[Consumed]) -> dict[int, list[Consumed]]:
    parts: dict[int, list[Consumed]] = defaultdict(list)
    for c in sorted(consumed, key=lambda c: (c.partition, c.offset)):
        parts[c.partition].append(c)
    return parts


def check_received(
    driver: Driver,
    sent: Sequence[Rec],
    reports: Deliveries,
    consumed: Sequence[Consumed],
    start_offsets: dict[int, int],
    sent_window: tuple[int, int],
) -> None:
    """``consumed`` is exactly ``sent``: same records, contiguous offsets from
    ``start_offsets`` in each partition, in send order, where the producer said."""
    assert len(consumed) == len(sent), f"sent {len(sent)}, consumed {len(consumed)}"
    if not driver.explicit_timestamps:
        low, high = sent_window
        stray = [c for c in consumed if not low <= c.rec.timestamp <= high]
        assert not stray, f"timestamps outside the produce window {sent_window}: {stray[:3]}"
        consumed = [Consumed(c.partition, c.offset, _untimed(c.rec)) for c in consumed]
    assert Counter(c.rec for c in consumed) == Counter(sent)

    index = {rec: i for i, rec in enumerate(sent)}
    assert len(index) == len(sent), "test records must be distinct"
    key_partition: dict[bytes, int] = {}
    for partition, records in by_partition(consumed).items():
        first = start_offsets.get(partition, 0)
        assert [c.offset for c in records] == list(range(first, first + len(records)))
        order = [index[c.rec] for c in records]
        assert order == sorted(order), f"partition {partition} out of send order: {order}"
        for c in records:
            if c.rec.key is not None:
                assert key_partition.setdefault(c.rec.key, partition) == partition, c
            if reports[index[c.rec]] is not None:
                assert reports[index[c.rec]] == (c.partition, c.offset), c


def _untimed(rec: Rec) -> Rec:
    return Rec(rec.key, rec.value, rec.headers, None)


def produce_timed(driver: Driver, topic: str, records: list[Rec], codec: str):
    before = int(time.time() * 1000)
    reports = driver.produce(topic, records, codec)
    return reports, (before, int(time.time() * 1000))


def timestamp_target(consumed: Sequence[Consumed]) -> int:
    """A timestamp two thirds into the data, 1 ms before a record's when there is room
    (so the lookup must find the first record at or after it, not an exact match)."""
    distinct = sorted({c.rec.timestamp for c in consumed})
    assert len(distinct) >= 2, f"all records share timestamp {distinct}"
    pick = max(1, len(distinct) * 2 // 3)
    chosen = distinct[pick]
    return chosen - 1 if chosen - 1 > distinct[pick - 1] else chosen


def expected_from_timestamp(consumed: Sequence[Consumed], target: int) -> list[Consumed]:
    """Kafka's rule: per partition, everything from the first record with ts >= target."""
    out = []
    for records in by_partition(consumed).values():
        first = next((i for i, c in enumerate(records) if c.rec.timestamp >= target), None)
        if first is not None:
            out.extend(records[first:])
    return out


@pytest.mark.parametrize("partitions", PARTITION_COUNTS)
@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip(driver: Driver, shared_node, topic_name: str, codec: str, partitions: int):
    topic = topic_name
    driver.create_topic(topic, partitions)
    base_ts = int(time.time() * 1000) - 3_600_000

    sent = make_records(driver, 0, FIRST_ROUND, base_ts)
    reports, window = produce_timed(driver, topic, sent, codec)
    earliest = driver.consume_earliest(topic, partitions, len(sent))
    check_received(driver, sent, reports, earliest, {}, window)
    if partitions > 1:
        assert len(by_partition(earliest)) > 1, "records did not spread over partitions"

    target = timestamp_target(earliest)
    expected = expected_from_timestamp(earliest, target)
    assert 0 < len(expected) < len(earliest)
    from_ts = driver.consume_from_timestamp(topic, partitions, target, len(expected))
    assert sorted(from_ts, key=_where) == sorted(expected, key=_where)

    ends = {p: len(records) for p, records in by_partition(earliest).items()}
    more = make_records(driver, FIRST_ROUND, SECOND_ROUND, base_ts)
    produced: dict = {}

    def produce_more() -> None:
        produced["reports"], produced["window"] = produce_timed(driver, topic, more, codec)

    new = driver.consume_new(topic, partitions, produce_more, len(more))
    check_received(driver, more, produced["reports"], new, ends, produced["window"])

    for partition, count in Counter(c.partition for c in [*earliest, *new]).items():
        ends[partition] = count
    offsets = driver.end_offsets(topic, partitions)
    assert offsets == {p: (0, ends.get(p, 0)) for p in range(partitions)}

    # librdkafka silently sends lz4 batches uncompressed to a broker that does not
    # advertise FindCoordinator (its "LZ4" feature test), so this also checks ApiVersions.
    stored = Counter(
        h.compression for p in range(partitions) for h, _ in segment_batches(shared_node, topic, p)
    )
    assert set(stored) == {Compression[codec.upper()]}, f"batches stored as {dict(stored)}"


def _where(c: Consumed) -> tuple[int, int]:
    return c.partition, c.offset


def test_empty_partitions_have_offsets_zero(driver: Driver, topic_name: str) -> None:
    """Earliest and latest of a never-written partition are both 0 (the log start offset
    equals the high watermark; it still has to be answered)."""
    driver.create_topic(topic_name, 2)
    assert driver.end_offsets(topic_name, 2) == {0: (0, 0), 1: (0, 0)}


def test_kafka_python_producer_with_default_config(shared_node, topic_name: str) -> None:
    """kafka-python 3 producers are idempotent by default: InitProducerId, then batches
    carrying its producer id and sequences."""
    producer = kafka.KafkaProducer(bootstrap_servers=shared_node.bootstrap)
    try:
        meta = producer.send(topic_name, b"value", key=b"key").get(TIMEOUT)
    finally:
        producer.close(TIMEOUT)
    assert (meta.partition, meta.offset) == (0, 0)
