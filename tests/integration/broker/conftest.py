"""Real Kafka clients driving real klog nodes: one driver per client family.

Each driver — confluent-kafka (librdkafka 2.16 wheel), kafka-python, aiokafka and
Debian's kcat (librdkafka 2.0.2) — exposes the same small surface: create, delete and
list topics, produce records under a compression codec, consume from the earliest
offset, from a timestamp or from the end, and query end offsets. Each is implemented
with that client's own API, so one test runs against all four. Consumers use
``assign`` and explicit positioning, never consumer groups.

``shared_node`` is one node per test module (per xdist worker): tests sharing it use
unique topic names (``topic_name``) and never change broker-wide state. Test modules
import the record types and helpers from here by their registered module name
``tests.integration.broker.conftest``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import aiokafka
import aiokafka.admin
import aiokafka.errors
import confluent_kafka
import kafka
import kafka.admin
import kafka.errors
import pytest
from confluent_kafka.admin import AdminClient

from klog.wire.records import BatchHeader, iter_batches
from tests.integration.conftest import KlogNode

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
TIMEOUT = 30.0
MESSAGE_TOO_LARGE = 10

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class Rec:
    """A record as a producer sends it; ``timestamp`` None lets the client set it."""

    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp: int | None = None


@dataclass(frozen=True)
class Consumed:
    """A record as a consumer received it, with where it was stored."""

    partition: int
    offset: int
    rec: Rec


class ProduceFailed(Exception):
    """The client reported a failed delivery; ``code`` is Kafka's error code if known."""

    def __init__(self, code: int | None, text: str) -> None:
        super().__init__(f"delivery failed (code {code}): {text}")
        self.code = code
        self.text = text


# Where the producer's delivery report says a record went, in send order (None when the
# client does not report it, as kcat does not).
Deliveries = list[tuple[int, int] | None]


def free_port() -> int:
    """A port the kernel just handed out, for nodes that must keep it across restarts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def segment_batches(node: KlogNode, topic: str, partition: int) -> list[tuple[BatchHeader, bytes]]:
    """Every batch in the partition's segment files, read straight from the data dir."""
    out = []
    for path in sorted((node.data_dir / f"{topic}-{partition}").glob("*.log")):
        data = path.read_bytes()
        out.extend((header, bytes(batch)) for header, batch in iter_batches(data))
    return out


def _headers(raw: Sequence[tuple[str, bytes | None]] | None) -> Headers:
    return tuple((name, value) for name, value in raw or ())


# -- confluent-kafka ---------------------------------------------------------------------


class ConfluentDriver:
    name = "confluent"
    explicit_timestamps = True
    nulls = True  # null keys and values can be sent
    null_header_values = True
    has_admin = True

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def create_topic(self, topic: str, partitions: int, configs: dict | None = None) -> None:
        new = confluent_kafka.admin.NewTopic(
            topic, num_partitions=partitions, replication_factor=1, config=configs or {}
        )
        admin = self.admin()  # the futures fail if their client is collected first
        admin.create_topics([new])[topic].result(TIMEOUT)

    def delete_topic(self, topic: str) -> None:
        admin = self.admin()
        admin.delete_topics([topic])[topic].result(TIMEOUT)

    def list_topics(self) -> dict[str, int]:
        metadata = self.admin().list_topics(timeout=TIMEOUT)
        return {name: len(t.partitions) for name, t in metadata.topics.items() if not t.error}

    def produce(self, topic: str, records: Sequence[Rec], codec: str = "none") -> Deliveries:
        producer = confluent_kafka.Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "linger.ms": 20,
                "compression.type": codec,
            }
        )
        reports: list = [None] * len(records)

        def report(index: int) -> Callable:
            def on_delivery(err, msg) -> None:
                reports[index] = err if err is not None else (msg.partition(), msg.offset())

            return on_delivery

        for i, rec in enumerate(records):
            producer.produce(
                topic,
                value=rec.value,
                key=rec.key,
                headers=list(rec.headers),
                timestamp=rec.timestamp or 0,
                on_delivery=report(i),
            )
        assert producer.flush(TIMEOUT) == 0, "confluent producer did not drain"
        for err in reports:
            if isinstance(err, confluent_kafka.KafkaError):
                raise ProduceFailed(err.code(), err.str())
        return reports

    def _consumer(self, **extra: object) -> confluent_kafka.Consumer:
        # librdkafka needs a group.id to build a consumer; assign() never joins the group.
        return confluent_kafka.Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "klog-tests-unused",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 100,
                **extra,
            }
        )

    @staticmethod
    def _drain(consumer: confluent_kafka.Consumer, count: int) -> list[Consumed]:
        out: list[Consumed] = []
        deadline = time.monotonic() + TIMEOUT
        while len(out) < count and time.monotonic() < deadline:
            for msg in consumer.consume(count - len(out), timeout=0.5):
                if msg.error() is not None:
                    if msg.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error: {msg.error()}")
                ts_type, ts = msg.timestamp()
                assert ts_type == confluent_kafka.TIMESTAMP_CREATE_TIME, ts_type
                rec = Rec(msg.key(), msg.value(), _headers(msg.headers()), ts)
                out.append(Consumed(msg.partition(), msg.offset(), rec))
        return out

    def consume_earliest(self, topic: str, partitions: int, count: int) -> list[Consumed]:
        consumer = self._consumer()
        try:
            consumer.assign(
                [
                    confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                    for p in range(partitions)
                ]
            )
            return self._drain(consumer, count)
        finally:
            consumer.close()

    def consume_from_timestamp(
        self, topic: str, partitions: int, timestamp: int, count: int
    ) -> list[Consumed]:
        consumer = self._consumer()
        try:
            found = consumer.offsets_for_times(
                [confluent_kafka.TopicPartition(topic, p, timestamp) for p in range(partitions)],
                timeout=TIMEOUT,
            )
            assert all(tp.error is None for tp in found), found
            # librdkafka answers OFFSET_END (-1) for a partition with nothing that late.
            consumer.assign([tp for tp in found if tp.offset >= 0])
            return self._drain(consumer, count)
        finally:
            consumer.close()

    def consume_new(
        self, topic: str, partitions: int, produce_new: Callable[[], object], count: int
    ) -> list[Consumed]:
        consumer = self._consumer(**{"enable.partition.eof": True})
        try:
            consumer.assign(
                [
                    confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_END)
                    for p in range(partitions)
                ]
            )
            # An EOF event per partition means its end offset is resolved and fetched.
            at_end: set[int] = set()
            deadline = time.monotonic() + TIMEOUT
            while len(at_end) < partitions:
                assert time.monotonic() < deadline, f"only {sorted(at_end)} reached the end"
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                err = msg.error()
                assert err is not None, "a record arrived before any was produced"
                assert err.code() == confluent_kafka.KafkaError._PARTITION_EOF, err
                at_end.add(msg.partition())
            produce_new()
            return self._drain(consumer, count)
        finally:
            consumer.close()

    def end_offsets(self, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
        consumer = self._consumer()
        try:
            return {
                p: consumer.get_watermark_offsets(
                    confluent_kafka.TopicPartition(topic, p), timeout=TIMEOUT, cached=False
                )
                for p in range(partitions)
            }
        finally:
            consumer.close()


# -- kafka-python ------------------------------------------------------------------------


class KafkaPythonDriver:
    name = "kafka-python"
    explicit_timestamps = True
    nulls = True
    null_header_values = False  # its producer insists on (str, bytes)
    has_admin = True

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def _admin(self) -> kafka.admin.KafkaAdminClient:
        return kafka.admin.KafkaAdminClient(bootstrap_servers=self.bootstrap)

    def create_topic(self, topic: str, partitions: int, configs: dict | None = None) -> None:
        admin = self._admin()
        try:
            admin.create_topics(
                [kafka.admin.NewTopic(topic, partitions, 1, topic_configs=configs or {})]
            )
        finally:
            admin.close()

    def delete_topic(self, topic: str) -> None:
        admin = self._admin()
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()

    def list_topics(self) -> dict[str, int]:
        consumer = kafka.KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            return {t: len(consumer.partitions_for_topic(t) or ()) for t in consumer.topics()}
        finally:
            consumer.close()

    def produce(self, topic: str, records: Sequence[Rec], codec: str = "none") -> Deliveries:
        producer = kafka.KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=20,
            compression_type=None if codec == "none" else codec,
        )
        try:
            futures = [
                producer.send(
                    topic,
                    value=rec.value,
                    key=rec.key,
                    headers=list(rec.headers),
                    timestamp_ms=rec.timestamp,
                )
                for rec in records
            ]
            producer.flush(TIMEOUT)
            reports: Deliveries = []
            for future in futures:
                try:
                    meta = future.get(TIMEOUT)
                except kafka.errors.KafkaError as exc:
                    raise ProduceFailed(getattr(exc, "errno", None), repr(exc)) from exc
                reports.append((meta.partition, meta.offset))
            return reports
        finally:
            producer.close(TIMEOUT)

    def _consumer(self) -> kafka.KafkaConsumer:
        return kafka.KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )

    @staticmethod
    def _tps(topic: str, partitions: int) -> list[kafka.TopicPartition]:
        return [kafka.TopicPartition(topic, p) for p in range(partitions)]

    @staticmethod
    def _drain(consumer: kafka.KafkaConsumer, count: int) -> list[Consumed]:
        out: list[Consumed] = []
        deadline = time.monotonic() + TIMEOUT
        while len(out) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    assert r.timestamp_type == 0, r
                    rec = Rec(r.key, r.value, _headers(r.headers), r.timestamp)
                    out.append(Consumed(r.partition, r.offset, rec))
        return out

    def consume_earliest(self, topic: str, partitions: int, count: int) -> list[Consumed]:
        consumer = self._consumer()
        try:
            consumer.assign(self._tps(topic, partitions))
            consumer.seek_to_beginning()
            return self._drain(consumer, count)
        finally:
            consumer.close()

    def consume_from_timestamp(
        self, topic: str, partitions: int, timestamp: int, count: int
    ) -> list[Consumed]:
        consumer = self._consumer()
        try:
            tps = self._tps(topic, partitions)
            found = consumer.offsets_for_times({tp: timestamp for tp in tps})
            starts = {tp: hit.offset for tp, hit in found.items() if hit is not None}
            consumer.assign(list(starts))
            for tp, offset in starts.items():
                consumer.seek(tp, offset)
            return self._drain(consumer, count)
        finally:
            consumer.close()

    def consume_new(
        self, topic: str, partitions: int, produce_new: Callable[[], object], count: int
    ) -> list[Consumed]:
        consumer = self._consumer()
        try:
            tps = self._tps(topic, partitions)
            consumer.assign(tps)
            consumer.seek_to_end()
            for tp in tps:
                consumer.position(tp)  # blocks until the end offset is resolved
            produce_new()
            return self._drain(consumer, count)
        finally:
            consumer.close()

    def end_offsets(self, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
        consumer = self._consumer()
        try:
            tps = self._tps(topic, partitions)
            low = consumer.beginning_offsets(tps)
            high = consumer.end_offsets(tps)
            return {tp.partition: (low[tp], high[tp]) for tp in tps}
        finally:
            consumer.close()


# -- aiokafka ----------------------------------------------------------------------------


class AiokafkaDriver:
    name = "aiokafka"
    explicit_timestamps = True
    nulls = True
    null_header_values = True
    has_admin = True

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def _with_admin(self, action: Callable) -> object:
        admin = aiokafka.admin.AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            return await action(admin)
        finally:
            await admin.close()

    def create_topic(self, topic: str, partitions: int, configs: dict | None = None) -> None:
        new = aiokafka.admin.NewTopic(topic, partitions, 1, topic_configs=configs or {})
        response = asyncio.run(self._with_admin(lambda a: a.create_topics([new])))
        errors = [(t[0], t[1]) for t in response.topic_errors if t[1]]
        assert not errors, errors

    def delete_topic(self, topic: str) -> None:
        response = asyncio.run(self._with_admin(lambda a: a.delete_topics([topic])))
        errors = [(t[0], t[1]) for t in response.topic_error_codes if t[1]]
        assert not errors, errors

    def list_topics(self) -> dict[str, int]:
        async def run() -> dict[str, int]:
            consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
            await consumer.start()
            try:
                # topics() answers from the cached metadata; refresh it first.
                await consumer._client.force_metadata_update()
                names = await consumer.topics()
                return {t: len(consumer.partitions_for_topic(t) or ()) for t in names}
            finally:
                await consumer.stop()

        return asyncio.run(run())

    def produce(self, topic: str, records: Sequence[Rec], codec: str = "none") -> Deliveries:
        async def run() -> Deliveries:
            producer = aiokafka.AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                linger_ms=20,
                compression_type=None if codec == "none" else codec,
            )
            await producer.start()
            try:
                futures = [
                    await producer.send(
                        topic,
                        value=rec.value,
                        key=rec.key,
                        headers=list(rec.headers),
                        timestamp_ms=rec.timestamp,
                    )
                    for rec in records
                ]
                reports: Deliveries = []
                for future in futures:
                    try:
                        meta = await future
                    except aiokafka.errors.KafkaError as exc:
                        raise ProduceFailed(getattr(exc, "errno", None), repr(exc)) from exc
                    reports.append((meta.partition, meta.offset))
                return reports
            finally:
                await producer.stop()

        return asyncio.run(run())

    async def _consume(self, topic: str, partitions: int, position: Callable, count: int):
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        try:
            tps = [aiokafka.TopicPartition(topic, p) for p in range(partitions)]
            await position(consumer, tps)
            out: list[Consumed] = []
            deadline = time.monotonic() + TIMEOUT
            while len(out) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for r in records:
                        assert r.timestamp_type == 0, r
                        rec = Rec(r.key, r.value, _headers(r.headers), r.timestamp)
                        out.append(Consumed(r.partition, r.offset, rec))
            return out
        finally:
            await consumer.stop()

    def consume_earliest(self, topic: str, partitions: int, count: int) -> list[Consumed]:
        async def position(consumer, tps) -> None:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)

        return asyncio.run(self._consume(topic, partitions, position, count))

    def consume_from_timestamp(
        self, topic: str, partitions: int, timestamp: int, count: int
    ) -> list[Consumed]:
        async def position(consumer, tps) -> None:
            found = await consumer.offsets_for_times({tp: timestamp for tp in tps})
            starts = {tp: hit.offset for tp, hit in found.items() if hit is not None}
            consumer.assign(list(starts))
            for tp, offset in starts.items():
                consumer.seek(tp, offset)

        return asyncio.run(self._consume(topic, partitions, position, count))

    def consume_new(
        self, topic: str, partitions: int, produce_new: Callable[[], object], count: int
    ) -> list[Consumed]:
        async def position(consumer, tps) -> None:
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                await consumer.position(tp)
            # The producer runs its own event loop, so it gets a thread of its own.
            await asyncio.to_thread(produce_new)

        return asyncio.run(self._consume(topic, partitions, position, count))

    def end_offsets(self, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
        async def run() -> dict[int, tuple[int, int]]:
            consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
            await consumer.start()
            try:
                tps = [aiokafka.TopicPartition(topic, p) for p in range(partitions)]
                low = await consumer.beginning_offsets(tps)
                high = await consumer.end_offsets(tps)
                return {tp.partition: (low[tp], high[tp]) for tp in tps}
            finally:
                await consumer.stop()

        return asyncio.run(run())


# -- kcat --------------------------------------------------------------------------------


class KcatDriver:
    """kcat has no admin commands, no explicit timestamps and one header set per run.

    Records are sent one run per distinct header set, records split at newlines and keys
    from values at ``:``, so test data for kcat avoids both (and null values).
    Consumption uses ``-J`` (a JSON envelope per record).
    """

    name = "kcat"
    explicit_timestamps = False
    nulls = False
    null_header_values = False
    has_admin = False
    # kcat prints librdkafka's error strings only; these are the ones tests expect.
    ERROR_CODES = {"Broker: Message size too large": MESSAGE_TOO_LARGE}

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def _run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kcat", "-b", self.bootstrap, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def create_topic(self, topic: str, partitions: int, configs: dict | None = None) -> None:
        ConfluentDriver(self.bootstrap).create_topic(topic, partitions, configs)

    def delete_topic(self, topic: str) -> None:
        raise NotImplementedError("kcat cannot delete topics")

    def list_topics(self) -> dict[str, int]:
        done = self._run("-L", "-J")
        assert done.returncode == 0, done.stderr
        metadata = json.loads(done.stdout)
        return {t["topic"]: len(t["partitions"]) for t in metadata["topics"] if not t.get("err")}

    def produce(self, topic: str, records: Sequence[Rec], codec: str = "none") -> Deliveries:
        # One run per header set and keyedness, keeping the send order.
        groups: list[tuple[Headers, bool, list[Rec]]] = []
        for rec in records:
            assert rec.timestamp is None and rec.value is not None
            keyed = rec.key is not None
            if not groups or groups[-1][:2] != (rec.headers, keyed):
                groups.append((rec.headers, keyed, []))
            groups[-1][2].append(rec)
        for headers, keyed, recs in groups:
            args = ["-P", "-t", topic, "-X", f"compression.codec={codec}", "-X", "linger.ms=20"]
            for name, value in headers:
                assert value is not None
                args += ["-H", f"{name}={value.decode()}"]
            if keyed:
                args += ["-K", ":"]
                lines = "".join(f"{r.key.decode()}:{r.value.decode()}\n" for r in recs)
            else:
                lines = "".join(f"{r.value.decode()}\n" for r in recs)
            done = self._run(*args, stdin=lines)
            if done.returncode != 0 or "Delivery failed" in done.stderr:
                code = next((c for t, c in self.ERROR_CODES.items() if t in done.stderr), None)
                raise ProduceFailed(code, done.stderr.strip())
        return [None] * len(records)

    @staticmethod
    def _parse(stdout: str) -> list[Consumed]:
        out = []
        for line in stdout.splitlines():
            doc = json.loads(line)
            assert doc["tstype"] == "create", doc
            flat = doc.get("headers") or []
            headers = tuple(
                (flat[i], None if flat[i + 1] is None else flat[i + 1].encode())
                for i in range(0, len(flat), 2)
            )
            key = None if doc["key"] is None else doc["key"].encode()
            value = None if doc["payload"] is None else doc["payload"].encode()
            out.append(
                Consumed(doc["partition"], doc["offset"], Rec(key, value, headers, doc["ts"]))
            )
        return out

    def _consume(self, topic: str, offset: str) -> list[Consumed]:
        done = self._run("-C", "-t", topic, "-J", "-e", "-o", offset)
        assert done.returncode == 0, done.stderr
        return self._parse(done.stdout)

    def consume_earliest(self, topic: str, partitions: int, count: int) -> list[Consumed]:
        return self._consume(topic, "beginning")

    def consume_from_timestamp(
        self, topic: str, partitions: int, timestamp: int, count: int
    ) -> list[Consumed]:
        return self._consume(topic, f"s@{timestamp}")

    def consume_new(
        self, topic: str, partitions: int, produce_new: Callable[[], object], count: int
    ) -> list[Consumed]:
        proc = subprocess.Popen(
            ["kcat", "-b", self.bootstrap, "-C", "-t", topic, "-J", "-o", "end", "-c", str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # kcat reports "Reached end of topic T [p]" once each partition is positioned.
            at_end = threading.Event()
            stderr: list[str] = []

            def watch() -> None:
                assert proc.stderr is not None
                for line in proc.stderr:
                    stderr.append(line)
                    if sum("Reached end of topic" in s for s in stderr) >= partitions:
                        at_end.set()

            threading.Thread(target=watch, daemon=True).start()
            assert at_end.wait(TIMEOUT), "kcat never reached the end:\n" + "".join(stderr)
            produce_new()
            stdout, _ = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, "".join(stderr)
        return self._parse(stdout)

    def end_offsets(self, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
        offsets: dict[int, list[int]] = {p: [0, 0] for p in range(partitions)}
        for index, logical in enumerate(("-2", "-1")):
            queries = [a for p in range(partitions) for a in ("-t", f"{topic}:{p}:{logical}")]
            done = self._run("-Q", *queries)
            assert done.returncode == 0, done.stderr
            for line in done.stdout.splitlines():
                # "<topic> [<partition>] offset <n>"
                _, partition, _, offset = line.split()
                offsets[int(partition.strip("[]"))][index] = int(offset)
        return {p: (low, high) for p, (low, high) in offsets.items()}


DRIVERS = {d.name: d for d in (ConfluentDriver, KafkaPythonDriver, AiokafkaDriver, KcatDriver)}
ADMIN_DRIVERS = sorted(name for name, d in DRIVERS.items() if d.has_admin)
Driver = ConfluentDriver | KafkaPythonDriver | AiokafkaDriver | KcatDriver


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KlogNode]:
    """One node for the module, configured by the module's ``NODE_OVERRIDES`` if any."""
    overrides = getattr(request.module, "NODE_OVERRIDES", None)
    node = KlogNode(tmp_path_factory.mktemp("shared-node"), overrides).start()
    yield node
    node.kill()


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest, shared_node: KlogNode) -> Driver:
    """Each client family in turn, pointed at the module's node."""
    return DRIVERS[request.param](shared_node.bootstrap)


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    # Kafka topic names allow [a-zA-Z0-9._-]; test ids carry brackets and commas.
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in request.node.name)
    return unique_topic(safe[:120])
