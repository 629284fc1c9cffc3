"""Message classes and codecs: every schema and version round-trips, and the encodings
follow Kafka's rules where they are easy to get wrong (tagged fields, nullable structs,
header versions, records slices)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from klog.wire import (
    MESSAGE_CLASSES,
    METADATA_RECORDS,
    REQUESTS,
    RESPONSES,
    ApiVersionsResponse,
    DecodeError,
    DescribeTopicPartitionsRequest,
    EncodeError,
    FetchResponse,
    Message,
    MetadataRequest,
    MetadataResponse,
    PartitionChangeRecord,
    ProduceRequest,
    RequestHeader,
    ResponseHeader,
    UnsupportedVersionError,
    request_header_version,
    response_header_version,
)
from klog.wire._model import FIXED_TYPES

ALL_VERSIONS = [(name, v) for name, cls in MESSAGE_CLASSES.items() for v in cls.VALID_VERSIONS]


def full_instance(cls: type, version: int, counter: itertools.count) -> Any:
    """Every field present in ``version`` set to a non-default value, arrays of two."""

    def scalar(kind: str) -> Any:
        n = next(counter)
        if kind == "bool":
            return True
        if kind == "float64":
            return n + 0.5
        if kind == "uint16":
            return 60000 + n % 5000
        if kind in FIXED_TYPES:
            return -n if kind in ("int8", "int16") else n * 3
        if kind == "uuid":
            return uuid.UUID(int=n)
        if kind == "string":
            return f"s{n}-é"
        return b"b%d" % n

    kwargs = {}
    for field in cls._FIELDS:
        if not field.present_in(version):
            continue
        if field.struct is not None:
            if field.is_array:
                value = [full_instance(field.struct.cls, version, counter) for _ in range(2)]
            else:
                value = full_instance(field.struct.cls, version, counter)
        elif field.is_array:
            value = [scalar(field.element_type) for _ in range(2)]
        else:
            value = scalar(field.type)
        kwargs[field.attr] = value
    return cls(**kwargs)


@pytest.mark.parametrize(("name", "version"), ALL_VERSIONS)
def test_every_schema_and_version_round_trips(name: str, version: int) -> None:
    cls = MESSAGE_CLASSES[name]
    for message in (cls(), full_instance(cls, version, itertools.count(1))):
        data = message.encode(version)
        decoded = cls.decode(data, version)
        assert decoded == message
        assert decoded.encode(version) == data
        assert cls.decode_from(b"xx" + data + b"yy", 2, version) == (decoded, 2 + len(data))


def test_registries_cover_the_issue_apis() -> None:
    wanted = {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
    wanted |= {25, 26, 27, 28, 29, 30, 31, 32, 33, 36, 37, 42, 43, 44, 45, 46, 47, 50, 51}
    wanted |= {52, 53, 54, 55, 56, 59, 60, 61, 62, 63, 65, 66, 68, 69, 75}
    assert wanted <= set(REQUESTS) and wanted <= set(RESPONSES)
    for key in wanted:
        assert REQUESTS[key].API_KEY == RESPONSES[key].API_KEY == key
        assert REQUESTS[key].__name__.endswith("Request")
    assert METADATA_RECORDS[5] is PartitionChangeRecord
    for name in (
        "ConsumerProtocolSubscription",
        "ConsumerProtocolAssignment",
        "OffsetCommitKey",
        "OffsetCommitValue",
        "GroupMetadataKey",
        "GroupMetadataValue",
        "LeaderChangeMessage",
        "SnapshotHeaderRecord",
        "SnapshotFooterRecord",
        "VotersRecord",
        "KRaftVersionRecord",
        "TopicRecord",
        "RegisterBrokerRecord",
    ):
        assert issubclass(MESSAGE_CLASSES[name], Message)


def test_classes_expose_nested_structs_defaults_and_versions() -> None:
    topic_cls = MetadataResponse.MetadataResponseTopic
    assert topic_cls.__qualname__ == "MetadataResponse.MetadataResponseTopic"
    topic = topic_cls(name="t")
    assert topic.topic_authorized_operations == -(2**31)
    assert topic.partitions == [] and topic.partitions is not topic_cls().partitions
    assert topic.topic_id == uuid.UUID(int=0)
    assert MetadataResponse().controller_id == -1
    assert MetadataResponse().cluster_id is None
    assert (MetadataResponse.VALID_VERSIONS.start, MetadataResponse.VALID_VERSIONS.stop) == (0, 13)
    assert 9 in MetadataResponse.FLEXIBLE_VERSIONS and 8 not in MetadataResponse.FLEXIBLE_VERSIONS
    assert MetadataResponse.API_KEY == 3
    assert "name='t'" in repr(topic)
    assert topic != topic_cls(name="u")
    with pytest.raises(TypeError):
        topic_cls(no_such_field=1)


def test_tagged_fields_are_written_only_when_not_default() -> None:
    # librdkafka 2.0.2 (kcat) mis-skips default-valued tagged fields here.
    body = ApiVersionsResponse(
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=4)]
    )
    assert body.encode(3) == bytes.fromhex("0000020012 0000 0004 000000000000")
    body.finalized_features_epoch = 7
    data = body.encode(3)
    assert data.endswith(bytes.fromhex("0101080000000000000007"))
    assert ApiVersionsResponse.decode(data, 3) == body


def test_nullable_structs_use_kafka_markers() -> None:
    request = DescribeTopicPartitionsRequest(response_partition_limit=5)
    assert request.cursor is None
    assert request.encode(0) == bytes.fromhex("0100000005ff00")
    request.cursor = DescribeTopicPartitionsRequest.Cursor(topic_name="a", partition_index=2)
    assert request.encode(0) == bytes.fromhex("0100000005010261000000020000")
    # Tagged and nullable: a varint marker inside the tag (FetchResponse's structs are
    # tagged but not nullable, PartitionChangeRecord's arrays are tagged and nullable).
    record = PartitionChangeRecord(partition_id=1, isr=[1, 2])
    data = record.encode(0)
    assert data == bytes.fromhex("00000001") + bytes(16) + bytes.fromhex(
        "01000903" + "0000000100000002"
    )
    assert PartitionChangeRecord.decode(data, 0) == record


def test_request_header_v2_keeps_an_int16_client_id() -> None:
    header = RequestHeader(
        request_api_key=3, request_api_version=12, correlation_id=7, client_id="ab"
    )
    assert header.encode(2) == bytes.fromhex("0003000c000000070002616200")
    assert header.encode(1) == bytes.fromhex("0003000c0000000700026162")
    assert RequestHeader(client_id=None).encode(1).endswith(b"\xff\xff")
    assert ResponseHeader(correlation_id=7).encode(1) == bytes.fromhex("0000000700")


def test_header_versions_follow_kafka() -> None:
    assert request_header_version(18, 3) == 2 and request_header_version(18, 2) == 1
    assert request_header_version(3, 9) == 2 and request_header_version(3, 8) == 1
    assert request_header_version(7, 0) == 0
    # Versions newer than the specs still follow the open-ended flexible range.
    assert request_header_version(18, 99) == 2
    assert request_header_version(9999, 0) == 1
    assert response_header_version(18, 4) == 0
    assert response_header_version(3, 12) == 1 and response_header_version(3, 8) == 0


def test_decoding_errors_are_decode_errors() -> None:
    data = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="t")]).encode(12)
    with pytest.raises(DecodeError, match="trailing"):
        MetadataRequest.decode(data + b"\x00", 12)
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            MetadataRequest.decode(data[:cut], 12)
    with pytest.raises(UnsupportedVersionError):
        MetadataRequest.decode(data, 13)
    with pytest.raises(DecodeError, match=r"UTF-8|utf-8"):
        MetadataRequest.decode(bytes.fromhex("020000000000000000000000000000000002ff00000000"), 12)


def test_encoding_errors() -> None:
    with pytest.raises(EncodeError, match="not nullable"):
        MetadataRequest(topics=None).encode(0)
    assert MetadataRequest(topics=None).encode(1) == b"\xff\xff\xff\xff"
    with pytest.raises(EncodeError):
        MetadataResponse(throttle_time_ms=2**31).encode(3)
    with pytest.raises(EncodeError):
        MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="x" * 40000)]).encode(1)
    with pytest.raises(UnsupportedVersionError):
        MetadataRequest().encode(-1)


class FileSlice:
    """Stands in for klog.segment's file slice: only ``size`` matters to the codec."""

    def __init__(self, size: int) -> None:
        self.size = size


def test_records_decode_to_views_and_encode_slices_separately() -> None:
    batch = bytes(range(70))
    request = ProduceRequest(
        acks=-1,
        timeout_ms=5,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="t",
                partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)],
            )
        ],
    )
    data = request.encode(9)
    decoded = ProduceRequest.decode(data, 9)
    records = decoded.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview) and records == batch
    assert records.obj is data  # a view into the frame, not a copy

    response = FetchResponse(
        responses=[
            FetchResponse.FetchableTopicResponse(
                partitions=[
                    FetchResponse.PartitionData(partition_index=0, records=FileSlice(1000)),
                    FetchResponse.PartitionData(partition_index=1, records=b"abc"),
                ]
            )
        ]
    )
    with pytest.raises(TypeError, match="encode_parts"):
        response.encode(16)
    parts = response.encode_parts(16)
    slices = [p for p in parts if isinstance(p, FileSlice)]
    assert len(slices) == 1 and all(isinstance(p, bytes) for p in parts if p is not slices[0])
    # Replacing the slice by its bytes gives exactly the plain encoding.
    real = b"\x01" * 1000
    response.responses[0].partitions[0].records = real
    assert b"".join(real if isinstance(p, FileSlice) else p for p in parts) == response.encode(16)
    assert ProduceRequest(acks=0).encode_parts(9) == [ProduceRequest(acks=0).encode(9)]


def test_values_of_the_wrong_type_are_type_errors() -> None:
    wrong_records = ProduceRequest(
        topic_data=[
            ProduceRequest.TopicProduceData(
                partition_data=[ProduceRequest.PartitionProduceData(records="not bytes")]
            )
        ]
    )
    with pytest.raises(TypeError, match="ProduceRequest v9"):
        wrong_records.encode(9)
    with pytest.raises(TypeError):
        MetadataRequest(topics=["not a struct"]).encode(12)
