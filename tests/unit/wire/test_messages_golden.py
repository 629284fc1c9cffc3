"""Golden bytes: requests real clients sent decode and re-encode byte for byte.

Fixtures were recorded by ``scripts/capture_fixtures.py`` from confluent-kafka
(librdkafka 2.16), kafka-python 3.0, aiokafka 0.14 and kcat (librdkafka 2.0.2): the
opening ApiVersions and Metadata requests against a recording server, then everything
each client sent through a recording proxy to a real klog broker while it produced one
record (key ``k``, value ``v``) to the topic ``fixtures-<client>``, consumed it from the
beginning and, for the three Python clients, did so as a group member (group
``fixtures-<client>``) that committed its offset. Each file holds one request payload
(header + body, no size prefix) as hex, named ``<client>_<Request>_v<version>.hex``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from klog.wire import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
    Request,
    ServerConnection,
    decode_consumer_protocol,
    decode_records,
    iter_batches,
    request_header_version,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wire"
FILES = sorted(FIXTURES.glob("*.hex"))
CLIENTS = ("confluent-kafka", "kafka-python", "aiokafka", "kcat")
GROUP_CLIENTS = ("confluent-kafka", "kafka-python", "aiokafka")
EVERY_CLIENT_SENDS = (
    "ApiVersionsRequest",
    "MetadataRequest",
    "ProduceRequest",
    "ListOffsetsRequest",
    "FetchRequest",
)
GROUP_MEMBERS_SEND = (
    "FindCoordinatorRequest",
    "JoinGroupRequest",
    "SyncGroupRequest",
    "HeartbeatRequest",
    "OffsetFetchRequest",
    "OffsetCommitRequest",
    "LeaveGroupRequest",
)

# Bytes a client sends after the body as klog.wire (and Kafka's broker) reads it, which
# therefore cannot come back from re-encoding. librdkafka 2.16 writes the null topic
# array of an all-topics Metadata v9+ request (``AdminClient.list_topics``) as a 4-byte
# int32 0 where a 1-byte compact-array length belongs (librdkafka#5049). The first of
# those four bytes, 0, is the compact encoding of null; the next three are read as
# allow_auto_topic_creation=false, include_topic_authorized_operations=false and no
# tagged fields, so the three bytes librdkafka meant for those fields are left over.
TRAILING = {"confluent-kafka_MetadataRequest_v12": bytes.fromhex("010000")}

# The first SyncGroup kafka-python sends assigns nothing: its leader computed the
# assignment from metadata that did not yet list the subscribed topic, and it rejoins
# once it does (the fixture is that first SyncGroup).
FIRST_ASSIGNMENT_EMPTY = {"kafka-python"}


def received(path: Path) -> Request:
    frame = bytes.fromhex(path.read_text())
    server = ServerConnection()
    server.receive_data(struct.pack(">i", len(frame)) + frame)
    request = server.next_event()
    assert isinstance(request, Request)
    return request


def fixture(client: str, api: str) -> Request:
    """The one fixture of ``client`` for ``api`` (whatever version it sent)."""
    (path,) = FIXTURES.glob(f"{client}_{api}_v*.hex")
    return received(path)


def reencoded(request: Request) -> bytes:
    header_version = request_header_version(request.api_key, request.api_version)
    assert request.body is not None
    return request.header.encode(header_version) + request.body.encode(request.api_version)


def test_every_client_has_fixtures() -> None:
    names = {p.stem.rsplit("_v", 1)[0] for p in FILES}
    for client in CLIENTS:
        for api in EVERY_CLIENT_SENDS:
            assert f"{client}_{api}" in names
    for client in GROUP_CLIENTS:
        for api in GROUP_MEMBERS_SEND:
            assert f"{client}_{api}" in names


def test_known_differences_name_existing_fixtures() -> None:
    assert {p.stem for p in FILES} >= set(TRAILING)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_captured_request_decodes_and_reencodes_byte_for_byte(path: Path) -> None:
    _client, api, version = path.stem.replace("_v", "_").split("_")
    request = received(path)
    assert request.error is None and request.body is not None
    assert (type(request.body).__name__, request.api_version) == (api, int(version))
    assert reencoded(request) + TRAILING.get(path.stem, b"") == bytes(request.frame)


def test_librdkafka_all_topics_metadata_has_a_four_byte_null_count() -> None:
    request = fixture("confluent-kafka", "MetadataRequest")
    frame = bytes(request.frame)
    body_start = len(request.header.encode(request_header_version(3, 12)))
    assert (
        frame[body_start:] == b"\x00\x00\x00\x00" + TRAILING["confluent-kafka_MetadataRequest_v12"]
    )
    # What Kafka's broker reads too: all topics, and not the auto-creation librdkafka meant.
    assert request.body.topics is None
    assert request.body.allow_auto_topic_creation is False


def test_captured_requests_carry_what_the_clients_sent() -> None:
    kcat = received(FIXTURES / "kcat_ApiVersionsRequest_v3.hex")
    assert kcat.header.client_id == "rdkafka"
    assert (kcat.body.client_software_name, kcat.body.client_software_version) == (
        "librdkafka",
        "2.0.2",
    )
    assert received(FIXTURES / "aiokafka_ApiVersionsRequest_v0.hex").body.encode(0) == b""


@pytest.mark.parametrize("client", CLIENTS)
def test_produced_records_field_holds_the_record_sent(client: str) -> None:
    request = fixture(client, "ProduceRequest")
    (topic,) = request.body.topic_data
    assert topic.name == f"fixtures-{client}"
    (partition,) = topic.partition_data
    assert partition.index == 0
    records = bytes(partition.records)
    # The records field is a view of the frame, never parsed by the message codec.
    assert records in bytes(request.frame)
    (batch,) = [batch for _header, batch in iter_batches(records)]
    ((key, value),) = [(r.key, r.value) for r in decode_records(batch)]
    assert (key, value) == (b"k", b"v")


@pytest.mark.parametrize("client", CLIENTS)
def test_fetch_asks_for_the_topic_from_the_beginning(client: str) -> None:
    request = fixture(client, "FetchRequest")
    version = request.api_version
    (topic,) = request.body.topics
    if version >= 13:
        assert topic.topic_id.int != 0  # v13+ names topics by id only
    else:
        assert topic.topic == f"fixtures-{client}"
    (partition,) = topic.partitions
    assert (partition.partition, partition.fetch_offset) == (0, 0)


@pytest.mark.parametrize("client", GROUP_CLIENTS)
def test_group_requests_carry_the_subscription_assignment_and_commit(client: str) -> None:
    group = topic = f"fixtures-{client}"
    join = fixture(client, "JoinGroupRequest").body
    assert (join.group_id, join.protocol_type) == (group, "consumer")
    assert join.protocols
    for protocol in join.protocols:
        subscription, _ = decode_consumer_protocol(ConsumerProtocolSubscription, protocol.metadata)
        assert subscription.topics == [topic]

    sync = fixture(client, "SyncGroupRequest").body
    assert sync.group_id == group
    (leader_assignment,) = sync.assignments  # the only member leads
    assignment, _ = decode_consumer_protocol(
        ConsumerProtocolAssignment, leader_assignment.assignment
    )
    expected = [] if client in FIRST_ASSIGNMENT_EMPTY else [(topic, [0])]
    assert [(t.topic, t.partitions) for t in assignment.assigned_partitions] == expected

    commit = fixture(client, "OffsetCommitRequest").body
    assert commit.group_id == group and commit.member_id == sync.member_id
    ((name, partitions),) = [(t.name, t.partitions) for t in commit.topics]
    assert name == topic
    assert [(p.partition_index, p.committed_offset) for p in partitions] == [(0, 1)]

    for api in ("HeartbeatRequest", "LeaveGroupRequest"):
        body = fixture(client, api).body
        assert body.group_id == group
