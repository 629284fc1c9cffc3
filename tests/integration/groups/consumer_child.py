"""A consumer-group member in its own process, so tests can SIGKILL it.

Run as ``python consumer_child.py '<json config>'``. Config keys: ``client``
("confluent", "kafka-python" or "aiokafka"), ``bootstrap``, ``group``, ``topics``,
``session_timeout_ms``, optional ``instance_id`` (static membership), ``assignor``
("range", "roundrobin", "cooperative-sticky") and ``commit`` (true: commit each record
synchronously after printing it).

It prints one JSON object per line on stdout, flushed at once:
``{"e": "assignment", "partitions": [[t, p], ...], "added": [...], "revoked": [...]}``
after every change of its assignment, ``{"e": "record", "t", "p", "o", "v"}`` per record,
``{"e": "committed", "t", "p", "o"}`` after a commit (``o`` is the next offset), and
``{"e": "closed"}`` after a clean close on SIGTERM or stdin EOF.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from typing import Any

stop = threading.Event()


def emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class Assignment:
    """The member's current partitions, reported whole after every change."""

    def __init__(self) -> None:
        self.current: set[tuple[str, int]] = set()

    def add(self, partitions: list[tuple[str, int]]) -> None:
        self.current |= set(partitions)
        emit(e="assignment", partitions=sorted(self.current), added=sorted(partitions), revoked=[])

    def revoke(self, partitions: list[tuple[str, int]]) -> None:
        self.current -= set(partitions)
        emit(e="assignment", partitions=sorted(self.current), added=[], revoked=sorted(partitions))


def run_confluent(config: dict[str, Any]) -> None:
    import confluent_kafka

    settings = {
        "bootstrap.servers": config["bootstrap"],
        "group.id": config["group"],
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": config["session_timeout_ms"],
        "heartbeat.interval.ms": 500,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    if config.get("instance_id"):
        settings["group.instance.id"] = config["instance_id"]
    if config.get("assignor"):
        settings["partition.assignment.strategy"] = config["assignor"]
    consumer = confluent_kafka.Consumer(settings)
    assignment = Assignment()

    def tps(partitions: list[Any]) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in partitions]

    consumer.subscribe(
        config["topics"],
        on_assign=lambda c, parts: assignment.add(tps(parts)),
        on_revoke=lambda c, parts: assignment.revoke(tps(parts)),
        on_lost=lambda c, parts: assignment.revoke(tps(parts)),
    )
    while not stop.is_set():
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            emit(e="error", text=str(message.error()))
            continue
        emit(
            e="record",
            t=message.topic(),
            p=message.partition(),
            o=message.offset(),
            v=message.value().decode(),
        )
        if config.get("commit"):
            consumer.commit(message=message, asynchronous=False)
            emit(e="committed", t=message.topic(), p=message.partition(), o=message.offset() + 1)
    consumer.close()


def run_kafka_python(config: dict[str, Any]) -> None:
    import kafka

    assignment = Assignment()

    class Listener(kafka.ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: Any) -> None:
            assignment.revoke([(tp.topic, tp.partition) for tp in revoked])

        def on_partitions_assigned(self, assigned: Any) -> None:
            assignment.add([(tp.topic, tp.partition) for tp in assigned])

    consumer = kafka.KafkaConsumer(
        bootstrap_servers=config["bootstrap"],
        group_id=config["group"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=config["session_timeout_ms"],
        heartbeat_interval_ms=500,
        metadata_max_age_ms=2000,
    )
    consumer.subscribe(config["topics"], listener=Listener())
    while not stop.is_set():
        # kafka-python 3.0.12 loses a rebalance whose SyncGroup answer arrives after a
        # poll timed out (the member then never heartbeats again), so poll long enough
        # for a rebalance to finish inside one call; records still return at once.
        for tp, messages in consumer.poll(3000).items():
            for message in messages:
                emit(
                    e="record",
                    t=tp.topic,
                    p=tp.partition,
                    o=message.offset,
                    v=message.value.decode(),
                )
                if config.get("commit"):
                    consumer.commit({tp: kafka.OffsetAndMetadata(message.offset + 1, None)})
                    emit(e="committed", t=tp.topic, p=tp.partition, o=message.offset + 1)
    consumer.close()


def run_aiokafka(config: dict[str, Any]) -> None:
    import aiokafka
    from aiokafka.structs import OffsetAndMetadata

    assignment = Assignment()

    class Listener(aiokafka.ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked: Any) -> None:
            assignment.revoke([(tp.topic, tp.partition) for tp in revoked])

        async def on_partitions_assigned(self, assigned: Any) -> None:
            assignment.add([(tp.topic, tp.partition) for tp in assigned])

    async def main() -> None:
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=config["bootstrap"],
            group_id=config["group"],
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=config["session_timeout_ms"],
            heartbeat_interval_ms=500,
            metadata_max_age_ms=2000,
        )
        consumer.subscribe(config["topics"], listener=Listener())
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                for tp, messages in batches.items():
                    for message in messages:
                        emit(
                            e="record",
                            t=tp.topic,
                            p=tp.partition,
                            o=message.offset,
                            v=message.value.decode(),
                        )
                        if config.get("commit"):
                            await consumer.commit({tp: OffsetAndMetadata(message.offset + 1, "")})
                            emit(e="committed", t=tp.topic, p=tp.partition, o=message.offset + 1)
        finally:
            await consumer.stop()

    asyncio.run(main())


def main() -> None:
    config = json.loads(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Closing stdin (the parent exiting) also stops the member cleanly.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    runner = {
        "confluent": run_confluent,
        "kafka-python": run_kafka_python,
        "aiokafka": run_aiokafka,
    }[config["client"]]
    runner(config)
    emit(e="closed")


if __name__ == "__main__":
    main()
