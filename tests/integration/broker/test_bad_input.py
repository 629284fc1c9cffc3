"""Anything a client can send wrong: the right error code or a closed connection, never a
dead node.

Framing abuse (random bytes, truncated frames, absurd size prefixes, unknown API keys and
versions) goes over raw sockets with frames built from ``klog.wire``; API-level mistakes
(bad topic names, partition counts, replication factors and configs; old or corrupt
produce batches; oversized messages; fetches out of range) are well-formed ``klog.wire``
requests, plus one real client (confluent-kafka) to show the codes reach applications.
Every test ends by checking that a connection opened *before* the bad input still gets
answers, that a fresh connection does too, and that the broker process is alive.
"""

from __future__ import annotations

import random
import socket
import struct

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klog.wire import (
    REQUESTS,
    ApiVersionsRequest,
    ApiVersionsResponse,
    CreateTopicsRequest,
    ErrorCode,
    FetchRequest,
    ListOffsetsRequest,
    MetadataRequest,
    RequestHeader,
    build_batch,
    request_header_version,
)
from klog.wire.records import ATTRIBUTES_POS, BATCH_HEADER_SIZE
from tests.integration.wire_client import WireConnection

TIMEOUT_S = 10.0
CREATE_TOPICS_VERSION = 7
FETCH_VERSION = 12
LIST_OFFSETS_VERSION = 7
LATEST = -1


def frame(api_key: int, version: int, body: bytes, correlation_id: int = 1) -> bytes:
    """A request frame for any key/version, including ones klog.wire has no schema for."""
    header = RequestHeader(
        request_api_key=api_key,
        request_api_version=version,
        correlation_id=correlation_id,
        client_id="bad-input",
    ).encode(request_header_version(api_key, version))
    return struct.pack(">i", len(header) + len(body)) + header + body


def api_versions_frame() -> bytes:
    return frame(18, 0, ApiVersionsRequest().encode(0))


@pytest.fixture
def bystander(klog_node):
    """A connection opened before the bad input, proven to work first."""
    client = WireConnection(klog_node.bootstrap, TIMEOUT_S)
    assert client.request(ApiVersionsRequest(), 0).error_code == 0
    yield client
    client.close()


def assert_still_serving(node, bystander: WireConnection) -> None:
    assert node.proc.poll() is None, "broker process died:\n" + node.log_text()[-3000:]
    assert bystander.request(ApiVersionsRequest(), 0).error_code == 0
    fresh = WireConnection(node.bootstrap, TIMEOUT_S)
    try:
        response = fresh.request(MetadataRequest(topics=None), 1)
        assert [broker.port for broker in response.brokers] == [node.port]
    finally:
        fresh.close()


def send_and_expect_close(node, data: bytes, *, half_close: bool = True) -> None:
    client = WireConnection(node.bootstrap, TIMEOUT_S)
    try:
        try:
            client.send_raw(data)
            if half_close:
                client.sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return  # closed even before we finished sending
        assert client.closed_by_broker(), f"connection not closed after {data[:32]!r}..."
    finally:
        client.close()


# -- framing -----------------------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(garbage=st.binary(min_size=1, max_size=4096))
def test_random_bytes_close_only_their_connection(klog_node, bystander, garbage) -> None:
    send_and_expect_close(klog_node, garbage)
    assert_still_serving(klog_node, bystander)


def test_a_megabyte_of_noise_after_a_valid_request(klog_node, bystander) -> None:
    noise = random.Random(4).randbytes(1 << 20)
    client = WireConnection(klog_node.bootstrap, TIMEOUT_S)
    try:
        client.send_raw(api_versions_frame())
        answer = client.receive_frame()
        assert struct.unpack_from(">i", answer)[0] == 1  # correlation id: it was answered
        try:
            client.send_raw(noise)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert client.closed_by_broker()
    finally:
        client.close()
    assert_still_serving(klog_node, bystander)


@pytest.mark.parametrize("keep", [1, 3, 4, 6, -1], ids=lambda k: f"keep{k}")
def test_truncated_frame_then_eof(klog_node, bystander, keep) -> None:
    whole = api_versions_frame()
    send_and_expect_close(klog_node, whole[: keep if keep > 0 else len(whole) + keep])
    assert_still_serving(klog_node, bystander)


def test_frame_too_short_for_a_request_header(klog_node, bystander) -> None:
    send_and_expect_close(klog_node, struct.pack(">i", 3) + b"\x00\x12\x00", half_close=False)
    assert_still_serving(klog_node, bystander)


def test_body_truncated_inside_its_frame(klog_node, bystander) -> None:
    body = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="t")]).encode(1)
    send_and_expect_close(klog_node, frame(3, 1, body[:-1]), half_close=False)
    assert_still_serving(klog_node, bystander)


def test_trailing_bytes_after_a_body_are_ignored_as_kafka_does(klog_node, bystander) -> None:
    # Kafka never reads past a body (librdkafka 2.16 relies on it, see klog.wire.connection).
    client = WireConnection(klog_node.bootstrap, TIMEOUT_S)
    try:
        client.send_raw(frame(18, 0, b"\x00\x01\x02", correlation_id=9))
        answer = client.receive_frame()
        assert struct.unpack_from(">i", answer)[0] == 9
        response, _ = ApiVersionsResponse.decode_from(answer, 4, 0)
        assert response.error_code == 0
        assert client.request(ApiVersionsRequest(), 0).error_code == 0
    finally:
        client.close()
    assert_still_serving(klog_node, bystander)


@pytest.mark.parametrize(
    "prefix",
    [0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x80000001],
    ids=["2GiB-1", "2GiB(negative)", "-1", "negative-min+1"],
)
def test_absurd_size_prefix_closes_from_the_prefix_alone(klog_node, bystander, prefix) -> None:
    # Only the four prefix bytes are sent and the write side stays open: the broker can
    # only close by judging the prefix, not by buffering a body or seeing EOF.
    send_and_expect_close(klog_node, struct.pack(">I", prefix), half_close=False)
    assert_still_serving(klog_node, bystander)


def test_socket_request_max_bytes_is_enforced_from_the_prefix(klog_node_factory) -> None:
    node = klog_node_factory({"socket.request.max.bytes": "1000"}).start()
    bystander = WireConnection(node.bootstrap, TIMEOUT_S)
    try:
        # ApiVersions v0 with a long client id: a payload of exactly the limit is served.
        header = RequestHeader(
            request_api_key=18, request_api_version=0, correlation_id=5, client_id="c" * 990
        ).encode(1)
        assert len(header) == 1000
        bystander.send_raw(struct.pack(">i", len(header)) + header)
        assert struct.unpack_from(">i", bystander.receive_frame())[0] == 5
        send_and_expect_close(node, struct.pack(">i", 1001), half_close=False)
        assert_still_serving(node, bystander)
    finally:
        bystander.close()


def test_unknown_api_keys_close_the_connection(klog_node, bystander) -> None:
    for api_key in (9999, 500, -1):
        send_and_expect_close(klog_node, frame(api_key, 0, b""), half_close=False)
    assert_still_serving(klog_node, bystander)


def test_api_the_wire_knows_but_the_broker_does_not_serve(klog_node, bystander) -> None:
    advertised = {k.api_key for k in bystander.request(ApiVersionsRequest(), 0).api_keys}
    unserved = sorted(set(REQUESTS) - advertised)
    assert unserved, "every API is served: pick another unserved-API probe"
    api_key = unserved[0]
    version = REQUESTS[api_key].VALID_VERSIONS[0]
    send_and_expect_close(klog_node, frame(api_key, version, b""), half_close=False)
    assert_still_serving(klog_node, bystander)


@pytest.mark.parametrize("version", [5, 9, 127])
def test_api_versions_of_an_unknown_version_gets_a_v0_answer(klog_node, bystander, version):
    # A future client sends its newest body (flexible, like v3+) with a v2 header.
    body = ApiVersionsRequest(client_software_name="future", client_software_version="9").encode(3)
    client = WireConnection(klog_node.bootstrap, TIMEOUT_S)
    try:
        client.send_raw(frame(18, version, body, correlation_id=77))
        answer = client.receive_frame()
    finally:
        client.close()
    assert struct.unpack_from(">i", answer)[0] == 77
    response, end = ApiVersionsResponse.decode_from(answer, 4, 0)
    assert end == len(answer)
    assert response.error_code == ErrorCode.UNSUPPORTED_VERSION
    ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert ranges[18] == (0, 4)
    assert ranges[0][1] >= 9 and ranges[1][1] >= 12  # Produce and Fetch are advertised
    assert_still_serving(klog_node, bystander)


@pytest.mark.parametrize(
    ("api_key", "version"),
    [(3, 99), (0, 12), (1, 3), (1, 40)],
    ids=["metadata-v99", "produce-v12", "fetch-v3", "fetch-v40"],
)
def test_unsupported_versions_of_other_apis_close(klog_node, bystander, api_key, version):
    send_and_expect_close(klog_node, frame(api_key, version, b""), half_close=False)
    assert_still_serving(klog_node, bystander)


# -- CreateTopics ------------------------------------------------------------------------


def create_topic(client: WireConnection, name: str, partitions=1, replication=1, configs=None):
    topic = CreateTopicsRequest.CreatableTopic(
        name=name,
        num_partitions=partitions,
        replication_factor=replication,
        assignments=[],
        configs=[
            CreateTopicsRequest.CreatableTopicConfig(name=k, value=v)
            for k, v in (configs or {}).items()
        ],
    )
    request = CreateTopicsRequest(topics=[topic], timeout_ms=10_000, validate_only=False)
    (result,) = client.request(request, CREATE_TOPICS_VERSION).topics
    assert result.name == name
    return result


@pytest.mark.parametrize(
    "name",
    ["", "x" * 250, "a/b", "..", ".", "a b", "tópico", "a\x00b", "a:b"],
    ids=["empty", "250-chars", "slash", "dotdot", "dot", "space", "non-ascii", "nul", "colon"],
)
def test_invalid_topic_names(klog_node, bystander, name) -> None:
    result = create_topic(bystander, name)
    assert result.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION, result
    assert result.error_message
    assert_still_serving(klog_node, bystander)


def test_longest_valid_topic_name_is_accepted(klog_node, bystander) -> None:
    name = "a.b_c-" + "x" * 243
    assert len(name) == 249
    assert create_topic(bystander, name).error_code == 0


@pytest.mark.parametrize("partitions", [0, -2, -100])
def test_invalid_partition_counts(klog_node, bystander, partitions) -> None:
    result = create_topic(bystander, f"parts{partitions}", partitions=partitions)
    assert result.error_code == ErrorCode.INVALID_PARTITIONS, result
    assert_still_serving(klog_node, bystander)


@pytest.mark.parametrize("replication", [2, 3, 0, -2])
def test_invalid_replication_factors(klog_node, bystander, replication) -> None:
    result = create_topic(bystander, f"rf{replication}", replication=replication)
    assert result.error_code == ErrorCode.INVALID_REPLICATION_FACTOR, result
    assert_still_serving(klog_node, bystander)


@pytest.mark.parametrize(
    "configs",
    [
        {"retention.msx": "1"},
        {"log.retention.ms": "1"},
        {"retention.ms": "soon"},
        {"cleanup.policy": "shred"},
        {"min.insync.replicas": "0"},
        {"max.message.bytes": "-5"},
        {"segment.bytes": "1"},
    ],
    ids=lambda c: next(iter(c.items())).__str__(),
)
def test_invalid_topic_configs(klog_node, bystander, configs) -> None:
    result = create_topic(bystander, "configured", configs=configs)
    assert result.error_code == ErrorCode.INVALID_CONFIG, result
    (key,) = configs
    assert key in (result.error_message or ""), result.error_message
    assert_still_serving(klog_node, bystander)


def test_real_client_sees_the_error_codes(klog_node, bystander) -> None:
    admin = AdminClient({"bootstrap.servers": klog_node.bootstrap})
    futures = admin.create_topics(
        [
            NewTopic("a/b", num_partitions=1, replication_factor=1),
            NewTopic("zero", num_partitions=0, replication_factor=1),
            NewTopic("conf", num_partitions=1, replication_factor=1, config={"retention.ms": "x"}),
        ],
        request_timeout=15,
    )
    codes = {}
    for name, future in futures.items():
        with pytest.raises(KafkaException) as caught:
            future.result(timeout=30)
        codes[name] = caught.value.args[0].code()
    assert codes == {
        "a/b": ErrorCode.INVALID_TOPIC_EXCEPTION,
        "zero": ErrorCode.INVALID_PARTITIONS,
        "conf": ErrorCode.INVALID_CONFIG,
    }
    assert_still_serving(klog_node, bystander)


# -- Produce and Fetch -------------------------------------------------------------------


def latest_offset(client: WireConnection, topic: str) -> int:
    request = ListOffsetsRequest(
        replica_id=-1,
        isolation_level=0,
        topics=[
            ListOffsetsRequest.ListOffsetsTopic(
                name=topic,
                partitions=[
                    ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=LATEST)
                ],
            )
        ],
    )
    (topic_response,) = client.request(request, LIST_OFFSETS_VERSION).topics
    (partition,) = topic_response.partitions
    assert partition.error_code == 0
    return partition.offset


def batch(count: int = 3, value_size: int = 10) -> bytes:
    return build_batch(
        (b"k%d" % i, bytes([i % 256]) * value_size, [], 1_700_000_000_000 + i) for i in range(count)
    )


def test_produce_v2_old_message_format_is_refused(klog_node, bystander) -> None:
    assert create_topic(bystander, "old").error_code == 0
    # A v1 message set (magic 1) as a v2 produce request carries it.
    message = struct.pack(">bbqi", 1, 0, 1_700_000_000_000, -1) + struct.pack(">i", 2) + b"hi"
    crc_and_message = struct.pack(">I", 0) + message
    message_set = struct.pack(">qi", 0, len(crc_and_message)) + crc_and_message
    result = bystander.produce("old", message_set, version=2)
    assert result.error_code == ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, result
    assert latest_offset(bystander, "old") == 0
    assert_still_serving(klog_node, bystander)


@pytest.mark.parametrize(
    "position",
    [ATTRIBUTES_POS, BATCH_HEADER_SIZE + 2, -1],
    ids=["attributes", "first-record", "last-byte"],
)
def test_corrupted_crc_is_corrupt_message(klog_node, bystander, position) -> None:
    assert create_topic(bystander, "crc").error_code == 0
    damaged = bytearray(batch())
    damaged[position] ^= 0x40
    result = bystander.produce("crc", bytes(damaged))
    assert result.error_code == ErrorCode.CORRUPT_MESSAGE, result
    assert latest_offset(bystander, "crc") == 0
    assert bystander.produce("crc", batch()).base_offset == 0  # the log took nothing
    assert_still_serving(klog_node, bystander)


def test_message_too_large_at_the_boundary(klog_node, bystander) -> None:
    records = batch(count=1, value_size=2000)
    limit = str(len(records))
    assert create_topic(bystander, "fits", configs={"max.message.bytes": limit}).error_code == 0
    smaller = str(len(records) - 1)
    assert create_topic(bystander, "big", configs={"max.message.bytes": smaller}).error_code == 0
    assert bystander.produce("fits", records).error_code == 0
    result = bystander.produce("big", records)
    assert result.error_code == ErrorCode.MESSAGE_TOO_LARGE, result
    assert latest_offset(bystander, "big") == 0
    assert_still_serving(klog_node, bystander)


def test_broker_message_max_bytes_applies_to_new_topics(klog_node_factory) -> None:
    node = klog_node_factory({"message.max.bytes": "1500"}).start()
    client = WireConnection(node.bootstrap, TIMEOUT_S)
    try:
        assert create_topic(client, "defaults").error_code == 0
        assert client.produce("defaults", batch(count=1, value_size=1000)).error_code == 0
        result = client.produce("defaults", batch(count=1, value_size=2000))
        assert result.error_code == ErrorCode.MESSAGE_TOO_LARGE, result
        assert_still_serving(node, client)
    finally:
        client.close()


def fetch(client: WireConnection, topic: str, offset: int):
    request = FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=1 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=[
            FetchRequest.FetchTopic(
                topic=topic,
                partitions=[
                    FetchRequest.FetchPartition(
                        partition=0, fetch_offset=offset, partition_max_bytes=1 << 20
                    )
                ],
            )
        ],
        forgotten_topics_data=[],
        rack_id="",
    )
    response = client.request(request, FETCH_VERSION)
    assert response.error_code == 0
    (topic_response,) = response.responses
    (partition,) = topic_response.partitions
    return partition


@pytest.mark.parametrize("offset", [4, 1000, -5], ids=["past-end", "far-past-end", "negative"])
def test_fetch_out_of_range(klog_node, bystander, offset) -> None:
    assert create_topic(bystander, "ranged").error_code == 0
    assert bystander.produce("ranged", batch(count=3)).error_code == 0
    at_end = fetch(bystander, "ranged", 3)
    assert (at_end.error_code, at_end.high_watermark, bytes(at_end.records or b"")) == (0, 3, b"")
    result = fetch(bystander, "ranged", offset)
    assert result.error_code == ErrorCode.OFFSET_OUT_OF_RANGE, result
    assert (result.high_watermark, result.log_start_offset) == (3, 0)
    assert_still_serving(klog_node, bystander)
