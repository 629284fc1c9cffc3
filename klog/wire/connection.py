"""Sans-I/O state machines for one Kafka connection, in the manner of h11.

Wire format: every request and response is a frame ``size int32 | payload``. A request
payload is a request header (v0/v1/v2, chosen by API key and version, see
``klog.wire.request_header_version``) followed by the body; a response payload is a
response header (v0/v1; always v0 for ApiVersions) followed by the body.

``ServerConnection``: feed it bytes with ``receive_data`` (``b""`` = EOF), pull
``Request`` events with ``next_event`` until it returns ``NEED_DATA`` or ``CLOSED``, answer
each request with ``send_response`` (or ``skip_response`` for requests that get none,
like acks=0 produce). Both return the bytes to write *now*: responses are released
strictly in request order, so an answer to a later request waits until every earlier one
is answered or skipped. ``ClientConnection`` is the twin for clients: it numbers
requests with correlation ids, remembers which version each expects back, and matches
responses to them.

Invariants: a frame whose size prefix is negative or above ``max_frame_bytes`` is a
``ProtocolError`` as soon as its four size bytes arrive, before the body is buffered;
undecodable headers or bodies are ``ProtocolError`` (wrapping ``DecodeError``); after a
``ProtocolError`` the connection is dead and keeps raising. Requests for an unknown API
key, or a version without a schema, are still yielded (``body=None``, ``error`` set) so
the server can answer (ApiVersions' v0 fallback) or close. One instance per socket; not
shareable between tasks.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from klog.wire.exceptions import DecodeError, ProtocolError
from klog.wire.messages import (
    API_VERSIONS_KEY,
    REQUESTS,
    RESPONSES,
    Message,
    RequestHeader,
    ResponseHeader,
    request_header_version,
    response_header_version,
)

DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024  # Kafka's socket.request.max.bytes
_INT32 = struct.Struct(">i")
_KEY_VERSION = struct.Struct(">hh")
_BYTES_LIKE = (bytes, bytearray, memoryview)
_PRODUCE_KEY = 0
# Past this many consumed bytes the receive buffer is compacted.
_COMPACT_AFTER = 1 << 16
# Frames this large are assembled in a buffer of their own, received into directly.
_OWN_BUFFER_AT = 1 << 16
# ...up to this size: the buffer is allocated from the size prefix alone, so a larger
# claimed size must not cost memory before its bytes arrive (it grows with them).
_OWN_BUFFER_MAX = 8 << 20
_SCRATCH_BYTES = 1 << 16


class Sentinel:
    """A named marker returned by ``next_event``; compare with ``is``."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = Sentinel("NEED_DATA")
CLOSED = Sentinel("CLOSED")


@dataclass(eq=False, slots=True)
class Request:
    """One request received by a ``ServerConnection``.

    ``frame`` is the raw payload (header and body, without the size prefix); ``body``
    is None, and ``error`` says why, when the API key or version has no schema.
    ``records`` fields of ``body`` are views into ``frame``."""

    header: Message
    body: Message | None
    frame: memoryview
    api_key: int
    api_version: int
    correlation_id: int
    error: str | None = None
    _seq: int = field(default=-1, repr=False)
    _owner: Any = field(default=None, repr=False)


@dataclass(eq=False, slots=True)
class Response:
    """One response received by a ``ClientConnection``, matched to its request.

    ``api_version`` is the version the body was decoded with (an ApiVersions response
    may come back as v0 when the broker refused the requested version)."""

    correlation_id: int
    body: Message
    request: Message
    api_version: int
    header: Message


class _Frames:
    """Splits a byte stream into size-prefixed frames.

    Small frames are cut out of a shared buffer. A frame of ``_OWN_BUFFER_AT`` to
    ``_OWN_BUFFER_MAX`` bytes gets its own ``bytearray`` as soon as its size prefix
    arrives; the rest of it is received straight into that buffer
    (``receive_buffer``/``received``, for ``recv_into``), so bulk data is copied once,
    by the kernel. Frames are returned as writable ``bytearray`` objects, so a broker
    may patch record batches in place.
    """

    __slots__ = ("_buffer", "_eof", "_error", "_filled", "_frame", "_max", "_scratch", "_start")

    def __init__(self, max_frame_bytes: int) -> None:
        self._buffer = bytearray()
        self._start = 0
        self._eof = False
        self._error: str | None = None
        self._max = max_frame_bytes
        self._frame: bytearray | None = None
        self._filled = 0
        self._scratch = bytearray(_SCRATCH_BYTES)

    def feed(self, data: Any) -> None:
        if self._eof:
            raise RuntimeError("receive_data() called after EOF")
        if not data:
            self._eof = True
            return
        frame = self._frame
        if frame is not None:
            take = min(len(data), len(frame) - self._filled)
            frame[self._filled : self._filled + take] = memoryview(data)[:take]
            self._filled += take
            if take == len(data):
                return
            data = memoryview(data)[take:]
        self._buffer += data

    def receive_buffer(self) -> memoryview:
        """Where the next bytes from the socket should be written: the unfilled part of
        the frame being assembled, else a scratch area (``received`` then moves them)."""
        if self._eof:
            raise RuntimeError("receive_buffer() called after EOF")
        if self._frame is not None:
            return memoryview(self._frame)[self._filled :]
        return memoryview(self._scratch)

    def received(self, count: int) -> None:
        """``count`` bytes were written into the last ``receive_buffer`` (0 = EOF)."""
        if count == 0:
            self._eof = True
        elif self._frame is not None:
            self._filled += count
        else:
            with memoryview(self._scratch) as view:
                self._buffer += view[:count]

    def fail(self, message: str) -> ProtocolError:
        self._error = message
        return ProtocolError(message)

    def next_frame(self) -> bytearray | Sentinel:
        if self._error is not None:
            raise ProtocolError(self._error)
        frame = self._frame
        if frame is not None:
            if self._filled < len(frame):
                return CLOSED if self._eof else NEED_DATA
            self._frame = None
            return frame
        buffer, start = self._buffer, self._start
        available = len(buffer) - start
        if available < 4:
            return CLOSED if self._eof else NEED_DATA
        (size,) = _INT32.unpack_from(buffer, start)
        if size < 0 or size > self._max:
            raise self.fail(f"frame size {size} is outside 0..{self._max}")
        end = start + 4 + size
        if available >= 4 + size:
            frame = buffer[start + 4 : end]
            self._consume(end)
            return frame
        if _OWN_BUFFER_AT <= size <= _OWN_BUFFER_MAX and not self._eof:
            frame = bytearray(size)
            have = available - 4
            frame[:have] = memoryview(buffer)[start + 4 :]
            self._frame, self._filled = frame, have
            self._consume(len(buffer))
        return CLOSED if self._eof else NEED_DATA

    def _consume(self, end: int) -> None:
        buffer = self._buffer
        if end == len(buffer):
            buffer.clear()
            self._start = 0
        elif end > _COMPACT_AFTER:
            del buffer[:end]
            self._start = 0
        else:
            self._start = end


def _decode_body(cls: type[Message], frame: bytes, offset: int, version: int) -> Message:
    body, end = cls.decode_from(frame, offset, version)
    if end != len(frame):
        raise DecodeError(f"{cls.__name__} v{version}: {len(frame) - end} trailing bytes")
    return body


def _part_size(part: Any) -> int:
    return len(part) if isinstance(part, _BYTES_LIKE) else part.size


class ServerConnection:
    """The broker side of one client connection."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._frames = _Frames(max_frame_bytes)
        self._next_seq = 0
        self._unanswered: deque[int] = deque()
        self._ready: dict[int, list[Any]] = {}

    @property
    def pending_responses(self) -> int:
        """Requests yielded but not yet released (answered, skipped, or waiting behind)."""
        return len(self._unanswered)

    def receive_data(self, data: bytes) -> None:
        self._frames.feed(data)

    def receive_buffer(self) -> memoryview:
        """A writable buffer for the next ``recv_into``; report the count to ``received``.
        Large request frames are received straight into their own buffer this way."""
        return self._frames.receive_buffer()

    def received(self, count: int) -> None:
        """``count`` bytes were written into ``receive_buffer()``; 0 means EOF."""
        self._frames.received(count)

    def next_event(self) -> Request | Sentinel:
        frame = self._frames.next_frame()
        if isinstance(frame, Sentinel):
            return frame
        request = self._parse(frame)
        request._seq = self._next_seq
        request._owner = self
        self._next_seq += 1
        self._unanswered.append(request._seq)
        return request

    def _parse(self, frame: bytes) -> Request:
        if len(frame) < _KEY_VERSION.size:
            raise self._frames.fail(f"request frame of {len(frame)} bytes has no header")
        api_key, api_version = _KEY_VERSION.unpack_from(frame)
        try:
            header, offset = RequestHeader.decode_from(
                frame, 0, request_header_version(api_key, api_version)
            )
        except DecodeError as exc:
            raise self._frames.fail(f"bad request header: {exc}") from exc
        cls = REQUESTS.get(api_key)
        body = None
        error = None
        if cls is None:
            error = f"unknown API key {api_key}"
        elif api_version not in cls.VALID_VERSIONS:
            error = f"{cls.__name__} v{api_version} is not supported"
        else:
            try:
                # Bytes after the body are ignored, as Kafka's broker does: librdkafka
                # 2.16 writes an all-topics Metadata v12 with a 4-byte count
                # (librdkafka#5049), leaving three bytes Kafka never reads.
                body = cls.decode_from(frame, offset, api_version)[0]
            except DecodeError as exc:
                raise self._frames.fail(f"bad request body: {exc}") from exc
        return Request(
            header=header,
            body=body,
            frame=memoryview(frame),
            api_key=api_key,
            api_version=api_version,
            correlation_id=header.correlation_id,
            error=error,
        )

    def send_response(
        self, request: Request, body: Message, version: int | None = None
    ) -> list[Any]:
        """Frame the response to ``request`` and return whatever can be written now, in
        order: bytes, and file slices (objects with an int ``size``) to transmit as is.

        ``version`` defaults to the request's; pass 0 for ApiVersions' fallback answer."""
        self._check_unanswered(request)
        version = request.api_version if version is None else version
        expected = RESPONSES.get(request.api_key)
        if type(body) is not expected:
            raise TypeError(f"a {type(body).__name__} cannot answer API key {request.api_key}")
        parts = body.encode_parts(version)
        header = _INT32.pack(request.correlation_id)
        if response_header_version(request.api_key, version) == 1:
            header += b"\x00"  # no tagged fields
        size = len(header) + sum(_part_size(p) for p in parts)
        prefix = _INT32.pack(size) + header
        if isinstance(parts[0], bytes):
            parts[0] = prefix + parts[0]
        else:
            parts.insert(0, prefix)
        self._ready[request._seq] = parts
        return self._release()

    def skip_response(self, request: Request) -> list[Any]:
        """Mark ``request`` as needing no response (acks=0 produce); returns the responses
        this unblocks."""
        self._check_unanswered(request)
        self._ready[request._seq] = []
        return self._release()

    def _check_unanswered(self, request: Request) -> None:
        if request._owner is not self:
            raise ValueError("request was not received on this connection")
        if request._seq in self._ready or request._seq not in self._unanswered:
            raise ValueError(f"request {request.correlation_id} was already answered")

    def _release(self) -> list[Any]:
        out: list[Any] = []
        unanswered, ready = self._unanswered, self._ready
        while unanswered and unanswered[0] in ready:
            out.extend(ready.pop(unanswered.popleft()))
        return out


class ClientConnection:
    """The client side of one broker connection."""

    def __init__(
        self, client_id: str | None = "klog", max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ) -> None:
        self.client_id = client_id
        self._frames = _Frames(max_frame_bytes)
        self._next_correlation_id = 0
        self._in_flight: dict[int, tuple[Message, int]] = {}

    @property
    def in_flight(self) -> int:
        """Requests sent that still expect a response."""
        return len(self._in_flight)

    def send_request(
        self, body: Message, version: int, *, expect_response: bool | None = None
    ) -> tuple[int, bytes]:
        """Frame ``body`` at ``version``; returns (correlation id, bytes to write).

        ``expect_response`` defaults to False only for acks=0 produce requests."""
        api_key = body.API_KEY
        if type(body) is not REQUESTS.get(api_key):  # type: ignore[arg-type]
            raise TypeError(f"{type(body).__name__} is not a request")
        correlation_id = self._next_correlation_id
        self._next_correlation_id = (correlation_id + 1) & 0x7FFFFFFF
        header = RequestHeader(
            request_api_key=api_key,
            request_api_version=version,
            correlation_id=correlation_id,
            client_id=self.client_id,
        ).encode(request_header_version(api_key, version))  # type: ignore[arg-type]
        payload = body.encode(version)
        if expect_response is None:
            expect_response = not (api_key == _PRODUCE_KEY and body.acks == 0)  # type: ignore[attr-defined]
        if expect_response:
            self._in_flight[correlation_id] = (body, version)
        return correlation_id, _INT32.pack(len(header) + len(payload)) + header + payload

    def receive_data(self, data: bytes) -> None:
        self._frames.feed(data)

    def next_event(self) -> Response | Sentinel:
        frame = self._frames.next_frame()
        if isinstance(frame, Sentinel):
            return frame
        if len(frame) < 4:
            raise self._frames.fail(f"response frame of {len(frame)} bytes has no header")
        (correlation_id,) = _INT32.unpack_from(frame)
        if correlation_id not in self._in_flight:
            raise self._frames.fail(f"response for unknown correlation id {correlation_id}")
        request, version = self._in_flight.pop(correlation_id)
        api_key: int = request.API_KEY  # type: ignore[assignment]
        cls = RESPONSES[api_key]
        try:
            header, offset = ResponseHeader.decode_from(
                frame, 0, response_header_version(api_key, version)
            )
            try:
                body = _decode_body(cls, frame, offset, version)
            except DecodeError:
                # A broker that refuses our ApiVersions version answers with v0 (Kafka's
                # client falls back the same way).
                if api_key != API_VERSIONS_KEY or version == 0:
                    raise
                version = 0
                body = _decode_body(cls, frame, offset, version)
        except DecodeError as exc:
            raise self._frames.fail(f"bad {cls.__name__} v{version}: {exc}") from exc
        return Response(correlation_id, body, request, version, header)
