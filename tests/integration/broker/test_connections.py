"""Connection lifetime: ``connections.max.idle.ms`` closes idle clients, never busy ones,
and one connection's long poll does not hold up another.

Raw sockets with ``klog.wire.ClientConnection`` framing, so the test sees exactly when the
broker closes. Waiting is always a blocking receive with a deadline.
"""

from __future__ import annotations

import time

import pytest

from klog.wire import (
    ApiVersionsRequest,
    CreateTopicsRequest,
    FetchRequest,
)
from tests.integration.wire_client import WireConnection

IDLE_MS = 400
DEADLINE_S = 15.0


def long_poll(topic: str, max_wait_ms: int) -> FetchRequest:
    partition = FetchRequest.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1024)
    return FetchRequest(
        replica_id=-1,
        max_wait_ms=max_wait_ms,
        min_bytes=1,
        max_bytes=1024,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=[FetchRequest.FetchTopic(topic=topic, partitions=[partition])],
        forgotten_topics_data=[],
        rack_id="",
    )


def create_topic(client: WireConnection, name: str) -> None:
    topic = CreateTopicsRequest.CreatableTopic(
        name=name, num_partitions=1, replication_factor=1, assignments=[], configs=[]
    )
    request = CreateTopicsRequest(topics=[topic], timeout_ms=10_000, validate_only=False)
    assert client.request(request, 7).topics[0].error_code == 0


@pytest.fixture
def idle_node(klog_node_factory):
    return klog_node_factory({"connections.max.idle.ms": str(IDLE_MS)}).start()


def test_idle_connection_is_closed_after_the_timeout(idle_node) -> None:
    client = WireConnection(idle_node.bootstrap, DEADLINE_S)
    try:
        assert client.request(ApiVersionsRequest(), 0).error_code == 0
        answered = time.monotonic()
        assert client.closed_by_broker(), f"still open {DEADLINE_S}s after the last answer"
        assert time.monotonic() - answered >= IDLE_MS / 1000 * 0.9, "closed before it idled"
    finally:
        client.close()
    assert idle_node.proc.poll() is None


def test_connection_that_never_sends_is_closed_too(idle_node) -> None:
    client = WireConnection(idle_node.bootstrap, DEADLINE_S)
    try:
        assert client.closed_by_broker()
    finally:
        client.close()


def test_requests_keep_a_connection_alive(idle_node) -> None:
    client = WireConnection(idle_node.bootstrap, DEADLINE_S)
    try:
        # Each gap is under the idle timeout; together they span several timeouts.
        for _ in range(8):
            assert client.open_after(IDLE_MS / 1000 / 2), "closed while in use"
            assert client.request(ApiVersionsRequest(), 0).error_code == 0
    finally:
        client.close()


def test_a_request_in_flight_is_not_idle(idle_node) -> None:
    client = WireConnection(idle_node.bootstrap, DEADLINE_S)
    try:
        create_topic(client, "quiet")
        # The broker holds this poll three idle timeouts long; it must answer, not close.
        response = client.request(long_poll("quiet", 3 * IDLE_MS), 12)
        assert response.error_code == 0
        assert response.responses[0].partitions[0].error_code == 0
    finally:
        client.close()


def test_default_idle_timeout_keeps_connections_open(klog_node) -> None:
    client = WireConnection(klog_node.bootstrap, DEADLINE_S)
    try:
        assert client.request(ApiVersionsRequest(), 0).error_code == 0
        # Kafka's default is ten minutes; a couple of seconds of silence is nothing.
        assert client.open_after(2.0)
        assert client.request(ApiVersionsRequest(), 0).error_code == 0
    finally:
        client.close()


def test_long_poll_does_not_block_other_connections(klog_node) -> None:
    polling = WireConnection(klog_node.bootstrap, DEADLINE_S)
    other = WireConnection(klog_node.bootstrap, DEADLINE_S)
    try:
        create_topic(other, "empty")
        polling.send(long_poll("empty", 20_000), 12)
        # Twenty round trips on another connection while the poll waits for data.
        for _ in range(20):
            assert other.request(ApiVersionsRequest(), 0).error_code == 0
        assert polling.open_after(0.05), "the poll was answered early"
    finally:
        polling.close()
        other.close()
