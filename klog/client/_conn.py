"""One TCP connection to one broker, on the client's trio loop.

Framing and correlation are ``klog.wire.ClientConnection``'s; this module adds the
socket, a reader task that routes each response to the task awaiting it (so requests
pipeline freely), request timeouts, and version negotiation: on connect the client
sends ApiVersions and from then on every request goes out at the highest version that
both the broker and this client implement (``CLIENT_VERSIONS``). A request timeout or
any I/O or protocol error closes the connection and fails every request in flight on
it with ``KafkaConnectionError``/``KafkaTimeoutError``; callers reconnect through the
cluster object. Used only from the loop thread.
"""

from __future__ import annotations

import math
from typing import Any

import trio

from klog.client.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    UnsupportedVersionError,
    raise_for,
)
from klog.wire import (
    CLOSED,
    NEED_DATA,
    ApiVersionsRequest,
    ClientConnection,
    ErrorCode,
    Message,
    ProtocolError,
)

# API key -> the versions whose request/response shapes this client fills and reads.
CLIENT_VERSIONS: dict[int, range] = {
    0: range(3, 12),  # Produce: v3+ carries v2 record batches
    1: range(4, 13),  # Fetch: v13+ names topics by id only
    2: range(1, 11),  # ListOffsets
    3: range(1, 13),  # Metadata
    8: range(2, 10),  # OffsetCommit
    9: range(1, 10),  # OffsetFetch (v8+ batches groups)
    10: range(0, 7),  # FindCoordinator (v4+ batches keys)
    11: range(0, 10),  # JoinGroup
    12: range(0, 5),  # Heartbeat
    13: range(0, 6),  # LeaveGroup
    14: range(0, 6),  # SyncGroup
    15: range(0, 6),  # DescribeGroups
    16: range(0, 6),  # ListGroups
    18: range(0, 5),  # ApiVersions
    19: range(0, 8),  # CreateTopics
    20: range(0, 7),  # DeleteTopics
    21: range(0, 3),  # DeleteRecords
    22: range(0, 5),  # InitProducerId
    32: range(0, 5),  # DescribeConfigs
    37: range(0, 4),  # CreatePartitions
    42: range(0, 3),  # DeleteGroups
    44: range(0, 2),  # IncrementalAlterConfigs
    47: range(0, 1),  # OffsetDelete
    60: range(0, 2),  # DescribeCluster
}
_API_VERSIONS = 18
_READ_SIZE = 1 << 18
SOFTWARE_NAME = "klog-python"
SOFTWARE_VERSION = "0.1.0"


class _Waiter:
    __slots__ = ("error", "event", "response")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.response: Any = None
        self.error: BaseException | None = None


class BrokerConnection:
    """A connected, version-negotiated connection. Create with ``open_connection``."""

    def __init__(
        self, node_id: int, host: str, port: int, client_id: str, request_timeout: float
    ) -> None:
        self.node_id = node_id
        self.host = host
        self.port = port
        self.request_timeout = request_timeout
        self._conn = ClientConnection(client_id)
        self._stream: trio.SocketStream | None = None
        self._send_lock = trio.Lock()
        self._waiters: dict[int, _Waiter] = {}
        self._closed_error: KafkaConnectionError | None = None
        self.broker_versions: dict[int, tuple[int, int]] = {}
        self.in_flight = 0

    @property
    def closed(self) -> bool:
        return self._closed_error is not None

    def supports(self, api_key: int) -> bool:
        """Whether some version of ``api_key`` is usable with this broker."""
        return self._pick(api_key) is not None

    def _pick(self, api_key: int) -> int | None:
        ours = CLIENT_VERSIONS[api_key]
        theirs = self.broker_versions.get(api_key)
        if theirs is None:
            return None
        top = min(ours.stop - 1, theirs[1])
        return top if top >= max(ours.start, theirs[0]) else None

    def version_for(self, api_key: int) -> int:
        version = self._pick(api_key)
        if version is None:
            theirs = self.broker_versions.get(api_key)
            ours = CLIENT_VERSIONS[api_key]
            raise UnsupportedVersionError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"broker {self.node_id} at {self.host}:{self.port} supports API {api_key} "
                f"versions {theirs or 'none'}, this client {ours.start}..{ours.stop - 1}",
            )
        return version

    async def connect(self, nursery: trio.Nursery, timeout: float) -> None:
        try:
            with trio.fail_after(timeout):
                self._stream = await trio.open_tcp_stream(self.host, self.port)
        except (OSError, trio.TooSlowError) as exc:
            raise KafkaConnectionError(
                f"cannot connect to {self.host}:{self.port}: {exc or 'timed out'}"
            ) from exc
        nursery.start_soon(self._reader)
        await self._negotiate()

    async def _negotiate(self) -> None:
        version = CLIENT_VERSIONS[_API_VERSIONS].stop - 1
        request = ApiVersionsRequest(
            client_software_name=SOFTWARE_NAME, client_software_version=SOFTWARE_VERSION
        )
        response = await self.request(request, version=version)
        if response.error_code == ErrorCode.UNSUPPORTED_VERSION:
            # The broker answered v0 listing its own ApiVersions range; retry inside it.
            ranges = {k.api_key: k.max_version for k in response.api_keys}
            version = min(version, ranges.get(_API_VERSIONS, 0))
            response = await self.request(request, version=version)
        raise_for(response.error_code, f"ApiVersions from {self.host}:{self.port}")
        self.broker_versions = {
            k.api_key: (k.min_version, k.max_version) for k in response.api_keys
        }

    async def request(
        self,
        body: Message,
        *,
        version: int | None = None,
        expect_response: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """Send ``body`` and return the decoded response body (None if none is expected).
        ``timeout`` overrides the request timeout (JoinGroup may wait a whole rebalance)."""
        limit = self.request_timeout if timeout is None else timeout
        if self._closed_error is not None:
            raise self._closed_error
        if version is None:
            version = self.version_for(body.API_KEY)  # type: ignore[arg-type]
        waiter = _Waiter() if expect_response else None
        self.in_flight += 1
        try:
            async with self._send_lock:
                if self._closed_error is not None:
                    raise self._closed_error
                correlation_id, data = self._conn.send_request(
                    body, version, expect_response=expect_response
                )
                if waiter is not None:
                    self._waiters[correlation_id] = waiter
                assert self._stream is not None
                try:
                    await self._stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    self._fail(f"send failed: {exc}")
                    raise self._closed_error from exc  # type: ignore[misc]
            if waiter is None:
                return None
            with trio.move_on_after(limit):
                await waiter.event.wait()
            if not waiter.event.is_set():
                name = type(body).__name__
                self._fail(f"{name} timed out after {limit:.1f}s")
                raise KafkaTimeoutError(
                    f"{name} to broker {self.node_id} ({self.host}:{self.port}) got no "
                    f"response within {limit:.1f}s"
                )
            if waiter.error is not None:
                raise waiter.error
            return waiter.response
        finally:
            self.in_flight -= 1

    async def _reader(self) -> None:
        stream = self._stream
        assert stream is not None
        try:
            while self._closed_error is None:
                data = await stream.receive_some(_READ_SIZE)
                self._conn.receive_data(data)
                while True:
                    event = self._conn.next_event()
                    if event is NEED_DATA:
                        break
                    if event is CLOSED:
                        self._fail("connection closed by the broker")
                        return
                    waiter = self._waiters.pop(event.correlation_id, None)  # type: ignore[union-attr]
                    if waiter is not None:
                        waiter.response = event.body  # type: ignore[union-attr]
                        waiter.event.set()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._fail(f"receive failed: {exc}")
        except ProtocolError as exc:
            self._fail(f"protocol error: {exc}")

    def _fail(self, reason: str) -> None:
        if self._closed_error is None:
            self._closed_error = KafkaConnectionError(
                f"broker {self.node_id} ({self.host}:{self.port}): {reason}"
            )
        for waiter in self._waiters.values():
            waiter.error = self._closed_error
            waiter.event.set()
        self._waiters.clear()
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.socket.close()

    def close(self) -> None:
        self._fail("closed by the client")


def seconds(ms: int | float) -> float:
    """Milliseconds to seconds for trio deadlines; huge values mean "no deadline"."""
    return math.inf if ms >= 2**31 - 1 else ms / 1000.0
