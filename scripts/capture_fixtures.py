#!/usr/bin/env python3
"""Record the first requests real Kafka clients send, as golden fixtures for the codecs.

A tiny recording broker (plain sockets and threads) listens on a free loopback port. It
answers ApiVersions with klog's own encoder, advertising every version klog has a schema
for, answers Metadata with itself as the only broker, and records the raw payload
(request header + body, without the size prefix) of the first ApiVersions and the first
Metadata request of each client. Each client runs in a subprocess, killed once both
requests are recorded:

* confluent-kafka (librdkafka): ``AdminClient.list_topics``
* kafka-python: ``KafkaConsumer.topics``
* aiokafka: ``AIOKafkaClient.bootstrap`` and a metadata fetch
* kcat: ``kcat -L``

Fixtures are written to ``tests/fixtures/wire/<client>_<Request>_v<version>.hex`` (hex
text) and checked by ``tests/unit/wire/test_messages_golden.py``. Re-run to refresh:

    python scripts/capture_fixtures.py [--clients kcat,aiokafka] [--timeout 20]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from klog.wire import (
    REQUESTS,
    ApiVersionsResponse,
    MetadataResponse,
    ProtocolError,
    Request,
    ServerConnection,
)

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "wire"
API_VERSIONS, METADATA = 18, 3
TOPIC = "fixture-topic"

CLIENTS = {
    "confluent-kafka": [
        sys.executable,
        "-c",
        "from confluent_kafka.admin import AdminClient\n"
        "AdminClient({'bootstrap.servers': '{addr}'}).list_topics(timeout=10)",
    ],
    "kafka-python": [
        sys.executable,
        "-c",
        "from kafka import KafkaConsumer\n"
        "KafkaConsumer(bootstrap_servers='{addr}', request_timeout_ms=10000).topics()",
    ],
    "aiokafka": [
        sys.executable,
        "-c",
        textwrap.dedent(
            """\
            import asyncio
            from aiokafka.client import AIOKafkaClient
            async def main():
                client = AIOKafkaClient(bootstrap_servers='{addr}')
                await client.bootstrap()
                await client.fetch_all_metadata()
                await client.close()
            asyncio.run(main())
            """
        ),
    ],
    "kcat": ["kcat", "-b", "{addr}", "-L", "-m", "10"],
}


def api_versions_answer() -> ApiVersionsResponse:
    return ApiVersionsResponse(
        api_keys=[
            ApiVersionsResponse.ApiVersion(
                api_key=key,
                min_version=cls.VALID_VERSIONS.start,
                max_version=cls.VALID_VERSIONS.stop - 1,
            )
            for key, cls in sorted(REQUESTS.items())
        ]
    )


def metadata_answer(request: Request, host: str, port: int) -> MetadataResponse:
    m = MetadataResponse
    names = [t.name for t in (request.body.topics or [])] or [TOPIC]
    return m(
        brokers=[m.MetadataResponseBroker(node_id=0, host=host, port=port)],
        cluster_id="klog-fixtures",
        controller_id=0,
        topics=[
            m.MetadataResponseTopic(
                name=name,
                partitions=[
                    m.MetadataResponsePartition(
                        partition_index=0, leader_id=0, replica_nodes=[0], isr_nodes=[0]
                    )
                ],
            )
            for name in names
        ],
    )


class Recorder:
    """Serves connections until the first ApiVersions and Metadata requests are seen."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self.listener.getsockname()[:2]
        self.frames: dict[int, Request] = {}
        self.done = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = ServerConnection()
        with sock:
            try:
                while data := sock.recv(65536):
                    conn.receive_data(data)
                    while isinstance(request := conn.next_event(), Request):
                        self._handle(sock, conn, request)
            except (ProtocolError, OSError):
                return  # clients are killed mid-conversation

    def _handle(self, sock: socket.socket, conn: ServerConnection, request: Request) -> None:
        with self._lock:
            if request.api_key in (API_VERSIONS, METADATA):
                self.frames.setdefault(request.api_key, request)
            if len(self.frames) == 2:
                self.done.set()
        if request.api_key == API_VERSIONS:
            if request.body is None:  # a version we lack: Kafka's v0 fallback
                answer = api_versions_answer()
                answer.error_code = 35
                sock.sendall(b"".join(conn.send_response(request, answer, version=0)))
            else:
                sock.sendall(b"".join(conn.send_response(request, api_versions_answer())))
        elif request.api_key == METADATA and request.body is not None:
            answer = metadata_answer(request, self.host, self.port)
            sock.sendall(b"".join(conn.send_response(request, answer)))
        else:
            sock.sendall(b"".join(conn.skip_response(request)))

    def close(self) -> None:
        self.listener.close()


def capture(client: str, timeout: float) -> list[Path]:
    recorder = Recorder()
    addr = f"{recorder.host}:{recorder.port}"
    command = [part.replace("{addr}", addr) for part in CLIENTS[client]]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not recorder.done.wait(timeout):
            raise SystemExit(f"{client}: recorded only API keys {sorted(recorder.frames)}")
    finally:
        proc.kill()
        proc.wait()
        recorder.close()
    written = []
    for key in (API_VERSIONS, METADATA):
        request = recorder.frames[key]
        name = f"{client}_{REQUESTS[key].__name__}_v{request.api_version}.hex"
        path = OUT / name
        path.write_text(bytes(request.frame).hex() + "\n")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per client")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for client in args.clients.split(","):
        for old in OUT.glob(f"{client}_*.hex"):
            old.unlink()
        for path in capture(client, args.timeout):
            print(f"{client}: wrote {path.relative_to(OUT.parents[2])}")


if __name__ == "__main__":
    main()
