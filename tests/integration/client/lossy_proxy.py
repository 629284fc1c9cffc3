"""A TCP proxy in front of one broker that loses the answer to a chosen request.

Clients dial the proxy (the broker advertises the proxy's address, so every connection
goes through it). The proxy forwards bytes both ways and reads the Kafka frames as they
pass: it notes the correlation ids of requests with the watched API key and, for
``drop`` of them after the first ``after``, throws the broker's answer away and closes the client's
connection. The broker has done the work; the client sees a lost connection, as after a
network failure between the write and the acknowledgement.
"""

from __future__ import annotations

import socket
import struct
import threading

_SIZE = struct.Struct(">i")
_REQUEST_HEAD = struct.Struct(">hhi")  # api key, api version, correlation id
_CORRELATION = struct.Struct(">i")


class _Frames:
    """Splits a byte stream into Kafka size-prefixed frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 4:
            (size,) = _SIZE.unpack_from(self._buffer)
            if len(self._buffer) < 4 + size:
                break
            frames.append(bytes(self._buffer[: 4 + size]))
            del self._buffer[: 4 + size]
        return frames


class LossyProxy:
    """Listens on 127.0.0.1 (``port``); forwards to ``upstream`` once it is set. Setting
    ``upstream`` again moves new connections to a restarted broker's port."""

    def __init__(self, api_key: int, drop: int = 1, after: int = 0) -> None:
        self.api_key = api_key
        self.remaining_drops = drop
        self.remaining_passes = after
        self.dropped = 0
        self.upstream: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            assert self.upstream is not None, "the proxy got a client before its upstream"
            try:
                server = socket.create_connection(self.upstream)
            except OSError:  # the broker is down: the client sees a refused connection
                client.close()
                continue
            self._sockets += [client, server]
            watched: set[int] = set()
            threading.Thread(
                target=self._requests, args=(client, server, watched), daemon=True
            ).start()
            threading.Thread(
                target=self._responses, args=(server, client, watched), daemon=True
            ).start()

    def _requests(self, client: socket.socket, server: socket.socket, watched: set[int]) -> None:
        frames = _Frames()
        while data := _receive(client):
            for frame in frames.feed(data):
                api_key, _, correlation_id = _REQUEST_HEAD.unpack_from(frame, 4)
                if api_key == self.api_key:
                    watched.add(correlation_id)
                server.sendall(frame)
        _shut(server)

    def _responses(self, server: socket.socket, client: socket.socket, watched: set[int]) -> None:
        frames = _Frames()
        while data := _receive(server):
            for frame in frames.feed(data):
                (correlation_id,) = _CORRELATION.unpack_from(frame, 4)
                if correlation_id in watched and self._take_drop():
                    _shut(client)
                    _shut(server)
                    return
                try:
                    client.sendall(frame)
                except OSError:
                    return
        _shut(client)

    def _take_drop(self) -> bool:
        with self._lock:
            if self.remaining_passes > 0:
                self.remaining_passes -= 1
                return False
            if self.remaining_drops <= 0:
                return False
            self.remaining_drops -= 1
            self.dropped += 1
            return True


def _receive(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 16)
    except OSError:
        return b""


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
