"""A compacted topic on a real klog-server gets compacted: after producing many values
per key, the node checkpoints a cleaned range in ``cleaner-offset-checkpoint``, and a
consumer reading from the earliest offset receives, below that offset, exactly the last
value each key had there, at the offset it was produced at (gaps where older values
were), and from it on the uncleaned active segment as produced.

The node runs the cleaner inside ``LogManager.run``. ``log.cleaner.backoff.ms`` takes
effect once the node passes its ``log.cleaner.*`` settings to the ``LogManager``
(``cleaner_config``); until then the cleaner runs with Kafka's 15 s backoff, which this
test's deadline allows for.
"""

from __future__ import annotations

import itertools

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from klog.segment.cleaner_checkpoint import CleanerOffsetCheckpoint

TOPIC = "compacted"
KEYS = 20
ROUNDS = 60


def consume_all(bootstrap: str) -> list[tuple[int, bytes, bytes]]:
    """Every record from the earliest offset to the high watermark."""
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    try:
        _, high = consumer.get_watermark_offsets(
            confluent_kafka.TopicPartition(TOPIC, 0), timeout=10
        )
        consumer.assign(
            [confluent_kafka.TopicPartition(TOPIC, 0, confluent_kafka.OFFSET_BEGINNING)]
        )
        out: list[tuple[int, bytes, bytes]] = []
        while not out or out[-1][0] < high - 1:
            message = consumer.poll(10)
            assert message is not None, f"no record after {out[-1:] or 'the start'} (end {high})"
            assert message.error() is None, message.error()
            out.append((message.offset(), message.key(), message.value()))
        return out
    finally:
        consumer.close()


@pytest.mark.slow
def test_a_compacted_topic_keeps_the_latest_value_per_key(klog_node_factory, wait_for) -> None:
    node = klog_node_factory({"log.cleaner.backoff.ms": "100"}).start()
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    configs = {
        "cleanup.policy": "compact",
        "segment.bytes": "4096",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "3600000",
    }
    futures = admin.create_topics([NewTopic(TOPIC, 1, 1, config=configs)])
    futures[TOPIC].result(timeout=30)

    producer = confluent_kafka.Producer(
        {"bootstrap.servers": node.bootstrap, "linger.ms": 0, "acks": "all"}
    )
    produced: list[tuple[int, bytes, bytes]] = []

    def delivered(error, message) -> None:
        assert error is None, error
        produced.append((message.offset(), message.key(), message.value()))

    for round_ in range(ROUNDS):
        # Keys are written every 1, 2 or 3 rounds, so their last values lie apart.
        for key in range(KEYS):
            if round_ % (1 + key % 3) == 0:
                producer.produce(
                    TOPIC, key=b"key-%d" % key, value=b"%d-%d" % (key, round_) + bytes(60),
                    on_delivery=delivered,
                )  # fmt: skip
        producer.flush(30)
    produced.sort()
    assert [offset for offset, _, _ in produced] == list(range(len(produced)))

    partition_dir = node.data_dir / f"{TOPIC}-0"

    def cleaned_to_the_active_segment() -> int | None:
        # The checkpoint is written after a pass swapped its segments in. Passes repeat
        # (backoff 100 ms) until everything below the active segment is clean; only
        # then is the log still while it is read.
        done = CleanerOffsetCheckpoint(node.data_dir).get((TOPIC, 0))
        active = max(int(path.stem) for path in partition_dir.glob("*.log"))
        return done if done == active else None

    cleaned_up_to = wait_for(
        cleaned_to_the_active_segment, timeout=60, interval=0.2, what="cleaning up to the tail"
    )
    rows = consume_all(node.bootstrap)
    assert 0 < cleaned_up_to <= produced[-1][0]
    # Below the cleaned offset: exactly the last value each key had there, at its offset.
    latest = {
        key: (offset, key, value) for offset, key, value in produced if offset < cleaned_up_to
    }
    assert [r for r in rows if r[0] < cleaned_up_to] == sorted(latest.values())
    # From there on (the active segment): everything, untouched.
    assert [r for r in rows if r[0] >= cleaned_up_to] == [
        r for r in produced if r[0] >= cleaned_up_to
    ]
    assert len(rows) < len(produced) // 10
    assert rows[0][0] > 0 and rows[-1][0] == produced[-1][0]  # never renumbered
    assert any(b[0] - a[0] > 1 for a, b in itertools.pairwise(rows))  # gaps between kept ones
