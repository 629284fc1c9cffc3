"""__consumer_offsets record codecs: Kafka's byte layout, round trips, batching, loading."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klog.coordinator import (
    GroupMetadataRecord,
    OffsetAndMetadata,
    OffsetCommitRecord,
    build_record_batches,
    decode_record,
    encode_record,
    iter_log_batches,
)
from klog.wire import GroupMetadataValue
from klog.wire.exceptions import DecodeError
from klog.wire.records import (
    ControlRecordType,
    EndTransactionMarker,
    build_batch,
    build_end_transaction_batch,
    iter_batches,
)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def test_offset_commit_bytes_match_kafkas_layout() -> None:
    record = OffsetCommitRecord(
        "g", "t", 3, OffsetAndMetadata(42, 7, "meta", commit_timestamp_ms=1000)
    )
    key, value = encode_record(record)
    # Key: record type 1, group, topic, partition.
    assert key == struct.pack(">h", 1) + _string("g") + _string("t") + struct.pack(">i", 3)
    # Value v3: offset, leader epoch, metadata, commit timestamp.
    assert value == (struct.pack(">hqi", 3, 42, 7) + _string("meta") + struct.pack(">q", 1000))


def test_commit_with_expiry_is_written_as_value_version_1() -> None:
    record = OffsetCommitRecord("g", "t", 0, OffsetAndMetadata(1, -1, "", 10, 99))
    _, value = encode_record(record)
    assert value is not None
    assert value == struct.pack(">hq", 1, 1) + _string("") + struct.pack(">qq", 10, 99)
    assert decode_record(*encode_record(record)) == record


def test_group_metadata_key_is_record_type_2() -> None:
    key, value = encode_record(GroupMetadataRecord("my-group", None))
    assert key == struct.pack(">h", 2) + _string("my-group")
    assert value is None


def test_group_metadata_round_trip_with_static_member() -> None:
    value = GroupMetadataValue(
        protocol_type="consumer",
        generation=5,
        protocol="range",
        leader="m1",
        current_state_timestamp=123,
        members=[
            GroupMetadataValue.MemberMetadata(
                member_id="m1",
                group_instance_id="instance-1",
                client_id="c",
                client_host="/127.0.0.1",
                rebalance_timeout=30000,
                session_timeout=10000,
                subscription=b"sub",
                assignment=b"assign",
            )
        ],
    )
    record = GroupMetadataRecord("g", value)
    key, encoded = encode_record(record)
    assert encoded is not None and encoded[:2] == struct.pack(">h", 3)
    assert decode_record(key, encoded) == record


def test_tombstones_round_trip() -> None:
    for record in (OffsetCommitRecord("g", "t", 1, None), GroupMetadataRecord("g", None)):
        assert decode_record(*encode_record(record)) == record


def test_legacy_offset_key_version_0_is_read() -> None:
    key = struct.pack(">h", 0) + _string("g") + _string("t") + struct.pack(">i", 2)
    value = struct.pack(">hq", 0, 5) + _string("m") + struct.pack(">q", 77)
    assert decode_record(key, value) == OffsetCommitRecord(
        "g", "t", 2, OffsetAndMetadata(5, -1, "m", 77)
    )


def test_other_group_kinds_are_skipped_and_garbage_is_rejected() -> None:
    # Record type 3 is a KIP-848 ConsumerGroupMetadataKey: not ours to replay.
    assert decode_record(struct.pack(">h", 3) + _string("g"), None) is None
    with pytest.raises(DecodeError):
        decode_record(struct.pack(">h", 99) + _string("g"), None)
    with pytest.raises(DecodeError):
        decode_record(b"\x00", None)


# Value version 1 (used for commits with an expiry) has no leader epoch field: Kafka's
# records carry one or the other.
offsets = st.builds(
    OffsetAndMetadata,
    offset=st.integers(-1, 2**62),
    leader_epoch=st.integers(-1, 2**31 - 1),
    metadata=st.text(max_size=50),
    commit_timestamp_ms=st.integers(0, 2**50),
) | st.builds(
    OffsetAndMetadata,
    offset=st.integers(-1, 2**62),
    leader_epoch=st.just(-1),
    metadata=st.text(max_size=50),
    commit_timestamp_ms=st.integers(0, 2**50),
    expire_timestamp_ms=st.integers(0, 2**50),
)
offset_records = st.builds(
    OffsetCommitRecord,
    group_id=st.text(max_size=20),
    topic=st.text(min_size=1, max_size=20),
    partition=st.integers(0, 1000),
    value=st.none() | offsets,
)


@settings(max_examples=100)
@given(offset_records)
def test_offset_records_round_trip(record: OffsetCommitRecord) -> None:
    assert decode_record(*encode_record(record)) == record


@settings(max_examples=30)
@given(st.lists(offset_records, min_size=1, max_size=60), st.integers(300, 4000))
def test_batches_respect_the_size_limit_and_keep_order(
    records: list[OffsetCommitRecord], max_bytes: int
) -> None:
    buf = build_record_batches(records, now_ms=5, max_batch_bytes=max_bytes)
    batches = list(iter_batches(buf))
    for header, _ in batches:
        # A single record larger than the limit still goes out alone in its own batch.
        assert header.size <= max_bytes or header.records_count == 1
    loaded = [r for _, batch in iter_log_batches(_with_offsets(buf)) for r in batch]
    assert loaded == records


def _with_offsets(buf: bytes) -> bytes:
    """Give batches consecutive offsets, as the log does on append."""
    out = bytearray()
    offset = 0
    for header, batch in iter_batches(buf):
        patched = bytearray(batch)
        struct.pack_into(">q", patched, 0, offset)
        out += patched
        offset += header.records_count
    return bytes(out)


def test_loading_skips_control_batches_and_reports_next_offsets() -> None:
    data = build_record_batches(
        [OffsetCommitRecord("g", "t", 0, OffsetAndMetadata(1, -1, "", 1))], 0, 10000
    )
    marker = build_end_transaction_batch(
        EndTransactionMarker(ControlRecordType.COMMIT, coordinator_epoch=0),
        base_offset=1,
        producer_id=1,
        producer_epoch=0,
        timestamp=0,
    )
    loaded = list(iter_log_batches(data + marker))
    assert [next_offset for next_offset, _ in loaded] == [1, 2]
    assert loaded[1][1] == []


def test_loading_ignores_a_batch_cut_short_by_the_read_size() -> None:
    one = build_record_batches([GroupMetadataRecord("a", None)], 0, 10000)
    two = build_batch([(encode_record(GroupMetadataRecord("b", None))[0], None, (), 0)])
    buf = _with_offsets(one + two)
    assert [r for _, batch in iter_log_batches(buf[:-5]) for r in batch] == [
        GroupMetadataRecord("a", None)
    ]


def test_keyless_record_is_corrupt_data() -> None:
    with pytest.raises(DecodeError):
        list(iter_log_batches(build_batch([(None, b"v", (), 0)])))
