"""Record batches v2: header layout, build/decode round trips, control batches, legacy formats."""

import os
import struct

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.legacy_records import LegacyRecordBatchBuilder

from klog.wire.compression import Compression
from klog.wire.errors import ErrorCode, KafkaError
from klog.wire.exceptions import DecodeError
from klog.wire.records import (
    ATTRIBUTES_POS,
    BASE_OFFSET_POS,
    BASE_SEQUENCE_POS,
    BASE_TIMESTAMP_POS,
    BATCH_HEADER_SIZE,
    CRC_POS,
    LAST_OFFSET_DELTA_POS,
    LENGTH_POS,
    LOG_OVERHEAD,
    MAGIC_POS,
    MAX_TIMESTAMP_POS,
    MIN_BATCH_LENGTH,
    NO_TIMESTAMP,
    PARTITION_LEADER_EPOCH_POS,
    PRODUCER_EPOCH_POS,
    PRODUCER_ID_POS,
    RECORDS_COUNT_POS,
    BatchHeader,
    ControlRecordType,
    CorruptRecordError,
    EndTransactionMarker,
    Record,
    TimestampType,
    UnsupportedMessageFormatError,
    build_batch,
    build_end_transaction_batch,
    check_batch,
    control_record_key,
    decode_records,
    iter_batches,
    parse_batch_header,
    parse_control_record_type,
)

blobs = st.none() | st.binary(max_size=40)
headers_st = st.lists(st.tuples(st.text(max_size=8), blobs), max_size=3)
timestamps = st.integers(min_value=-1, max_value=2**45)
record_tuples = st.lists(st.tuples(blobs, blobs, headers_st, timestamps), max_size=12)


def _expected(records: list, base_offset: int, timestamp_type: int) -> list[Record]:
    max_ts = max(r[3] for r in records) if records else NO_TIMESTAMP
    return [
        Record(
            base_offset + i,
            max_ts if timestamp_type == TimestampType.LOG_APPEND_TIME else ts,
            key,
            value,
            list(headers),
        )
        for i, (key, value, headers, ts) in enumerate(records)
    ]


def _sample_batch(codec: Compression = Compression.NONE, n: int = 5, **kwargs: object) -> bytes:
    return build_batch(
        [
            (b"key-%d" % i, b"value-%d" % i * 5, [("h", b"%d" % i)], 1_700_000_000_000 + i)
            for i in range(n)
        ],
        compression=codec,
        **kwargs,
    )


# --- header layout -------------------------------------------------------------------------


def test_position_constants_match_the_built_header() -> None:
    batch = build_batch(
        [(b"k", b"v", [], 1000), (b"k", b"v", [], 3000)],
        base_offset=0x0102030405060708,
        partition_leader_epoch=17,
        producer_id=0x1122334455,
        producer_epoch=9,
        base_sequence=77,
        base_timestamp=999,
    )
    assert struct.unpack_from(">q", batch, BASE_OFFSET_POS)[0] == 0x0102030405060708
    assert struct.unpack_from(">i", batch, LENGTH_POS)[0] == len(batch) - LOG_OVERHEAD
    assert struct.unpack_from(">i", batch, PARTITION_LEADER_EPOCH_POS)[0] == 17
    assert batch[MAGIC_POS] == 2
    assert struct.unpack_from(">I", batch, CRC_POS)[0] == crc32c(batch[ATTRIBUTES_POS:])
    assert struct.unpack_from(">i", batch, LAST_OFFSET_DELTA_POS)[0] == 1
    assert struct.unpack_from(">q", batch, BASE_TIMESTAMP_POS)[0] == 999
    assert struct.unpack_from(">q", batch, MAX_TIMESTAMP_POS)[0] == 3000
    assert struct.unpack_from(">q", batch, PRODUCER_ID_POS)[0] == 0x1122334455
    assert struct.unpack_from(">h", batch, PRODUCER_EPOCH_POS)[0] == 9
    assert struct.unpack_from(">i", batch, BASE_SEQUENCE_POS)[0] == 77
    assert struct.unpack_from(">i", batch, RECORDS_COUNT_POS)[0] == 2
    assert BATCH_HEADER_SIZE == 61 and MIN_BATCH_LENGTH == 49


def test_parse_batch_header_reads_only_the_header() -> None:
    batch = _sample_batch(
        Compression.ZSTD,
        base_offset=42,
        producer_id=5,
        producer_epoch=2,
        base_sequence=10,
        is_transactional=True,
        timestamp_type=TimestampType.LOG_APPEND_TIME,
        partition_leader_epoch=3,
    )
    prefix = b"\xee" * 7
    header = parse_batch_header(prefix + batch[:BATCH_HEADER_SIZE], len(prefix))
    assert header == BatchHeader(
        base_offset=42,
        batch_length=len(batch) - 12,
        partition_leader_epoch=3,
        magic=2,
        crc=struct.unpack_from(">I", batch, CRC_POS)[0],
        attributes=Compression.ZSTD | 0x08 | 0x10,
        last_offset_delta=4,
        base_timestamp=1_700_000_000_000,
        max_timestamp=1_700_000_000_004,
        producer_id=5,
        producer_epoch=2,
        base_sequence=10,
        records_count=5,
    )
    assert header.compression is Compression.ZSTD
    assert header.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert header.is_transactional and not header.is_control and not header.has_delete_horizon
    assert (header.last_offset, header.next_offset, header.size) == (46, 47, len(batch))


def test_delete_horizon_flag() -> None:
    batch = bytearray(_sample_batch())
    struct.pack_into(">h", batch, ATTRIBUTES_POS, 0x40)
    assert parse_batch_header(batch).has_delete_horizon


def test_patching_base_offset_and_leader_epoch_keeps_the_crc_valid() -> None:
    batch = bytearray(_sample_batch(Compression.GZIP))
    struct.pack_into(">q", batch, BASE_OFFSET_POS, 1000)
    struct.pack_into(">i", batch, PARTITION_LEADER_EPOCH_POS, 7)
    assert check_batch(batch).partition_leader_epoch == 7
    assert [r.offset for r in decode_records(batch)] == [1000, 1001, 1002, 1003, 1004]


@pytest.mark.parametrize(
    ("field", "pos", "fmt", "value", "match"),
    [
        ("length", LENGTH_POS, ">i", 48, "bad batch length 48"),
        ("length", LENGTH_POS, ">i", -1, "bad batch length -1"),
        ("magic", MAGIC_POS, ">b", 3, "bad magic 3"),
        ("magic", MAGIC_POS, ">b", -1, "bad magic -1"),
        ("codec", ATTRIBUTES_POS, ">h", 5, "unknown compression codec id 5"),
        ("count", RECORDS_COUNT_POS, ">i", -2, "negative record count -2"),
    ],
)
def test_bad_header_fields(field: str, pos: int, fmt: str, value: int, match: str) -> None:
    batch = bytearray(_sample_batch())
    struct.pack_into(fmt, batch, pos, value)
    with pytest.raises(CorruptRecordError, match=match):
        parse_batch_header(batch)


def test_short_headers() -> None:
    batch = _sample_batch()
    for cut in (0, 5, MAGIC_POS, BATCH_HEADER_SIZE - 1):
        with pytest.raises(CorruptRecordError, match="truncated batch header"):
            parse_batch_header(batch[:cut])
    with pytest.raises(CorruptRecordError, match="truncated batch header"):
        parse_batch_header(batch, len(batch))


# --- build and decode ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    records=record_tuples,
    codec=st.sampled_from(list(Compression)),
    base_offset=st.integers(min_value=0, max_value=2**62),
    timestamp_type=st.sampled_from(list(TimestampType)),
    producer=st.tuples(
        st.integers(min_value=-1, max_value=2**63 - 1),
        st.integers(min_value=-1, max_value=2**15 - 1),
        st.integers(min_value=-1, max_value=2**31 - 1),
    ),
    is_transactional=st.booleans(),
    leader_epoch=st.integers(min_value=-1, max_value=2**31 - 1),
)
def test_round_trip(
    records: list,
    codec: Compression,
    base_offset: int,
    timestamp_type: TimestampType,
    producer: tuple[int, int, int],
    is_transactional: bool,
    leader_epoch: int,
) -> None:
    producer_id, producer_epoch, base_sequence = producer
    batch = build_batch(
        records,
        base_offset=base_offset,
        compression=codec,
        timestamp_type=timestamp_type,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        is_transactional=is_transactional,
        partition_leader_epoch=leader_epoch,
    )
    header = check_batch(batch)
    assert (header.base_offset, header.records_count) == (base_offset, len(records))
    assert header.last_offset_delta == max(len(records) - 1, 0)
    assert header.compression is codec
    assert header.timestamp_type is timestamp_type
    assert header.is_transactional is is_transactional
    assert not header.is_control
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == producer
    assert header.partition_leader_epoch == leader_epoch
    if records:
        assert header.base_timestamp == records[0][3]
        assert header.max_timestamp == max(r[3] for r in records)
    assert decode_records(batch) == _expected(records, base_offset, timestamp_type)
    [(parsed, view)] = list(iter_batches(batch))
    assert parsed == header and bytes(view) == batch


@pytest.mark.parametrize("codec", list(Compression))
def test_large_records(codec: Compression) -> None:
    records = [
        (None, os.urandom(1 << 20), [("big", os.urandom(1000))], 5),
        (b"k" * 100_000, b"abc" * 1_000_000, [], 6),
        (b"", None, [("", b"")], 4),
    ]
    batch = build_batch(records, compression=codec)
    assert decode_records(batch) == _expected(records, 0, 0)


def test_records_keep_their_offsets_and_must_increase() -> None:
    kept = [
        Record(10, 1, b"a", b"1", []),
        Record(12, 2, b"b", None, []),
        Record(15, 3, None, b"", []),
    ]
    batch = build_batch(kept, base_offset=10)
    assert parse_batch_header(batch).last_offset_delta == 5
    assert decode_records(batch) == kept
    with pytest.raises(ValueError, match="offset delta"):
        build_batch([Record(3, 1, None, None, []), Record(3, 1, None, None, [])], base_offset=0)
    with pytest.raises(ValueError, match="offset delta"):
        build_batch([Record(3, 1, None, None, [])], base_offset=5)


def test_base_timestamp_override_and_negative_deltas() -> None:
    batch = build_batch([(None, b"x", [], 500), (None, b"y", [], 100)], base_timestamp=1000)
    header = parse_batch_header(batch)
    assert (header.base_timestamp, header.max_timestamp) == (1000, 500)
    assert [r.timestamp for r in decode_records(batch)] == [500, 100]


def test_empty_batch() -> None:
    batch = build_batch([], base_offset=7)
    header = check_batch(batch)
    assert (header.records_count, header.batch_length) == (0, MIN_BATCH_LENGTH)
    assert (header.base_timestamp, header.max_timestamp) == (NO_TIMESTAMP, NO_TIMESTAMP)
    assert decode_records(batch) == []


def test_bad_build_arguments_are_programming_errors() -> None:
    with pytest.raises(TypeError):
        build_batch([(b"k", b"v", [], "yesterday")])
    with pytest.raises(ValueError, match="out of range"):
        build_batch([(b"k", b"v", [], 1)], producer_epoch=1 << 20)
    with pytest.raises(ValueError):
        build_batch([(b"k", b"v", [], 1)], timestamp_type=2)
    with pytest.raises(ValueError):
        build_batch([(b"k", b"v", [], 1)], compression=9)


# --- control batches -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [ControlRecordType.COMMIT, ControlRecordType.ABORT])
def test_transaction_marker_batches(kind: ControlRecordType) -> None:
    marker = EndTransactionMarker(kind, coordinator_epoch=12)
    batch = build_end_transaction_batch(
        marker, producer_id=4000, producer_epoch=3, timestamp=1234, base_offset=99
    )
    header = check_batch(batch)
    assert header.is_control and header.is_transactional
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (4000, 3, -1)
    [record] = decode_records(batch)
    assert (record.offset, record.timestamp, record.headers) == (99, 1234, [])
    assert record.key == struct.pack(">hh", 0, kind)
    assert record.value == struct.pack(">hi", 0, 12)
    assert EndTransactionMarker.from_record(record) == marker


@pytest.mark.parametrize("kind", list(ControlRecordType))
def test_control_record_keys(kind: ControlRecordType) -> None:
    assert parse_control_record_type(control_record_key(kind)) is kind
    # Later key versions may append fields.
    assert parse_control_record_type(struct.pack(">hhi", 1, kind, 0)) is kind


@pytest.mark.parametrize(
    ("key", "match"),
    [
        (None, "got null"),
        (b"\x00\x00\x00", "got 3"),
        (struct.pack(">hh", -1, 0), "negative control record key version"),
        (struct.pack(">hh", 0, 99), "unknown control record type 99"),
    ],
)
def test_bad_control_record_keys(key: bytes | None, match: str) -> None:
    with pytest.raises(CorruptRecordError, match=match):
        parse_control_record_type(key)


def test_bad_transaction_markers() -> None:
    commit_key = control_record_key(ControlRecordType.COMMIT)
    with pytest.raises(CorruptRecordError, match="not a transaction marker"):
        EndTransactionMarker.from_record(
            Record(0, 0, control_record_key(ControlRecordType.LEADER_CHANGE), b"", [])
        )
    with pytest.raises(CorruptRecordError, match="got 5"):
        EndTransactionMarker.from_record(Record(0, 0, commit_key, b"\x00" * 5, []))
    with pytest.raises(CorruptRecordError, match="negative transaction marker version"):
        EndTransactionMarker.from_record(Record(0, 0, commit_key, struct.pack(">hi", -3, 1), []))
    with pytest.raises(ValueError, match="ABORT or COMMIT"):
        EndTransactionMarker(ControlRecordType.SNAPSHOT_HEADER, 0)


def test_generic_control_batch() -> None:
    key = control_record_key(ControlRecordType.LEADER_CHANGE)
    batch = build_batch([(key, b"payload", [], 5)], is_control=True)
    assert parse_batch_header(batch).is_control
    [record] = decode_records(batch)
    assert parse_control_record_type(record.key) is ControlRecordType.LEADER_CHANGE


# --- iterating buffers of batches ----------------------------------------------------------


def test_iter_batches_over_several_batches_and_a_partial_tail() -> None:
    batches = [
        _sample_batch(codec, n=i + 1, base_offset=10 * i) for i, codec in enumerate(Compression)
    ]
    buf = b"".join(batches)
    found = list(iter_batches(buf))
    assert [h.base_offset for h, _ in found] == [0, 10, 20, 30, 40]
    assert [bytes(v) for _, v in found] == batches
    last_start = len(buf) - len(batches[-1])
    for cut in (last_start + 1, last_start + 11, last_start + 30, len(buf) - 1):
        partial = list(iter_batches(buf[:cut], allow_partial=True))
        assert [bytes(v) for _, v in partial] == batches[:-1]
        with pytest.raises(CorruptRecordError, match="truncated"):
            list(iter_batches(buf[:cut]))
    assert list(iter_batches(b"")) == []


def test_iter_batches_yields_good_batches_before_raising() -> None:
    good = _sample_batch()
    bad = bytearray(_sample_batch())
    bad[-1] ^= 0xFF
    seen = []
    with pytest.raises(CorruptRecordError, match="CRC-32C mismatch"):
        for header, _ in iter_batches(good + bytes(bad)):
            seen.append(header.base_offset)
    assert seen == [0]


def test_iter_batches_max_batch_bytes() -> None:
    batch = _sample_batch()
    assert len(list(iter_batches(batch, max_batch_bytes=len(batch)))) == 1
    with pytest.raises(CorruptRecordError, match="bad batch length"):
        list(iter_batches(batch, max_batch_bytes=len(batch) - 13))


def test_decode_requires_exactly_one_batch() -> None:
    batch = _sample_batch()
    with pytest.raises(CorruptRecordError, match="declares"):
        decode_records(batch + batch)
    with pytest.raises(CorruptRecordError, match="declares"):
        decode_records(batch[:-1])


# --- legacy message formats ----------------------------------------------------------------


def _legacy(magic: int, codec: int = 0) -> bytes:
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=codec, batch_size=1 << 20)
    for i in range(3):
        builder.append(i, timestamp=1000 + i, key=b"k", value=b"v" * 10)
    return bytes(builder.build())


@pytest.mark.parametrize(("magic", "codec"), [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_legacy_message_sets_are_unsupported(magic: int, codec: int) -> None:
    legacy = _legacy(magic, codec)
    assert legacy[MAGIC_POS] == magic
    for attempt in (
        lambda: parse_batch_header(legacy),
        lambda: list(iter_batches(legacy)),
        lambda: list(iter_batches(legacy, allow_partial=True)),
        lambda: decode_records(legacy),
    ):
        with pytest.raises(UnsupportedMessageFormatError, match=f"message format v{magic}") as e:
            attempt()
        assert e.value.code is ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT
    seen = []
    with pytest.raises(UnsupportedMessageFormatError):
        for header, _ in iter_batches(_sample_batch() + legacy):
            seen.append(header.magic)
    assert seen == [2]


def test_error_family() -> None:
    assert issubclass(UnsupportedMessageFormatError, CorruptRecordError)
    assert issubclass(CorruptRecordError, KafkaError)
    assert issubclass(CorruptRecordError, DecodeError)
    assert issubclass(CorruptRecordError, ValueError)
    assert CorruptRecordError("x").code is ErrorCode.CORRUPT_MESSAGE
    assert str(CorruptRecordError("bad crc")) == "CORRUPT_MESSAGE: bad crc"
