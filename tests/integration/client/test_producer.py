"""Producer against a real klog-server: futures, partitioning, batching, compression,
acks, callbacks, ordering across a broker restart, and interop with confluent-kafka."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer as ConfluentConsumer
from confluent_kafka import Producer as ConfluentProducer
from confluent_kafka import TopicPartition as ConfluentTP

from klog.client import (
    Admin,
    Consumer,
    KafkaTimeoutError,
    Producer,
    RecordMetadata,
    UnknownTopicOrPartitionError,
    partition_for_key,
)
from klog.client.errors import DeliveryCallbackError


def read_partitions(bootstrap: str, topic: str, partitions: int, count: int, consume_all):
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, p) for p in range(partitions)])
        return consume_all(consumer, count)


def test_send_returns_partition_offset_and_timestamp(bootstrap, new_topic) -> None:
    topic = new_topic(1)
    with Producer(bootstrap) as producer:
        first = producer.send(topic, b"a", timestamp=1_700_000_000_000).result(10)
        second = producer.send(topic, "b").result(10)
    assert first == RecordMetadata(topic, 0, 0, 1_700_000_000_000)
    assert (second.partition, second.offset) == (0, 1)
    assert abs(second.timestamp - time.time() * 1000) < 60_000


def test_keys_land_on_the_java_partition_and_explicit_partition_wins(
    bootstrap, new_topic, consume_all
) -> None:
    topic = new_topic(6)
    keys = [f"key-{i}".encode() for i in range(60)]
    with Producer(bootstrap, linger_ms=1) as producer:
        futures = {key: producer.send(topic, b"v", key=key) for key in keys}
        pinned = producer.send(topic, b"pinned", key=keys[0], partition=5)
        producer.flush(20)
        placed = {key: f.result(0).partition for key, f in futures.items()}
        assert pinned.result(0).partition == 5
    assert placed == {key: partition_for_key(key, 6) for key in keys}
    records = read_partitions(bootstrap, topic, 6, 61, consume_all)
    assert {(r.key, r.partition) for r in records if r.value == b"v"} == set(placed.items())


def test_keyless_records_stick_to_a_partition_per_batch(bootstrap, new_topic) -> None:
    topic = new_topic(4)
    with Producer(bootstrap, linger_ms=50, batch_size=16384) as producer:
        batch = [producer.send(topic, b"x" * 10) for _ in range(20)]
        producer.flush(20)
        assert len({f.result(0).partition for f in batch}) == 1
        # Later batches move on (KIP-480): many flushed batches use several partitions.
        used = set()
        for _ in range(12):
            used.add(producer.send(topic, b"y").result(10).partition)
        assert len(used) > 1


def test_unknown_partition_is_refused(bootstrap, new_topic) -> None:
    topic = new_topic(2)
    with Producer(bootstrap) as producer, pytest.raises(UnknownTopicOrPartitionError):
        producer.send(topic, b"v", partition=7)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_round_trip(bootstrap, new_topic, consume_all, codec: str) -> None:
    topic = new_topic(1)
    sent = [(f"k{i}".encode(), (f"value-{i}-" * 20).encode()) for i in range(500)]
    with Producer(bootstrap, compression_type=codec, linger_ms=20) as producer:
        for key, value in sent:
            producer.send(topic, value, key=key, headers=[("h", key), ("n", None)])
        producer.flush(20)
    records = read_partitions(bootstrap, topic, 1, 500, consume_all)
    assert [(r.key, r.value) for r in records] == sent
    assert records[3].headers == [("h", b"k3"), ("n", None)]
    assert [r.offset for r in records] == list(range(500))


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_acks(bootstrap, new_topic, consume_all, acks) -> None:
    topic = new_topic(1)
    with Producer(bootstrap, acks=acks) as producer:
        futures = [producer.send(topic, b"%d" % i) for i in range(50)]
        producer.flush(20)
    offsets = [f.result(0).offset for f in futures]
    assert offsets == ([-1] * 50 if acks == 0 else list(range(50)))
    assert len(read_partitions(bootstrap, topic, 1, 50, consume_all)) == 50


def test_delivery_callbacks_run_and_their_errors_surface(bootstrap, new_topic) -> None:
    topic = new_topic(1)
    delivered: list[tuple[RecordMetadata, object]] = []
    done = threading.Event()

    def on_delivery(metadata, error):
        delivered.append((metadata, error))
        if len(delivered) == 10:
            done.set()

    with Producer(bootstrap, on_delivery=on_delivery) as producer:
        for i in range(10):
            producer.send(topic, b"%d" % i)
        assert done.wait(20)
        assert [m.offset for m, _ in delivered] == list(range(10))
        assert all(e is None for _, e in delivered)

        def broken(metadata, error):
            raise RuntimeError("bug in callback")

        producer.send(topic, b"x", on_delivery=broken)
        with pytest.raises(DeliveryCallbackError) as info:
            producer.flush(20)
        assert isinstance(info.value.__cause__, RuntimeError)


def test_unknown_topic_times_out_when_auto_create_is_off(klog_node_factory) -> None:
    node = klog_node_factory({"auto.create.topics.enable": "false"}).start()
    with (
        Producer(node.bootstrap, max_block_ms=500) as producer,
        pytest.raises(KafkaTimeoutError, match="not present in metadata"),
    ):
        producer.send("missing-topic", b"v")


def test_order_is_kept_across_a_broker_restart(klog_node_factory) -> None:
    node = klog_node_factory().start()
    # Pin the port so the restarted broker is found at the same address.
    node.overrides["listeners"] = f"PLAINTEXT://127.0.0.1:{node.port}"
    with Admin(node.bootstrap) as admin:
        admin.create_topic("ordered", 1, 1)
    with Producer(
        node.bootstrap,
        max_in_flight_requests_per_connection=1,
        linger_ms=2,
        retry_backoff_ms=50,
        request_timeout_ms=3000,
    ) as producer:
        futures = [producer.send("ordered", b"%d" % i) for i in range(200)]
        producer.flush(20)
        node.stop()
        futures += [producer.send("ordered", b"%d" % i) for i in range(200, 400)]
        node.start()
        producer.flush(60)
    offsets = [f.result(0).offset for f in futures]
    assert offsets == sorted(offsets) and len(set(offsets)) == 400
    with Consumer(node.bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([("ordered", 0)])
        values = []
        deadline = time.monotonic() + 20
        while len(values) < 400 and time.monotonic() < deadline:
            values += [r.value for r in consumer.poll(0.5)]
    assert values == [b"%d" % i for i in range(400)]


def test_confluent_kafka_reads_klog_records_and_agrees_on_key_placement(
    bootstrap, new_topic, consume_all
) -> None:
    topic = new_topic(4)
    keys = [f"user-{i}".encode() for i in range(40)]
    with Producer(bootstrap) as producer:
        placed = {k: producer.send(topic, b"klog:" + k, key=k) for k in keys}
        producer.flush(20)
    # librdkafka's murmur2_random partitioner is the Java client's default.
    theirs = ConfluentProducer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    their_placement: dict[bytes, int] = {}
    for key in keys:
        theirs.produce(
            topic,
            b"confluent:" + key,
            key=key,
            on_delivery=lambda err, msg: their_placement.__setitem__(msg.key(), msg.partition()),
        )
    assert theirs.flush(20) == 0
    assert their_placement == {k: f.result(0).partition for k, f in placed.items()}
    reader = ConfluentConsumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    reader.assign([ConfluentTP(topic, p, 0) for p in range(4)])
    got = []
    deadline = time.monotonic() + 20
    while len(got) < 80 and time.monotonic() < deadline:
        got += [m for m in reader.consume(100, 0.5) if m.error() is None]
    reader.close()
    assert {(m.key(), m.value(), m.partition()) for m in got if m.value().startswith(b"klog:")} == {
        (k, b"klog:" + k, f.result(0).partition) for k, f in placed.items()
    }
