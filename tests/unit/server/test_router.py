"""The router: version table, ApiVersions fallback, and the one exception→code mapping."""

from __future__ import annotations

import logging

import pytest
import trio

from klog.segment import CrcMismatchError, OffsetOutOfRangeError
from klog.server.config import ConfigError
from klog.server.router import Api, Router, UnsupportedRequest, error_code_for
from klog.wire import ProduceRequest, ServerConnection
from klog.wire.errors import ErrorCode, KafkaError


def _request(api_key: int, version: int, body) -> object:
    """A real decoded request, framed the way a client sends it."""
    from klog.wire import ClientConnection

    client = ClientConnection("test")
    _, data = client.send_request(body, version)
    server = ServerConnection()
    server.receive_data(data)
    return server.next_event()


def _produce_body() -> ProduceRequest:
    return ProduceRequest(
        acks=1,
        timeout_ms=1000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="t",
                partition_data=[
                    ProduceRequest.PartitionProduceData(index=0, records=b""),
                    ProduceRequest.PartitionProduceData(index=3, records=b""),
                ],
            )
        ],
    )


def test_handler_bug_becomes_unknown_server_error_with_traceback_logged(caplog) -> None:
    async def broken(request, client):
        raise RuntimeError("bug in handler")

    router = Router([Api(0, 3, 11, broken)])
    request = _request(0, 9, _produce_body())
    with caplog.at_level(logging.ERROR):
        response = trio.run(router, request, None)
    partitions = response.responses[0].partition_responses
    assert [p.index for p in partitions] == [0, 3]
    assert {p.error_code for p in partitions} == {ErrorCode.UNKNOWN_SERVER_ERROR}
    assert "bug in handler" in caplog.text
    assert "Traceback" in caplog.text


def test_typed_error_is_not_logged_as_a_bug(caplog) -> None:
    async def refuses(request, client):
        raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS, "short ISR")

    router = Router([Api(0, 3, 11, refuses)])
    with caplog.at_level(logging.ERROR):
        response = trio.run(router, _request(0, 9, _produce_body()), None)
    codes = {p.error_code for p in response.responses[0].partition_responses}
    assert codes == {ErrorCode.NOT_ENOUGH_REPLICAS}
    assert caplog.text == ""


def test_unsupported_api_versions_version_gets_v0_fallback() -> None:
    from klog.wire import ApiVersionsRequest

    async def never(request, client):
        raise AssertionError("not reached")

    router = Router([Api(18, 0, 2, never), Api(3, 0, 12, never)])
    response = trio.run(router, _request(18, 4, ApiVersionsRequest()), None)
    assert response.error_code == ErrorCode.UNSUPPORTED_VERSION
    assert [(k.api_key, k.min_version, k.max_version) for k in response.api_keys] == [
        (3, 0, 12),
        (18, 0, 2),
    ]


def test_unsupported_version_of_other_api_closes() -> None:
    async def never(request, client):
        raise AssertionError("not reached")

    router = Router([Api(0, 3, 11, never)])
    with pytest.raises(UnsupportedRequest):
        trio.run(router, _request(0, 2, _produce_body()), None)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (KafkaError(ErrorCode.MESSAGE_TOO_LARGE, "x"), ErrorCode.MESSAGE_TOO_LARGE),
        (CrcMismatchError("bad crc", 0), ErrorCode.CORRUPT_MESSAGE),
        (OffsetOutOfRangeError("far"), ErrorCode.OFFSET_OUT_OF_RANGE),
        (ConfigError("bad value"), ErrorCode.INVALID_CONFIG),
        (RuntimeError("bug"), ErrorCode.UNKNOWN_SERVER_ERROR),
    ],
)
def test_error_code_for(exc: Exception, code: int) -> None:
    assert error_code_for(exc) == code
