"""Version-prefixed framings: consumer protocol, __consumer_offsets, KRaft metadata records."""

from __future__ import annotations

import uuid

import pytest

from klog.wire import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
    DecodeError,
    GroupMetadataKey,
    GroupMetadataValue,
    OffsetCommitKey,
    OffsetCommitValue,
    PartitionRecord,
    TopicRecord,
)
from klog.wire.versioned import (
    COORDINATOR_KEYS,
    COORDINATOR_VALUES,
    decode_consumer_protocol,
    decode_coordinator_key,
    decode_metadata_record,
    decode_versioned,
    encode_metadata_record,
    encode_versioned,
)


def test_consumer_offsets_keys_select_their_record_type() -> None:
    key = OffsetCommitKey(group="g", topic="t", partition=1)
    data = encode_versioned(key, 1)
    assert data == bytes.fromhex("000100016700017400000001")
    assert decode_coordinator_key(data) == (key, 1)
    group_key = GroupMetadataKey(group="g")
    assert decode_coordinator_key(encode_versioned(group_key, 2)) == (group_key, 2)
    assert COORDINATOR_VALUES[0] is COORDINATOR_VALUES[1] is OffsetCommitValue
    assert COORDINATOR_KEYS[2] is GroupMetadataKey and COORDINATOR_VALUES[2] is GroupMetadataValue
    with pytest.raises(DecodeError, match="record type"):
        decode_coordinator_key(b"\x7f\x00")
    with pytest.raises(DecodeError):
        decode_coordinator_key(b"\x00")


def test_consumer_offsets_values_round_trip_at_each_version() -> None:
    value = OffsetCommitValue(offset=42, leader_epoch=3, metadata="m", commit_timestamp=7)
    for version in OffsetCommitValue.VALID_VERSIONS:
        decoded, got = decode_versioned(OffsetCommitValue, encode_versioned(value, version))
        assert got == version and decoded.offset == 42
    member = GroupMetadataValue.MemberMetadata(
        member_id="m",
        client_id="c",
        client_host="/h",
        session_timeout=10,
        subscription=b"s",
        assignment=b"a",
    )
    group = GroupMetadataValue(
        protocol_type="consumer", generation=2, protocol="range", leader="m", members=[member]
    )
    assert decode_versioned(GroupMetadataValue, encode_versioned(group, 3)) == (group, 3)
    with pytest.raises(DecodeError):
        decode_versioned(OffsetCommitValue, encode_versioned(value, 4)[:2] + b"\x00")
    with pytest.raises(DecodeError, match="no version"):
        decode_versioned(OffsetCommitValue, b"\x00\x09")


def test_consumer_protocol_reads_newer_versions_like_kafka() -> None:
    sub = ConsumerProtocolSubscription(
        topics=["a", "b"],
        owned_partitions=[ConsumerProtocolSubscription.TopicPartition(topic="a", partitions=[0])],
        generation_id=4,
        rack_id="r1",
    )
    data = encode_versioned(sub, 3)
    assert decode_consumer_protocol(ConsumerProtocolSubscription, data) == (sub, 3)
    # A future v7 with extra fields at the end: read as v3, extra bytes ignored.
    future = b"\x00\x07" + data[2:] + b"\x00\x00\x00\x01new"
    assert decode_consumer_protocol(ConsumerProtocolSubscription, future) == (sub, 7)
    v0 = ConsumerProtocolSubscription(topics=["a"], user_data=b"u")
    assert encode_versioned(v0, 0) == bytes.fromhex("0000000000010001610000000175")
    assignment = ConsumerProtocolAssignment(
        assigned_partitions=[
            ConsumerProtocolAssignment.TopicPartition(topic="a", partitions=[0, 1])
        ]
    )
    assert decode_consumer_protocol(
        ConsumerProtocolAssignment, encode_versioned(assignment, 1)
    ) == (assignment, 1)
    with pytest.raises(DecodeError):
        decode_consumer_protocol(ConsumerProtocolSubscription, b"\xff\xff")


def test_metadata_records_use_kafkas_frame() -> None:
    topic = TopicRecord(name="t", topic_id=uuid.UUID(int=5))
    data = encode_metadata_record(topic, 0)
    assert data == bytes.fromhex("0102000274") + uuid.UUID(int=5).bytes + b"\x00"
    assert decode_metadata_record(data) == (topic, 0)
    partition = PartitionRecord(
        partition_id=0,
        topic_id=topic.topic_id,
        replicas=[1],
        isr=[1],
        leader=1,
        leader_epoch=0,
        partition_epoch=0,
    )
    for version in PartitionRecord.VALID_VERSIONS:
        assert decode_metadata_record(encode_metadata_record(partition, version)) == (
            partition,
            version,
        )
    for bad in (b"\x00\x02\x00", b"\x01\x7f\x00", b"\x01\x02\x09", b"\x01", b""):
        with pytest.raises(DecodeError):
            decode_metadata_record(bad)
    with pytest.raises(TypeError):
        encode_metadata_record(OffsetCommitKey(), 0)
