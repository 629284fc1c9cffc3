"""The broker starts, a real client round-trips records, and SIGTERM stops it cleanly."""

from __future__ import annotations

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic


def test_produce_consume_roundtrip_and_graceful_stop(klog_node) -> None:
    admin = AdminClient({"bootstrap.servers": klog_node.bootstrap})
    futures = admin.create_topics([NewTopic("smoke", num_partitions=3, replication_factor=1)])
    futures["smoke"].result(timeout=30)

    producer = confluent_kafka.Producer(
        {"bootstrap.servers": klog_node.bootstrap, "acks": "all", "linger.ms": 5}
    )
    delivered = []
    for i in range(300):
        producer.produce(
            "smoke",
            value=f"value-{i}".encode(),
            key=f"key-{i % 7}".encode(),
            callback=lambda err, msg: delivered.append((err, msg.partition(), msg.offset())),
        )
    assert producer.flush(30) == 0
    assert len(delivered) == 300
    assert all(err is None for err, _, _ in delivered)

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": klog_node.bootstrap,
            "group.id": "unused",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([confluent_kafka.TopicPartition("smoke", p, 0) for p in range(3)])
    seen = {}
    while len(seen) < 300:
        message = consumer.poll(10)
        assert message is not None, f"only {len(seen)} of 300 records came back"
        assert message.error() is None, message.error()
        seen[message.value()] = (message.key(), message.partition(), message.offset())
    consumer.close()

    for i in range(300):
        key, partition, offset = seen[f"value-{i}".encode()]
        assert key == f"key-{i % 7}".encode()
    by_partition: dict[int, list[int]] = {}
    for _, partition, offset in seen.values():
        by_partition.setdefault(partition, []).append(offset)
    for offsets in by_partition.values():
        assert sorted(offsets) == list(range(len(offsets)))

    assert klog_node.stop() == 0
    assert "shutdown complete" in klog_node.log_text()
