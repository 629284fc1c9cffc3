"""encode_records / decode_records: Kafka's v2 record format, on both implementations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
blobs = st.none() | st.binary(max_size=300)
header_keys = st.text(max_size=20)
# Timestamp deltas keep clear of the int64 edges so base + delta stays valid.
records_strategy = st.lists(
    st.tuples(
        INT32,
        st.integers(-(1 << 62), 1 << 62),
        blobs,
        blobs,
        st.lists(st.tuples(header_keys, st.none() | st.binary(max_size=40)), max_size=4),
    ),
    max_size=12,
)


def one_record(**fields: object) -> tuple:
    rec = {"offset_delta": 0, "timestamp_delta": 0, "key": None, "value": b"", "headers": []}
    rec.update(fields)
    return tuple(rec.values())


@pytest.mark.parametrize(
    ("value", "varint"),
    [
        (0, "00"),
        (-1, "01"),
        (1, "02"),
        (63, "7e"),
        (-64, "7f"),
        (64, "8001"),
        (300, "d804"),
        ((1 << 31) - 1, "feffffff0f"),
        (-(1 << 31), "ffffffff0f"),
    ],
)
def test_offset_delta_is_a_kafka_zigzag_varint(impl, value, varint) -> None:
    encoded = impl.encode_records([one_record(offset_delta=value)])
    body = "00" + "00" + varint + "01" + "00" + "00"  # attrs, ts, offset, key=-1, value=0, hdrs
    assert encoded.hex() == f"{len(body) // 2 * 2:02x}" + body


def test_matches_kafka_python_byte_for_byte(impl) -> None:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    base_ts = 1_700_000_000_000
    rows = [
        (0, base_ts, b"key", b"value", [("h1", b"x"), ("h\u00e9", None)]),
        (1, base_ts + 70, None, b"v" * 200, []),
        (300, base_ts - 5, b"", None, [("", b"")]),
    ]
    for row in rows:
        builder.append(*row)
    batch = bytes(builder.build())
    ours = impl.encode_records([(o, t - base_ts, k, v, h) for o, t, k, v, h in rows])
    assert batch[61:] == ours
    decoded = impl.decode_records(memoryview(batch)[61:], len(rows), 1000, base_ts)
    assert decoded == [(o + 1000, t, k, v, h) for o, t, k, v, h in rows]
    # And kafka-python reads what we decode from, with the same fields.
    theirs = [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in DefaultRecordBatch(batch)]
    assert theirs == [(o, t, k, v, h) for o, t, k, v, h in rows]


@settings(max_examples=150)
@given(records=records_strategy, base_offset=INT32, base_timestamp=INT32)
def test_round_trip_and_both_implementations_agree(
    both, records, base_offset, base_timestamp
) -> None:
    c, py = both
    encoded = c.encode_records(records)
    assert py.encode_records(records) == encoded
    expected = [
        (base_offset + o, base_timestamp + t, k, v, [tuple(h) for h in hs])
        for o, t, k, v, hs in records
    ]
    for impl in both:
        assert impl.decode_records(encoded, len(records), base_offset, base_timestamp) == expected


@settings(max_examples=300)
@given(
    records=records_strategy.filter(bool),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=3),
    cut=st.integers(min_value=0),
    count_shift=st.integers(-1, 1),
)
def test_decoding_damaged_records_agrees_and_only_raises_value_error(
    both, outcome, records, edits, cut, count_shift
) -> None:
    c, py = both
    buf = bytearray(py.encode_records(records))
    for where, value in edits:
        buf[where % len(buf)] = value
    del buf[cut % (len(buf) + 1) :]
    count = max(0, len(records) + count_shift)
    got_c = outcome(c.decode_records, bytes(buf), count, 0, 0)
    got_py = outcome(py.decode_records, bytes(buf), count, 0, 0)
    assert got_c == got_py
    assert got_c[0] in ("ok", "ValueError")


@settings(max_examples=200)
@given(buf=st.binary(max_size=60), count=st.integers(0, 4), base=INT64)
def test_decoding_arbitrary_bytes_agrees(both, outcome, buf, count, base) -> None:
    c, py = both
    got = outcome(c.decode_records, buf, count, base, base)
    assert got == outcome(py.decode_records, buf, count, base, base)
    assert got[0] in ("ok", "ValueError")


def record_bytes(body_hex: str) -> bytes:
    body = bytes.fromhex(body_hex)
    return bytes([len(body) * 2]) + body


@pytest.mark.parametrize(
    ("buf", "count", "message"),
    [
        (b"", 1, "buffer ends after 0 of 1 records"),
        (b"\x80", 1, "record 0 (byte 0): length varint is truncated"),
        (b"\xff\xff\xff\xff\xff\x01", 1, "record 0 (byte 0): length varint is longer than 5 bytes"),
        (b"\x03", 1, "record 0 (byte 0): negative length -2"),
        (b"\x08\x00", 1, "record 0 (byte 0): length 4 exceeds the 1 bytes left"),
        (b"\x00", 1, "record 0 (byte 0): attributes is truncated"),
        (record_bytes("00"), 1, "record 0 (byte 0): timestamp delta varint is truncated"),
        (
            record_bytes("00" + "ff" * 10),
            1,
            "record 0 (byte 0): timestamp delta varint is longer than 10 bytes",
        ),
        (record_bytes("000000"), 1, "record 0 (byte 0): key length varint is truncated"),
        (record_bytes("00000002"), 1, "record 0 (byte 0): key of 1 bytes overruns the record"),
        (record_bytes("0000000101"), 1, "record 0 (byte 0): header count varint is truncated"),
        (record_bytes("000000010101"), 1, "record 0 (byte 0): negative header count -1"),
        (
            record_bytes("000000010102"),
            1,
            "record 0 (byte 0): header key length varint is truncated",
        ),
        (record_bytes("00000001010201"), 1, "record 0 (byte 0): negative header key length"),
        (
            record_bytes("0000000101020661"),
            1,
            "record 0 (byte 0): header key of 3 bytes overruns the record",
        ),
        (
            record_bytes("00000001010202ff01"),
            1,
            "record 0 (byte 0): header key is not valid UTF-8",
        ),
        (
            record_bytes("0000000101" + "00" + "abcd"),
            1,
            "record 0 (byte 0): 2 unread bytes at the end of the record",
        ),
        (record_bytes("000000010100") * 2, 1, "7 trailing bytes after 1 records"),
        (
            record_bytes("000000010100") + record_bytes("00"),
            2,
            "record 1 (byte 7): timestamp delta varint is truncated",
        ),
    ],
)
def test_malformed_records_raise_value_error_naming_the_fault(impl, buf, count, message) -> None:
    with pytest.raises(ValueError) as info:
        impl.decode_records(buf, count, 0, 0)
    assert str(info.value) == message


def test_kafka_varint_and_null_quirks(impl) -> None:
    # A 5th varint byte's bits past 32 are dropped and any negative length is null, as
    # Kafka's ByteUtils and DefaultRecord read them.
    offset_5_bytes = "8280808070"  # 2 plus bits beyond the int32 -> offset delta 1
    buf = record_bytes("00" + "00" + offset_5_bytes + "03" + "03" + "00")
    assert impl.decode_records(buf, 1, 10, 0) == [(11, 0, None, None, [])]


@pytest.mark.parametrize(
    ("base_offset", "delta_hex", "message"),
    [
        ((1 << 63) - 1, "02", f"record 0 (byte 0): offset {1 << 63} overflows int64"),
        (-(1 << 63), "01", f"record 0 (byte 0): offset {-(1 << 63) - 1} overflows int64"),
    ],
)
def test_absolute_offset_overflow(impl, base_offset, delta_hex, message) -> None:
    buf = record_bytes("00" + "00" + delta_hex + "01" + "01" + "00")
    with pytest.raises(ValueError) as info:
        impl.decode_records(buf, 1, base_offset, 0)
    assert str(info.value) == message


def test_absolute_timestamp_overflow(impl) -> None:
    buf = record_bytes("00" + "02" + "00" + "01" + "01" + "00")
    with pytest.raises(ValueError) as info:
        impl.decode_records(buf, 1, 0, (1 << 63) - 1)
    assert str(info.value) == f"record 0 (byte 0): timestamp {1 << 63} overflows int64"


@pytest.mark.parametrize(
    ("args", "exc", "message"),
    [
        ((b"", -1, 0, 0), ValueError, "count -1 out of non-negative int64 range"),
        ((b"", 0, 1 << 63, 0), ValueError, f"base_offset {1 << 63} out of int64 range"),
        ((b"", 0, 0, -(1 << 64)), ValueError, f"base_timestamp {-(1 << 64)} out of int64 range"),
        ((b"", 0, 0, 0.5), TypeError, "base_timestamp must be int"),
        (("abc", 0, 0, 0), TypeError, "buf must be a contiguous bytes-like object"),
    ],
)
def test_decode_argument_errors(impl, args, exc, message) -> None:
    with pytest.raises(exc) as info:
        impl.decode_records(*args)
    assert str(info.value) == message


def test_decode_accepts_any_buffer(impl) -> None:
    buf = impl.encode_records([one_record(key=b"k", headers=[("a", b"b")])])
    for view in (buf, bytearray(buf), memoryview(b"xx" + buf)[2:]):
        assert impl.decode_records(view, 1, 5, 6) == [(5, 6, b"k", b"", [("a", b"b")])]


def test_encode_accepts_lists_iterables_and_bytes_like(impl) -> None:
    expected = impl.encode_records([(1, 2, b"k", b"v", [("h", b"x")])])
    assert (
        impl.encode_records(iter([[1, 2, bytearray(b"k"), memoryview(b"v"), (["h", b"x"],)]]))
        == expected
    )
    assert impl.encode_records([]) == b""


SHAPE = "expected an (offset_delta, timestamp_delta, key, value, headers) tuple"


@pytest.mark.parametrize(
    ("records", "exc", "message"),
    [
        (5, TypeError, "records must be iterable"),
        ([(0, 0, None, None)], TypeError, f"record 0: {SHAPE}"),
        ([b"abcde"], TypeError, f"record 0: {SHAPE}"),
        (
            [one_record(), one_record(offset_delta=1 << 31)],
            ValueError,
            f"record 1: offset_delta {1 << 31} out of int32 range",
        ),
        ([one_record(offset_delta="1")], TypeError, "record 0: offset_delta must be int"),
        (
            [one_record(timestamp_delta=1 << 63)],
            ValueError,
            f"record 0: timestamp_delta {1 << 63} out of int64 range",
        ),
        ([one_record(timestamp_delta=1.0)], TypeError, "record 0: timestamp_delta must be int"),
        ([one_record(key="text")], TypeError, "record 0: key must be bytes-like or None"),
        (
            [one_record(value=memoryview(b"abcd")[::2])],
            TypeError,
            "record 0: value must be bytes-like or None",
        ),
        (
            [one_record(headers={"a": b"b"})],
            TypeError,
            "record 0: headers must be a list or tuple",
        ),
        (
            [one_record(headers=[("a", b"b"), ("c",)])],
            TypeError,
            "record 0 header 1: expected a (key, value) tuple",
        ),
        ([one_record(headers=[(b"a", b"b")])], TypeError, "record 0 header 0: key must be str"),
        (
            [one_record(headers=[("\ud800", b"b")])],
            ValueError,
            "record 0 header 0: key is not valid UTF-8",
        ),
        (
            [one_record(headers=[("a", "b")])],
            TypeError,
            "record 0 header 0: value must be bytes-like or None",
        ),
    ],
)
def test_encode_errors(impl, records, exc, message) -> None:
    with pytest.raises(exc) as info:
        impl.encode_records(records)
    assert type(info.value) is exc
    assert str(info.value) == message
