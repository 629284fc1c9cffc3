"""No acknowledged record is lost when the broker restarts or is killed mid-stream.

A confluent-kafka producer thread streams numbered records (acks=all) at a node that
keeps its port across restarts, with a bounded number in flight, so the stream is
still running when the node goes away and resumes when it comes back.

- SIGTERM + restart: every record produced is delivered, stored once, and found at
  the partition and offset its delivery report named.
- SIGKILL with ``log.flush.interval.messages=1``: every record whose delivery report
  carried no error, before or after the kill, is found where the report said. Records
  written but unacknowledged when the node died may come back twice (the producer
  retries them without idempotence), which at-least-once allows.

Afterwards the segment files are decoded (checksums and framing) after a clean stop.
"""

from __future__ import annotations

import threading
from collections import Counter

import confluent_kafka

from klog.segment.filenames import CLEAN_SHUTDOWN_FILE
from tests.integration.broker.conftest import (
    TIMEOUT,
    ConfluentDriver,
    free_port,
    segment_batches,
    unique_topic,
)

PARTITIONS = 3
IN_FLIGHT = 500  # unacknowledged records the stream allows before waiting for reports
BEFORE = 2000  # acknowledged records before the node goes away
AFTER = 2000  # further acknowledged records once it is back


class Stream:
    """Produces ``%08d`` values until stopped; collects every delivery report."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = confluent_kafka.Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "linger.ms": 5,
                # Come back quickly once the node is up again.
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 250,
                "retry.backoff.ms": 50,
                "retry.backoff.max.ms": 250,
            }
        )
        self.lock = threading.Lock()
        self.acked: dict[bytes, tuple[int, int]] = {}
        self.failed: list[tuple[bytes, str]] = []
        self.produced = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    def _report(self, err, msg) -> None:
        with self.lock:
            if err is None:
                self.acked[msg.value()] = (msg.partition(), msg.offset())
            else:
                self.failed.append((msg.value(), err.str()))

    def _outstanding(self) -> int:
        with self.lock:
            return self.produced - len(self.acked) - len(self.failed)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._outstanding() >= IN_FLIGHT:
                self.producer.poll(0.05)  # returns as soon as a report arrives
                continue
            value = f"{self.produced:08d}".encode()
            self.producer.produce(self.topic, value=value, key=value[-2:], on_delivery=self._report)
            with self.lock:
                self.produced += 1
            self.producer.poll(0)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def finish(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive()
        assert self.producer.flush(TIMEOUT) == 0, "records still undelivered"


def start_node(klog_node_factory, **overrides: str):
    # A fixed port: the producer must find the node again after the restart.
    listeners = {"listeners": f"PLAINTEXT://127.0.0.1:{free_port()}"}
    return klog_node_factory({**listeners, **overrides}).start()


def stored(node, topic: str) -> dict[tuple[int, int], bytes]:
    """(partition, offset) -> value for every record, read back with a real consumer."""
    driver = ConfluentDriver(node.bootstrap)
    ends = driver.end_offsets(topic, PARTITIONS)
    assert all(low == 0 for low, _ in ends.values()), ends
    total = sum(high for _, high in ends.values())
    consumed = driver.consume_earliest(topic, PARTITIONS, total)
    assert len(consumed) == total, f"{len(consumed)} of {total} stored records came back"
    where = {(c.partition, c.offset): c.rec.value for c in consumed}
    for partition, (_, high) in ends.items():
        offsets = sorted(o for p, o in where if p == partition)
        assert offsets == list(range(high)), f"partition {partition} has holes"
    return where


def check_files(node, topic: str, where: dict[tuple[int, int], bytes]) -> None:
    """After a clean stop, the segments frame and checksum correctly and hold exactly
    the records the consumer saw."""
    assert node.stop() == 0
    on_disk = sum(
        h.records_count for p in range(PARTITIONS) for h, _ in segment_batches(node, topic, p)
    )
    assert on_disk == len(where)


def test_restart_mid_stream_loses_nothing(klog_node_factory, wait_for) -> None:
    node = start_node(klog_node_factory)
    topic = unique_topic("restart")
    ConfluentDriver(node.bootstrap).create_topic(topic, PARTITIONS)
    stream = Stream(node.bootstrap, topic).start()
    try:
        wait_for(lambda: stream.acked_count() >= BEFORE, what=f"{BEFORE} acks")
        assert node.stop() == 0
        assert (node.data_dir / CLEAN_SHUTDOWN_FILE).exists()
        at_stop = stream.acked_count()
        node.restart()
        wait_for(lambda: stream.acked_count() >= at_stop + AFTER, timeout=60, what="acks after")
    finally:
        stream.finish()

    assert not stream.failed, stream.failed[:5]
    assert len(stream.acked) == stream.produced
    where = stored(node, topic)
    duplicates = [v for v, n in Counter(where.values()).items() if n > 1]
    assert not duplicates, f"{len(duplicates)} records stored twice, e.g. {duplicates[:3]}"
    for value, position in stream.acked.items():
        assert where.get(position) == value, f"{value!r} acknowledged at {position}"
    check_files(node, topic, where)


def test_sigkill_mid_stream_loses_no_acknowledged_record(klog_node_factory, wait_for) -> None:
    node = start_node(klog_node_factory, **{"log.flush.interval.messages": "1"})
    topic = unique_topic("sigkill")
    ConfluentDriver(node.bootstrap).create_topic(topic, PARTITIONS)
    stream = Stream(node.bootstrap, topic).start()
    try:
        wait_for(lambda: stream.acked_count() >= BEFORE, what=f"{BEFORE} acks")
        node.kill()
        with stream.lock:
            acked_before_kill = dict(stream.acked)
        assert not (node.data_dir / CLEAN_SHUTDOWN_FILE).exists()
        node.restart()
        wait_for(
            lambda: stream.acked_count() >= len(acked_before_kill) + AFTER,
            timeout=60,
            what="acks after the restart",
        )
    finally:
        stream.finish()

    assert not stream.failed, stream.failed[:5]
    where = stored(node, topic)
    lost = [v for v, pos in acked_before_kill.items() if where.get(pos) != v]
    assert not lost, f"{len(lost)} records acknowledged before SIGKILL are gone: {lost[:3]}"
    for value, position in stream.acked.items():
        assert where.get(position) == value, f"{value!r} acknowledged at {position}"
    assert set(where.values()) == {f"{i:08d}".encode() for i in range(stream.produced)}
    check_files(node, topic, where)
