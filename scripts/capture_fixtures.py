#!/usr/bin/env python3
"""Record requests real Kafka clients send, as golden fixtures for the codecs.

Two recordings per client, each client in subprocesses:

1. Opening requests. A tiny recording broker (plain sockets and threads) listens on a
   free loopback port. It answers ApiVersions with klog's own encoder, advertising every
   version klog has a schema for, answers Metadata with itself as the only broker, and
   records the first ApiVersions and the first Metadata request of each client, which is
   killed once both are recorded:

   * confluent-kafka (librdkafka): ``AdminClient.list_topics``
   * kafka-python: ``KafkaConsumer.topics``
   * aiokafka: ``AIOKafkaClient.bootstrap`` and a metadata fetch
   * kcat: ``kcat -L``

2. A conversation through a recording TCP proxy. A real ``klog-server`` runs on a temp
   dir and advertises the proxy's address (``advertised.listeners``), so every
   connection a client opens, bootstrap, partition leader or group coordinator, goes
   through the proxy. The proxy forwards bytes both ways unchanged and records each
   request frame the client sends. Each client produces one tiny record (key ``k``,
   value ``v``) to its own one-partition topic and consumes it back from the beginning;
   the three Python clients consume as a group member (FindCoordinator, JoinGroup,
   SyncGroup, a few Heartbeats, OffsetFetch, a sync OffsetCommit, LeaveGroup on close):

   * confluent-kafka: ``Producer``, a ``Consumer`` in a group, then
     ``AdminClient.list_topics`` (its all-topics Metadata v12, see below)
   * kafka-python: ``KafkaProducer`` (not idempotent: klog has no InitProducerId yet)
     then a ``KafkaConsumer`` in a group
   * aiokafka: ``AIOKafkaProducer`` then an ``AIOKafkaConsumer`` in a group
   * kcat: ``kcat -P`` then ``kcat -C -o beginning -c 1 -e`` (no group)

One frame per (client, API key, version) is kept: the first one klog.wire does not
re-encode byte for byte, if any (the golden test pins down exactly how it differs, e.g.
librdkafka 2.16 writes the null topic array of an all-topics Metadata v12 as a 4-byte
count, librdkafka#5049), else the first one sent, opening requests first (they were
asked of a broker advertising every version klog knows). Fixtures are written to
``tests/fixtures/wire/<client>_<Request>_v<version>.hex``: one request payload (request
header + body, without the size prefix) as hex text, checked by
``tests/unit/wire/test_messages_golden.py``. Re-run to refresh (a client's old fixtures
are deleted first):

    python scripts/capture_fixtures.py [--clients kcat,aiokafka] [--timeout 60]
"""

from __future__ import annotations

import argparse
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

from _broker import Broker

from klog.wire import (
    REQUESTS,
    ApiVersionsResponse,
    ClientConnection,
    CreateTopicsRequest,
    MetadataResponse,
    ProtocolError,
    Request,
    Response,
    ServerConnection,
    request_header_version,
)

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "wire"
API_VERSIONS, METADATA = 18, 3
TOPIC = "fixture-topic"
LISTENING = "klog listening on "

OPENING = {
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

# Group members heartbeat every 500 ms and stay 2 s after their commit, so that the
# recording holds Heartbeat requests; closing sends LeaveGroup.
CONFLUENT_CONVERSATION = """\
import time
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
producer = Producer({'bootstrap.servers': '{addr}', 'linger.ms': 0})
producer.produce('{topic}', key=b'k', value=b'v')
assert producer.flush(30) == 0
consumer = Consumer({
    'bootstrap.servers': '{addr}', 'group.id': '{group}', 'auto.offset.reset': 'earliest',
    'enable.auto.commit': False, 'session.timeout.ms': 6000, 'heartbeat.interval.ms': 500,
})
consumer.subscribe(['{topic}'])
deadline = time.monotonic() + 30
message = None
while message is None or message.error():
    assert time.monotonic() < deadline, 'no record'
    message = consumer.poll(0.5)
assert message.value() == b'v'
consumer.commit(message=message, asynchronous=False)
until = time.monotonic() + 2
while time.monotonic() < until:
    consumer.poll(0.2)
consumer.close()
AdminClient({'bootstrap.servers': '{addr}'}).list_topics(timeout=10)
"""

KAFKA_PYTHON_CONVERSATION = """\
import time
from kafka import KafkaConsumer, KafkaProducer
producer = KafkaProducer(bootstrap_servers='{addr}', enable_idempotence=False, linger_ms=0)
producer.send('{topic}', key=b'k', value=b'v').get(30)
producer.close()
consumer = KafkaConsumer(
    '{topic}', bootstrap_servers='{addr}', group_id='{group}', auto_offset_reset='earliest',
    enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500,
)
deadline = time.monotonic() + 30
records = []
while not records:
    assert time.monotonic() < deadline, 'no record'
    records = [r for rs in consumer.poll(500).values() for r in rs]
assert records[0].value == b'v'
consumer.commit()
until = time.monotonic() + 2
while time.monotonic() < until:
    consumer.poll(200)
consumer.close()
"""

AIOKAFKA_CONVERSATION = """\
import asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
async def main():
    producer = AIOKafkaProducer(bootstrap_servers='{addr}', linger_ms=0)
    await producer.start()
    await producer.send_and_wait('{topic}', key=b'k', value=b'v')
    await producer.stop()
    consumer = AIOKafkaConsumer(
        '{topic}', bootstrap_servers='{addr}', group_id='{group}',
        auto_offset_reset='earliest', enable_auto_commit=False,
        session_timeout_ms=6000, heartbeat_interval_ms=500,
    )
    await consumer.start()
    record = await asyncio.wait_for(consumer.getone(), 30)
    assert record.value == b'v'
    await consumer.commit()
    await asyncio.sleep(2)
    await consumer.stop()
asyncio.run(main())
"""

# Per client: (command, stdin, expected stdout or None) steps run one after the other
# through the proxy; the Python scripts check what they consume themselves.
CONVERSATIONS: dict[str, list[tuple[list[str], bytes | None, bytes | None]]] = {
    "confluent-kafka": [([sys.executable, "-c", CONFLUENT_CONVERSATION], None, None)],
    "kafka-python": [([sys.executable, "-c", KAFKA_PYTHON_CONVERSATION], None, None)],
    "aiokafka": [([sys.executable, "-c", AIOKAFKA_CONVERSATION], None, None)],
    "kcat": [
        (["kcat", "-b", "{addr}", "-P", "-t", "{topic}", "-K", ":"], b"k:v\n", None),
        (
            ["kcat", "-b", "{addr}", "-C", "-t", "{topic}", "-o", "beginning", "-c", "1", "-e"],
            None,
            b"v\n",
        ),
    ],
}

Frames = dict[tuple[int, int], bytes]  # (API key, version) -> request payload


# -- the opening requests, against a recording broker -------------------------------------


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


def capture_opening(client: str, timeout: float) -> list[bytes]:
    recorder = Recorder()
    addr = f"{recorder.host}:{recorder.port}"
    command = [part.replace("{addr}", addr) for part in OPENING[client]]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not recorder.done.wait(timeout):
            raise SystemExit(f"{client}: recorded only API keys {sorted(recorder.frames)}")
    finally:
        proc.kill()
        proc.wait()
        recorder.close()
    return [bytes(request.frame) for request in recorder.frames.values()]


# -- a conversation through a recording proxy in front of a real broker -------------------


def broker_address(broker: Broker) -> tuple[str, int]:
    """The port the broker bound (it advertises the proxy's)."""
    host, port = broker.bootstrap.rsplit(":", 1)
    return host, int(port)


def create_topic(broker: Broker, name: str) -> None:
    """CreateTopics straight to the broker's own port, not through the proxy."""
    conn = ClientConnection(client_id="capture-fixtures")
    request = CreateTopicsRequest(
        topics=[
            CreateTopicsRequest.CreatableTopic(
                name=name, num_partitions=1, replication_factor=1, assignments=[], configs=[]
            )
        ],
        timeout_ms=30000,
    )
    with socket.create_connection(broker_address(broker)) as sock:
        sock.sendall(conn.send_request(request, 5)[1])
        while not isinstance(response := conn.next_event(), Response):
            conn.receive_data(sock.recv(65536))
    (result,) = response.body.topics
    if result.error_code:
        raise SystemExit(f"creating {name}: error {result.error_code} {result.error_message}")


class RecordingProxy:
    """Forwards each accepted connection to the broker, byte for byte both ways, and
    records every request frame the clients send."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self.listener.getsockname()[:2]
        self.upstream: tuple[str, int] = ("", 0)
        self._frames: list[bytes] = []
        self._lock = threading.Lock()

    def start(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        threading.Thread(target=self._accept, daemon=True).start()

    def take(self) -> list[bytes]:
        """The request payloads recorded since the last call."""
        with self._lock:
            frames, self._frames = self._frames, []
        return frames

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            broker = socket.create_connection(self.upstream)
            threading.Thread(target=self._requests, args=(client, broker), daemon=True).start()
            threading.Thread(target=self._copy, args=(broker, client), daemon=True).start()

    def _requests(self, client: socket.socket, broker: socket.socket) -> None:
        pending = bytearray()
        try:
            while data := client.recv(65536):
                broker.sendall(data)
                pending += data
                while len(pending) >= 4:
                    (size,) = struct.unpack_from(">i", pending)
                    if len(pending) < 4 + size:
                        break
                    with self._lock:
                        self._frames.append(bytes(pending[4 : 4 + size]))
                    del pending[: 4 + size]
        except OSError:
            pass  # either side went away: the conversation on this connection is over
        finally:
            _close_both(client, broker)

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close_both(source, sink)

    def close(self) -> None:
        self.listener.close()


def _close_both(a: socket.socket, b: socket.socket) -> None:
    for sock in (a, b):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the other direction's thread closed it first
        sock.close()


def capture_conversation(
    client: str, broker: Broker, proxy: RecordingProxy, timeout: float
) -> list[bytes]:
    """Every request payload the client sent, in order (per connection)."""
    topic = f"fixtures-{client}"  # each run has a fresh broker: no collisions
    create_topic(broker, topic)
    proxy.take()
    values = {"{addr}": f"{proxy.host}:{proxy.port}", "{topic}": topic, "{group}": topic}
    for template, stdin, expected in CONVERSATIONS[client]:
        command = list(template)
        for key, value in values.items():
            command = [part.replace(key, value) for part in command]
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise SystemExit(f"{client}: {template[0]} timed out after {timeout:g} s") from exc
        if done.returncode != 0:
            raise SystemExit(f"{client}: {template[:2]} failed:\n{done.stderr.decode()}")
        if expected is not None and done.stdout != expected:
            raise SystemExit(f"{client}: {template[:2]} printed {done.stdout!r}, not {expected!r}")
    return proxy.take()


def reencodes(frame: bytes) -> bool:
    """Whether klog.wire decodes the payload and encodes it back to the same bytes."""
    server = ServerConnection()
    server.receive_data(struct.pack(">i", len(frame)) + frame)
    request = server.next_event()
    assert isinstance(request, Request) and request.body is not None
    version = request_header_version(request.api_key, request.api_version)
    again = request.header.encode(version) + request.body.encode(request.api_version)
    return again == frame


def representatives(frames: list[bytes]) -> Frames:
    """One payload per (API key, version): the first one klog.wire does not re-encode
    byte for byte (the golden test must pin down how it differs), else the first."""
    chosen: Frames = {}
    odd: set[tuple[int, int]] = set()
    for frame in frames:
        slot = struct.unpack_from(">hh", frame)
        if slot in odd:
            continue
        if not reencodes(frame):
            chosen[slot] = frame
            odd.add(slot)
        else:
            chosen.setdefault(slot, frame)
    return chosen


def write(client: str, frames: Frames) -> list[Path]:
    """Replace the client's fixtures with ``frames``."""
    for old in OUT.glob(f"{client}_*.hex"):
        old.unlink()
    written = []
    for (api_key, api_version), frame in sorted(frames.items()):
        path = OUT / f"{client}_{REQUESTS[api_key].__name__}_v{api_version}.hex"
        path.write_text(frame.hex() + "\n")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default=",".join(OPENING), help="comma-separated")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per client step")
    args = parser.parse_args()
    clients = args.clients.split(",")
    captured = {client: capture_opening(client, args.timeout) for client in clients}
    proxy = RecordingProxy()
    with tempfile.TemporaryDirectory(prefix="capture-fixtures-") as tmp:
        broker = Broker(
            Path(tmp) / "data",
            {
                "advertised.listeners": f"PLAINTEXT://{proxy.host}:{proxy.port}",
                "group.initial.rebalance.delay.ms": "0",
                "offsets.topic.num.partitions": "4",
            },
        ).start()
        proxy.start(broker_address(broker))
        try:
            for client in clients:
                captured[client] += capture_conversation(client, broker, proxy, args.timeout)
        finally:
            proxy.close()
            broker.stop()
    OUT.mkdir(parents=True, exist_ok=True)
    for client in clients:
        for path in write(client, representatives(captured[client])):
            print(f"{client}: wrote {path.relative_to(OUT.parents[2])}")


if __name__ == "__main__":
    main()
