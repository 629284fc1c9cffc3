"""The server and client connection state machines: framing, ordering, errors."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klog.wire import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    FetchRequest,
    FetchResponse,
    MetadataRequest,
    MetadataResponse,
    ProduceRequest,
    ProduceResponse,
    ProtocolError,
)
from klog.wire.connection import (
    CLOSED,
    NEED_DATA,
    ClientConnection,
    Request,
    Response,
    ServerConnection,
)


class FileSlice:
    """Stands in for klog.segment's file slice: the codec only reads ``size``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)


def requests_of(server: ServerConnection) -> list[Request]:
    out = []
    while isinstance(event := server.next_event(), Request):
        out.append(event)
    assert event is NEED_DATA
    return out


def responses_of(client: ClientConnection) -> list[Response]:
    out = []
    while isinstance(event := client.next_event(), Response):
        out.append(event)
    assert event is NEED_DATA
    return out


def flatten(parts: list) -> bytes:
    return b"".join(p.data if isinstance(p, FileSlice) else p for p in parts)


SAMPLE_REQUESTS = [
    (ApiVersionsRequest(client_software_name="klog", client_software_version="1"), 3),
    (ApiVersionsRequest(), 0),
    (MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="t")]), 12),
    (MetadataRequest(topics=None), 4),
    (
        ProduceRequest(
            acks=1,
            timeout_ms=10,
            topic_data=[
                ProduceRequest.TopicProduceData(
                    name="t",
                    partition_data=[
                        ProduceRequest.PartitionProduceData(index=0, records=b"r" * 300)
                    ],
                )
            ],
        ),
        9,
    ),
    (FetchRequest(max_wait_ms=5), 4),
]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_pipelined_requests_survive_any_chunking(cuts: list[int]) -> None:
    client = ClientConnection("test-client")
    stream = b"".join(client.send_request(body, v)[1] for body, v in SAMPLE_REQUESTS)
    server = ServerConnection()
    received: list[Request] = []
    last = 0
    for cut in sorted({min(c, len(stream)) for c in cuts} | {len(stream)}):
        if cut == last:
            continue  # b"" would mean EOF
        server.receive_data(stream[last:cut])
        last = cut
        received += requests_of(server)
    assert [(r.body, r.api_version) for r in received] == SAMPLE_REQUESTS
    assert [r.correlation_id for r in received] == list(range(len(SAMPLE_REQUESTS)))
    assert all(r.header.client_id == "test-client" and r.error is None for r in received)
    # The raw frame is exactly what the client framed, minus the size prefix.
    assert b"".join(struct.pack(">i", len(r.frame)) + bytes(r.frame) for r in received) == stream
    server.receive_data(b"")
    assert server.next_event() is CLOSED


def test_client_and_server_round_trip_with_order_preserved() -> None:
    client, server = ClientConnection(), ServerConnection()
    corr_a, frame_a = client.send_request(MetadataRequest(topics=[]), 12)
    corr_b, frame_b = client.send_request(ApiVersionsRequest(), 3)
    server.receive_data(frame_a + frame_b)
    req_a, req_b = requests_of(server)
    answer_b = ApiVersionsResponse(
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=3, max_version=12)]
    )
    # Answering the second request first releases nothing...
    assert server.send_response(req_b, answer_b) == []
    assert server.pending_responses == 2
    answer_a = MetadataResponse(cluster_id="c", controller_id=1)
    # ...until the first is answered: both come out, in order.
    out = server.send_response(req_a, answer_a)
    assert server.pending_responses == 0
    client.receive_data(b"".join(out))
    got_a, got_b = responses_of(client)
    assert (got_a.correlation_id, got_a.body, got_a.request) == (corr_a, answer_a, req_a.body)
    assert (got_b.correlation_id, got_b.body, got_b.api_version) == (corr_b, answer_b, 3)
    assert client.in_flight == 0


def test_response_headers_follow_the_api_version() -> None:
    server = ServerConnection()
    client = ClientConnection()
    for body, version, header_tail in (
        (MetadataRequest(), 12, b"\x00"),  # flexible: response header v1
        (MetadataRequest(), 8, b""),
        (ApiVersionsRequest(), 3, b""),  # ApiVersions: always v0
    ):
        server.receive_data(client.send_request(body, version)[1])
        (request,) = requests_of(server)
        response_cls = MetadataResponse if version != 3 else ApiVersionsResponse
        data = b"".join(server.send_response(request, response_cls()))
        expected_body = response_cls().encode(version)
        assert data[4:] == struct.pack(">i", request.correlation_id) + header_tail + expected_body
        assert struct.unpack(">i", data[:4])[0] == len(data) - 4


def test_acks_zero_produce_is_skipped_and_unblocks_later_responses() -> None:
    client, server = ClientConnection(), ServerConnection()
    _, produce = client.send_request(ProduceRequest(acks=0), 9)
    corr, meta = client.send_request(MetadataRequest(), 12)
    assert client.in_flight == 1  # acks=0 expects nothing back
    server.receive_data(produce + meta)
    req_produce, req_meta = requests_of(server)
    assert server.send_response(req_meta, MetadataResponse()) == []
    out = server.skip_response(req_produce)
    client.receive_data(b"".join(out))
    (response,) = responses_of(client)
    assert response.correlation_id == corr


def test_file_slices_are_separate_parts_counted_in_the_size_prefix() -> None:
    client, server = ClientConnection(), ServerConnection()
    server.receive_data(client.send_request(FetchRequest(), 16)[1])
    (request,) = requests_of(server)
    batch = FileSlice(b"B" * 500)
    response = FetchResponse(
        responses=[
            FetchResponse.FetchableTopicResponse(
                partitions=[FetchResponse.PartitionData(partition_index=3, records=batch)]
            )
        ]
    )
    parts = server.send_response(request, response)
    assert batch in parts
    data = flatten(parts)
    assert struct.unpack(">i", data[:4])[0] == len(data) - 4
    client.receive_data(data)
    (got,) = responses_of(client)
    assert got.body.responses[0].partitions[0].records == b"B" * 500


def test_oversized_and_negative_frames_fail_from_the_prefix_alone() -> None:
    server = ServerConnection(max_frame_bytes=1000)
    server.receive_data(struct.pack(">i", 1001))
    with pytest.raises(ProtocolError, match="1001"):
        server.next_event()
    with pytest.raises(ProtocolError):  # the connection stays failed
        server.next_event()
    server = ServerConnection()
    server.receive_data(b"\xff\xff\xff\xfe")
    with pytest.raises(ProtocolError):
        server.next_event()


def test_undecodable_frames_are_protocol_errors() -> None:
    for payload in (
        b"\x00\x03",  # too short for a header
        b"\x00\x03\x00\x0c\x00\x00\x00\x01\x00\x05ab",  # client id runs past the frame
        bytes.fromhex("0003000c00000001ffff00") + b"\x05",  # Metadata v12 body truncated
    ):
        server = ServerConnection()
        server.receive_data(struct.pack(">i", len(payload)) + payload)
        with pytest.raises(ProtocolError):
            server.next_event()


def test_bytes_after_a_request_body_are_ignored_as_kafka_does() -> None:
    # librdkafka 2.16's all-topics Metadata v12: a 4-byte topic count, where the
    # compact array's varint is one byte, leaves three bytes after the body.
    payload = bytes.fromhex("0003000c00000001ffff00") + bytes.fromhex("00000000010000")
    server = ServerConnection()
    server.receive_data(struct.pack(">i", len(payload)) + payload)
    (request,) = requests_of(server)
    assert request.body is not None and request.body.topics is None
    assert request.correlation_id == 1


def test_unknown_api_and_unsupported_version_are_yielded_with_an_error() -> None:
    server = ServerConnection()
    unknown = bytes.fromhex("7fff000000000009ffff") + b"whatever"
    too_new = bytes.fromhex("001200630000000a00016300") + b"future body"
    for payload in (unknown, too_new):
        server.receive_data(struct.pack(">i", len(payload)) + payload)
    first, second = requests_of(server)
    assert first.body is None and "unknown API key" in first.error and first.correlation_id == 9
    assert second.body is None and "not supported" in second.error
    assert (second.api_key, second.api_version, second.correlation_id) == (18, 99, 10)
    # ApiVersions' fallback: a v0 response with UNSUPPORTED_VERSION, header v0.
    answer = ApiVersionsResponse(
        error_code=35,
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=4)],
    )
    assert server.skip_response(first) == []
    data = b"".join(server.send_response(second, answer, version=0))
    assert data[4:] == struct.pack(">i", 10) + answer.encode(0)


def test_client_decodes_an_api_versions_v0_fallback() -> None:
    client = ClientConnection()
    corr, _ = client.send_request(ApiVersionsRequest(), 3)
    answer = ApiVersionsResponse(
        error_code=35,
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=2)],
    )
    payload = struct.pack(">i", corr) + answer.encode(0)
    client.receive_data(struct.pack(">i", len(payload)) + payload)
    (response,) = responses_of(client)
    assert response.api_version == 0 and response.body == answer


def test_misuse_is_reported() -> None:
    client, server = ClientConnection(), ServerConnection()
    server.receive_data(client.send_request(MetadataRequest(), 1)[1])
    (request,) = requests_of(server)
    with pytest.raises(TypeError):
        server.send_response(request, ProduceResponse())
    server.send_response(request, MetadataResponse())
    with pytest.raises(ValueError, match="already answered"):
        server.send_response(request, MetadataResponse())
    with pytest.raises(ValueError, match="this connection"):
        ServerConnection().skip_response(request)
    with pytest.raises(TypeError):
        client.send_request(MetadataResponse(), 1)
    server.receive_data(b"")
    with pytest.raises(RuntimeError):
        server.receive_data(b"x")


def test_client_rejects_unknown_correlation_ids() -> None:
    client = ClientConnection()
    client.send_request(MetadataRequest(), 1)
    payload = struct.pack(">i", 42) + MetadataResponse().encode(1)
    client.receive_data(struct.pack(">i", len(payload)) + payload)
    with pytest.raises(ProtocolError, match="42"):
        client.next_event()
    client = ClientConnection()
    corr, _ = client.send_request(MetadataRequest(), 1)
    payload = struct.pack(">i", corr) + b"\x00\x00"
    client.receive_data(struct.pack(">i", len(payload)) + payload)
    with pytest.raises(ProtocolError):
        client.next_event()
    client = ClientConnection()
    client.receive_data(b"")
    assert client.next_event() is CLOSED


def test_large_frames_arriving_in_small_chunks() -> None:
    client, server = ClientConnection(), ServerConnection()
    bodies = [
        ProduceRequest(
            acks=-1,
            timeout_ms=1,
            topic_data=[
                ProduceRequest.TopicProduceData(
                    name="t",
                    partition_data=[
                        ProduceRequest.PartitionProduceData(index=i, records=bytes([i]) * 150_000)
                    ],
                )
            ],
        )
        for i in range(3)
    ]
    stream = b"".join(client.send_request(body, 9)[1] for body in bodies)
    received: list[Request] = []
    for start in range(0, len(stream), 10_000):
        server.receive_data(stream[start : start + 10_000])
        received += requests_of(server)
    assert [r.body for r in received] == bodies


def test_eof_in_the_middle_of_a_frame_closes() -> None:
    client, server = ClientConnection(), ServerConnection()
    frame = client.send_request(MetadataRequest(), 12)[1]
    server.receive_data(frame + frame[:7])
    server.receive_data(b"")
    assert isinstance(server.next_event(), Request)
    assert server.next_event() is CLOSED


@given(
    sizes=st.lists(st.sampled_from([0, 10, 5000, 70_000, 300_000]), min_size=1, max_size=6),
    chunk=st.integers(min_value=1, max_value=200_000),
)
@settings(max_examples=40, deadline=None)
def test_receive_into_buffers_assembles_frames_in_order(sizes: list[int], chunk: int) -> None:
    """The recv_into path: bytes written into receive_buffer() in arbitrary amounts come
    out as the same frames, in order, as writable bytearrays."""
    from klog.wire import ProduceRequest

    client = ClientConnection("recv-into")
    bodies, stream = [], b""
    for size in sizes:
        body = ProduceRequest(
            acks=1,
            timeout_ms=1000,
            topic_data=[
                ProduceRequest.TopicProduceData(
                    name="t",
                    partition_data=[
                        ProduceRequest.PartitionProduceData(index=0, records=bytes(size))
                    ],
                )
            ],
        )
        bodies.append(body)
        stream += client.send_request(body, 9)[1]
    server = ServerConnection()
    received, position = [], 0
    while position < len(stream):
        target = server.receive_buffer()
        count = min(chunk, len(target), len(stream) - position)
        target[:count] = stream[position : position + count]
        target.release()
        server.received(count)
        position += count
        received.extend(requests_of(server))
    assert [r.body for r in received] == bodies
    for request in received:
        records = request.body.topic_data[0].partition_data[0].records
        assert not records.readonly  # the broker patches batches in place


def test_a_large_frame_is_received_into_its_own_buffer() -> None:
    from klog.wire import ProduceRequest

    body = ProduceRequest(
        acks=1,
        timeout_ms=1,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="t",
                partition_data=[
                    ProduceRequest.PartitionProduceData(index=0, records=b"x" * 500_000)
                ],
            )
        ],
    )
    data = ClientConnection("big").send_request(body, 9)[1]
    server = ServerConnection()
    server.receive_data(data[:1000])
    assert server.next_event() is NEED_DATA
    target = server.receive_buffer()
    # After the size prefix, the rest of the frame has a buffer of exactly its size.
    assert len(target) == len(data) - 1000
    target[:] = data[1000:]
    target.release()
    server.received(len(data) - 1000)
    (request,) = requests_of(server)
    assert request.body == body


def test_a_huge_claimed_frame_costs_no_memory_before_its_bytes_arrive() -> None:
    server = ServerConnection(max_frame_bytes=100 * 1024 * 1024)
    server.receive_data(struct.pack(">i", 90 * 1024 * 1024) + b"\x00" * 100)
    assert server.next_event() is NEED_DATA
    # Still the small scratch area, not a 90 MiB frame buffer.
    assert len(server.receive_buffer()) <= 1 << 16
