"""Client connections: one trio task per connection.

Each task feeds received bytes to a sans-I/O ``klog.wire.ServerConnection``, hands
every complete request to the router *in order* (Kafka mutes a channel while a request
is in flight; so do we: the next request is read only after the previous one was
answered), and writes the framed response. Response bytes go out with ``send_all``;
record data goes from the segment file to the socket with ``sendfile``
(``klog.native.sendfile_slice``), never through Python objects.

A frame that cannot be decoded, or whose size prefix exceeds
``socket.request.max.bytes``, closes this connection only. A connection idle for
``connections.max.idle.ms`` is closed. Connection state is owned by its task and is
never shared.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from klog import native
from klog.wire import CLOSED, NEED_DATA, ErrorCode, ProtocolError, ServerConnection

log = logging.getLogger(__name__)

API_VERSIONS_KEY = 18

Handler = Callable[[Any, "ClientInfo"], Awaitable[Any]]


@dataclass(frozen=True)
class ClientInfo:
    """Who is on the other end of a connection (for DescribeGroups' HOST, logs)."""

    host: str
    port: int


async def send_chunks(stream: trio.SocketStream, chunks: Sequence[Any]) -> None:
    """Write response chunks: bytes via send_all, file slices via zero-copy sendfile.

    A file that ends inside a slice (truncated under us) makes ``sendfile_slice``
    raise ``OSError(ENODATA)``: the promised frame size cannot be met, and the caller
    closes the connection.
    """
    sock = stream.socket
    for chunk in chunks:
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            await stream.send_all(chunk)
            continue
        position, remaining = chunk.position, chunk.size
        file_fd = chunk.fileno()
        while True:
            sent = native.sendfile_slice(sock.fileno(), file_fd, position, remaining)
            position += sent
            remaining -= sent
            if not remaining:
                break
            await trio.lowlevel.wait_writable(sock)


def _response_version(request: Any, body: Any) -> int | None:
    """None (the request's version), except for ApiVersions refusing the client's version:
    that answer is v0, the one version every client can read, whatever it asked for."""
    if request.api_key == API_VERSIONS_KEY and body.error_code == ErrorCode.UNSUPPORTED_VERSION:
        return 0
    return None


class CloseConnection(Exception):
    """Raised by a request handler when the only answer is to close the connection."""


class Drain:
    """Stop reading new requests on every connection, letting in-flight ones finish.

    Connections waiting for bytes register their receive scope here; ``start()``
    cancels exactly those, so a request being handled is never interrupted.
    """

    def __init__(self) -> None:
        self.started = False
        self._receiving: set[trio.CancelScope] = set()

    def start(self) -> None:
        self.started = True
        for scope in self._receiving:
            scope.cancel()

    def receive_scope(self, timeout_s: float) -> trio.CancelScope:
        scope = trio.CancelScope(deadline=trio.current_time() + timeout_s)
        if self.started:
            scope.cancel()
        return scope

    def register(self, scope: trio.CancelScope) -> None:
        self._receiving.add(scope)

    def unregister(self, scope: trio.CancelScope) -> None:
        self._receiving.discard(scope)


async def serve_connection(
    stream: trio.SocketStream,
    handle: Handler,
    *,
    max_frame_bytes: int,
    idle_timeout_s: float,
    drain: Drain,
) -> None:
    """Serve one client until it closes, errs, idles out, or the node drains."""
    host, port = stream.socket.getpeername()[:2]
    client = ClientInfo(host, port)
    conn = ServerConnection(max_frame_bytes=max_frame_bytes)
    sock = stream.socket
    try:
        async with stream:
            while True:
                try:
                    event = conn.next_event()
                except ProtocolError as exc:
                    log.info("closing connection from %s:%s: %s", host, port, exc)
                    return
                if event is NEED_DATA:
                    scope = drain.receive_scope(idle_timeout_s)
                    drain.register(scope)
                    try:
                        with scope:
                            # recv_into the connection's buffer: a large produce frame
                            # is written by the kernel straight into its own bytearray.
                            conn.received(await sock.recv_into(conn.receive_buffer()))
                    finally:
                        drain.unregister(scope)
                    if scope.cancelled_caught:
                        return  # idle too long, or the node is draining
                    continue
                if event is CLOSED:
                    return
                try:
                    body = await handle(event, client)
                except CloseConnection:
                    return
                if body is None:
                    chunks = conn.skip_response(event)
                else:
                    chunks = conn.send_response(event, body, _response_version(event, body))
                if chunks:
                    await send_chunks(stream, chunks)
    except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError) as exc:
        log.debug("connection from %s:%s ended: %s", host, port, exc)
    except OSError as exc:
        log.warning("closing connection from %s:%s: %s", host, port, exc)


async def serve_listeners(
    listeners: Sequence[trio.SocketListener],
    handle: Handler,
    *,
    max_frame_bytes: int,
    idle_timeout_s: float,
    drain: Drain,
    connections: trio.Nursery,
) -> None:
    """Accept connections until cancelled; connection tasks live in ``connections``.

    The caller owns ``connections`` so that on shutdown it can stop accepting (cancel
    this task) while in-flight requests in connection tasks still finish.
    """

    async def accept_loop(listener: trio.SocketListener) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:  # EMFILE and friends: back off, keep serving
                log.warning("accept failed: %s", exc)
                await trio.sleep(0.1)
                continue
            connections.start_soon(
                _serve_logged,
                stream,
                handle,
                max_frame_bytes,
                idle_timeout_s,
                drain,
            )

    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(accept_loop, listener)


async def _serve_logged(
    stream: trio.SocketStream,
    handle: Handler,
    max_frame_bytes: int,
    idle_timeout_s: float,
    drain: Drain,
) -> None:
    try:
        await serve_connection(
            stream,
            handle,
            max_frame_bytes=max_frame_bytes,
            idle_timeout_s=idle_timeout_s,
            drain=drain,
        )
    except Exception:
        # A bug in one connection must not take the node down.
        log.exception("connection task failed")
