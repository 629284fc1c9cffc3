"""Consumer (assign mode) against a real klog-server: polling, iteration, seeks,
positions, pause/resume, offsets by time, offset reset policies and out-of-range."""

from __future__ import annotations

import time

import pytest

from klog.client import (
    Consumer,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    Producer,
    TopicPartition,
)


def produce(
    bootstrap: str, topic: str, count: int, partition: int = 0, start_ts: int | None = None
):
    with Producer(bootstrap, linger_ms=5) as producer:
        futures = [
            producer.send(
                topic,
                b"v%d" % i,
                key=b"k%d" % i,
                partition=partition,
                timestamp=None if start_ts is None else start_ts + i * 1000,
            )
            for i in range(count)
        ]
        producer.flush(20)
    return [f.result(0) for f in futures]


def test_poll_returns_everything_in_order_with_max_records(bootstrap, new_topic) -> None:
    topic = new_topic(1)
    produce(bootstrap, topic, 1200)
    with Consumer(bootstrap, auto_offset_reset="earliest", max_poll_records=100) as consumer:
        consumer.assign([TopicPartition(topic, 0)])
        records = []
        deadline = time.monotonic() + 20
        while len(records) < 1200 and time.monotonic() < deadline:
            batch = consumer.poll(1.0, max_records=7)
            assert len(batch) <= 7
            records += batch
        assert [r.offset for r in records] == list(range(1200))
        assert records[5].key == b"k5" and records[5].value == b"v5"
        assert consumer.position((topic, 0)) == 1200
        assert consumer.poll(0.2) == []


def test_iteration_yields_records(bootstrap, new_topic) -> None:
    topic = new_topic(2)
    produce(bootstrap, topic, 10, partition=1)
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, 0), (topic, 1)])
        seen = []
        for record in consumer:
            seen.append(record)
            if len(seen) == 10:
                break
    assert {r.partition for r in seen} == {1}
    assert [r.value for r in seen] == [b"v%d" % i for i in range(10)]


def test_latest_reset_skips_existing_records(bootstrap, new_topic, consume_all) -> None:
    topic = new_topic(1)
    produce(bootstrap, topic, 5)
    with Consumer(bootstrap, auto_offset_reset="latest") as consumer:
        consumer.assign([(topic, 0)])
        assert consumer.position((topic, 0)) == 5
        produce(bootstrap, topic, 3)
        assert [r.offset for r in consume_all(consumer, 3)] == [5, 6, 7]


def test_reset_none_without_a_position_raises(bootstrap, new_topic) -> None:
    topic = new_topic(1)
    with Consumer(bootstrap, auto_offset_reset="none") as consumer:
        consumer.assign([(topic, 0)])
        with pytest.raises(NoOffsetForPartitionError) as info:
            consumer.poll(0.5)
        assert info.value.partitions == [TopicPartition(topic, 0)]
        assert "seek()" in str(info.value)
        consumer.seek((topic, 0), 0)
        assert consumer.poll(0.2) == []


def test_seek_seek_to_beginning_and_end(bootstrap, new_topic, consume_all) -> None:
    topic = new_topic(1)
    produce(bootstrap, topic, 20)
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, 0)])
        consume_all(consumer, 20)
        consumer.seek((topic, 0), 15)
        assert [r.offset for r in consume_all(consumer, 5)] == [15, 16, 17, 18, 19]
        consumer.seek_to_beginning()
        assert consumer.position((topic, 0)) == 0
        assert consume_all(consumer, 20)[0].offset == 0
        consumer.seek_to_end([(topic, 0)])
        assert consumer.position((topic, 0)) == 20
        assert consumer.beginning_offsets([(topic, 0)]) == {TopicPartition(topic, 0): 0}
        assert consumer.end_offsets([(topic, 0)]) == {TopicPartition(topic, 0): 20}
        with pytest.raises(ValueError, match="not assigned"):
            consumer.seek((topic, 3), 0)


def test_offsets_for_times(bootstrap, new_topic) -> None:
    topic = new_topic(1)
    base = 1_600_000_000_000
    produce(bootstrap, topic, 10, start_ts=base)
    with Consumer(bootstrap) as consumer:
        found = consumer.offsets_for_times({(topic, 0): base + 3500})
        assert found[TopicPartition(topic, 0)].offset == 4
        assert found[TopicPartition(topic, 0)].timestamp == base + 4000
        assert consumer.offsets_for_times({(topic, 0): base + 10**9}) == {
            TopicPartition(topic, 0): None
        }


def test_pause_and_resume(bootstrap, new_topic, consume_all) -> None:
    topic = new_topic(2)
    produce(bootstrap, topic, 5, partition=0)
    produce(bootstrap, topic, 5, partition=1)
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, 0), (topic, 1)])
        consumer.pause([(topic, 0)])
        assert consumer.paused() == {TopicPartition(topic, 0)}
        got = consume_all(consumer, 5)
        assert {r.partition for r in got} == {1}
        assert consumer.poll(0.3) == []
        consumer.resume([(topic, 0)])
        assert {r.partition for r in consume_all(consumer, 5)} == {0}


def test_out_of_range_position_follows_reset_policy(
    bootstrap, admin, new_topic, consume_all
) -> None:
    topic = new_topic(1)
    produce(bootstrap, topic, 30)
    admin.delete_records({(topic, 0): 20})
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, 0)])
        consumer.seek((topic, 0), 5)  # below the log start offset now
        records = consume_all(consumer, 10)
        assert [r.offset for r in records] == list(range(20, 30))
    with Consumer(bootstrap, auto_offset_reset="none") as consumer:
        consumer.assign([(topic, 0)])
        consumer.seek((topic, 0), 5)
        with pytest.raises(OffsetOutOfRangeError):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                consumer.poll(0.5)


def test_assign_replaces_the_assignment_and_keeps_positions(
    bootstrap, new_topic, consume_all
) -> None:
    topic = new_topic(2)
    produce(bootstrap, topic, 4, partition=0)
    produce(bootstrap, topic, 4, partition=1)
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, 0)])
        consume_all(consumer, 4)
        consumer.assign([(topic, 0), (topic, 1)])
        assert consumer.assignment() == {TopicPartition(topic, 0), TopicPartition(topic, 1)}
        assert {r.partition for r in consume_all(consumer, 4)} == {1}


def test_unknown_setting_names_the_closest_valid_ones() -> None:
    with pytest.raises(TypeError, match="auto_offset_reset"):
        Consumer("127.0.0.1:1", auto_ofset_reset="earliest")
    with pytest.raises(TypeError, match="linger_ms"):
        Producer("127.0.0.1:1", linger_msec=5)
