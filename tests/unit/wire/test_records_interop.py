"""Agreement with an independent implementation: kafka-python's v2 record batches."""

import kafka.codec
import pytest
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from klog.wire.compression import Compression
from klog.wire.records import (
    ControlRecordType,
    EndTransactionMarker,
    Record,
    build_batch,
    build_end_transaction_batch,
    check_batch,
    decode_records,
)

_AVAILABLE = {
    Compression.NONE: True,
    Compression.GZIP: kafka.codec.has_gzip(),
    Compression.SNAPPY: kafka.codec.has_snappy(),
    Compression.LZ4: kafka.codec.has_lz4(),
    Compression.ZSTD: kafka.codec.has_zstd(),
}
CODECS = [
    pytest.param(
        codec,
        marks=pytest.mark.skipif(
            not available, reason=f"kafka-python has no {codec.name.lower()} codec installed"
        ),
    )
    for codec, available in _AVAILABLE.items()
]

# Compressible values, so kafka-python (which sends uncompressed when compression does not
# pay) really uses the codec.
RECORDS = [
    (
        b"key-%d" % i if i % 3 else None,
        (b"value %d " % i) * (i % 7) if i % 5 else None,
        [("trace", b"%d" % i), ("empty", None)] if i % 2 else [],
        1_700_000_000_000 + 7 * i - 3 * (i % 4),
    )
    for i in range(200)
]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("transactional", [False, True])
def test_kafka_python_batches_decode_to_the_same_records(
    codec: Compression, transactional: bool
) -> None:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=transactional,
        producer_id=77 if transactional else -1,
        producer_epoch=3 if transactional else -1,
        base_sequence=1000 if transactional else -1,
        batch_size=1 << 24,
    )
    for offset, (key, value, headers, timestamp) in enumerate(RECORDS):
        assert builder.append(offset, timestamp, key, value, headers) is not None
    theirs = bytes(builder.build())

    header = check_batch(theirs)
    assert header.compression is codec
    assert header.is_transactional is transactional
    assert header.records_count == len(RECORDS)
    assert header.max_timestamp == max(r[3] for r in RECORDS)
    assert decode_records(theirs) == [
        Record(offset, ts, key, value, headers)
        for offset, (key, value, headers, ts) in enumerate(RECORDS)
    ]


def test_uncompressed_batches_are_byte_identical_to_kafka_python() -> None:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=12,
        producer_epoch=0,
        base_sequence=40,
        batch_size=1 << 24,
    )
    for offset, (key, value, headers, timestamp) in enumerate(RECORDS):
        builder.append(offset, timestamp, key, value, headers)
    # kafka-python leaves the partition leader epoch 0 for the broker to set.
    ours = build_batch(
        RECORDS, producer_id=12, producer_epoch=0, base_sequence=40, partition_leader_epoch=0
    )
    assert ours == bytes(builder.build())


@pytest.mark.parametrize("codec", CODECS)
def test_our_batches_read_back_in_kafka_python(codec: Compression) -> None:
    ours = build_batch(
        RECORDS,
        base_offset=5000,
        compression=codec,
        producer_id=9,
        producer_epoch=1,
        base_sequence=0,
        is_transactional=True,
    )
    batch = DefaultRecordBatch(ours)
    assert batch.validate_crc()
    assert (batch.base_offset, batch.compression_type, batch.is_transactional) == (
        5000,
        codec,
        True,
    )
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (9, 1, 0)
    read = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]
    assert read == [
        (5000 + i, ts, key, value, headers) for i, (key, value, headers, ts) in enumerate(RECORDS)
    ]


@pytest.mark.parametrize("kind", [ControlRecordType.ABORT, ControlRecordType.COMMIT])
def test_our_transaction_markers_read_back_in_kafka_python(kind: ControlRecordType) -> None:
    ours = build_end_transaction_batch(
        EndTransactionMarker(kind, coordinator_epoch=4),
        producer_id=31,
        producer_epoch=2,
        timestamp=123,
        base_offset=8,
    )
    batch = DefaultRecordBatch(ours)
    assert batch.validate_crc()
    assert batch.is_control_batch and batch.is_transactional
    [record] = list(batch)
    assert (record.offset, record.type, record.abort, record.commit) == (
        8,
        kind,
        kind is ControlRecordType.ABORT,
        kind is ControlRecordType.COMMIT,
    )
