"""A blocking Kafka-protocol connection for tests that speak the wire directly.

Built on ``klog.wire.ClientConnection``. Every receive has a deadline (the socket
timeout), so a broker that neither answers nor closes fails the test instead of
hanging it.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from klog.wire import CLOSED, ClientConnection, ProduceRequest, Response


class WireConnection:
    def __init__(self, bootstrap: str, timeout_s: float = 15.0, client_id: str = "test") -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.timeout_s = timeout_s
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        self.conn = ClientConnection(client_id=client_id)

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, body: Any, version: int) -> None:
        self.sock.sendall(self.conn.send_request(body, version)[1])

    def answer(self) -> Any:
        """The body of the next response; ConnectionError if the broker closes instead."""
        while True:
            event = self.conn.next_event()
            if isinstance(event, Response):
                return event.body
            if event is CLOSED:
                raise ConnectionError("the broker closed the connection instead of answering")
            self.conn.receive_data(self.sock.recv(1 << 20))

    def request(self, body: Any, version: int) -> Any:
        self.send(body, version)
        return self.answer()

    def produce(
        self, topic: str, records: bytes, *, acks: int = 1, version: int = 9, partition: int = 0
    ) -> Any:
        """Produce ``records`` to one partition; returns that partition's response."""
        request = ProduceRequest(
            transactional_id=None,
            acks=acks,
            timeout_ms=10_000,
            topic_data=[
                ProduceRequest.TopicProduceData(
                    name=topic,
                    partition_data=[
                        ProduceRequest.PartitionProduceData(index=partition, records=records)
                    ],
                )
            ],
        )
        (topic_response,) = self.request(request, version).responses
        (partition_response,) = topic_response.partition_responses
        return partition_response

    def closed_by_broker(self) -> bool:
        """Wait up to the deadline for the broker to close; False if it sent bytes instead
        or kept the connection open."""
        try:
            return self.sock.recv(1 << 16) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def open_after(self, seconds: float) -> bool:
        """Receive for ``seconds``: True if the broker neither sent nor closed."""
        self.sock.settimeout(seconds)
        try:
            self.sock.recv(1)
            return False
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(self.timeout_s)

    def receive_frame(self) -> bytes:
        """One raw response frame (without its size prefix)."""
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack_from(">i", data)[0]:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"broker closed after {len(data)} bytes of a frame")
            data += chunk
        return data[4:]
