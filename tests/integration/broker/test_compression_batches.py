"""Batches real producers compress decode with klog.wire to exactly the records sent.

confluent-kafka (librdkafka: raw snappy, lz4 frames), kafka-python (xerial-framed snappy,
as the Java client writes it) and aiokafka produce to a one-partition topic under each
codec; the test then reads the partition's segment file from the node's data directory
and decodes it with ``iter_batches`` + ``decode_records``, without going through Fetch.
The broker stores batches byte for byte as produced (only base offset and leader epoch
patched), so this checks klog's record codec against each client's encoder.
"""

from __future__ import annotations

import time

import pytest

from klog.wire.compression import Compression
from klog.wire.records import TimestampType, decode_records
from tests.integration.broker.conftest import CODECS, DRIVERS, Rec, segment_batches

PRODUCERS = ("confluent", "kafka-python", "aiokafka")
ROUNDS = 3  # separate produce calls, so the log holds several batches


def make_records(driver_name: str, count: int, base_ts: int) -> list[Rec]:
    """Awkward contents: null and empty keys/values, all byte values, non-ASCII header
    names, repeated header names, large and tiny values, decreasing timestamps."""
    nullable_headers = DRIVERS[driver_name].null_header_values
    records = []
    for i in range(count):
        key = None if i % 7 == 3 else (b"" if i % 11 == 5 else f"key-{i % 13}".encode())
        if i % 9 == 4 and key is not None:  # Python clients refuse a null key and value
            value = None
        elif i % 10 == 6:
            value = b""
        elif i % 8 == 0:
            value = bytes(range(256)) * 64  # 16 KiB, compressible but not trivially
        else:
            value = f"value {i} ".encode() * (1 + i % 5)
        headers: tuple = ()
        if i % 3:
            headers = (("trace", str(i).encode()), ("ключ", "значение".encode()), ("dup", b"1"))
            headers += (("dup", b"\x00\xff"),)
            if nullable_headers and i % 2:
                headers += (("none", None),)
        # Not monotonic: a producer's timestamps are its own business.
        records.append(Rec(key, value, headers, base_ts + (i * 37) % 101))
    return records


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("producer", PRODUCERS)
def test_segment_batches_decode_to_records_sent(shared_node, topic_name, producer, codec):
    driver = DRIVERS[producer](shared_node.bootstrap)
    driver.create_topic(topic_name, 1)
    base_ts = int(time.time() * 1000) - 60_000
    sent: list[Rec] = []
    for _ in range(ROUNDS):
        batch = make_records(producer, 40, base_ts + len(sent))
        driver.produce(topic_name, batch, codec)
        sent.extend(batch)

    batches = segment_batches(shared_node, topic_name, 0)
    assert len(batches) >= ROUNDS
    decoded = []
    next_offset = 0
    for header, raw in batches:
        assert header.compression is Compression[codec.upper()], header
        assert header.timestamp_type is TimestampType.CREATE_TIME
        assert header.base_offset == next_offset
        assert not header.is_control and not header.is_transactional
        records = decode_records(raw)
        assert len(records) == header.records_count == header.last_offset_delta + 1
        assert header.max_timestamp == max(r.timestamp for r in records)
        decoded.extend(records)
        next_offset = header.next_offset

    assert [r.offset for r in decoded] == list(range(len(sent)))
    got = [Rec(r.key, r.value, tuple(r.headers), r.timestamp) for r in decoded]
    assert got == sent
