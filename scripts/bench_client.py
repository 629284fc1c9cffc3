"""Client throughput: klog's Producer/Consumer against kafka-python's and confluent-kafka's.

One klog-server (started here on an ephemeral port, or ``--bootstrap`` to use a running
broker), the same run, the same settings where the clients share them (acks=1,
linger 5 ms, 512 KiB batches, one partition per topic, no keys, no compression). For each
record size each client produces ``--records`` records into its own fresh topic (timed
from the first send to the end of flush), then consumes them all from the beginning
(timed from the first poll until the last record arrived). Prints records/s and klog's
ratio to each other client.

    python scripts/bench_client.py                       # 1,000,000 records of 100 B and 1 KiB
    python scripts/bench_client.py --records 200000 --sizes 100
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _broker import Broker

BATCH_BYTES = 512 * 1024
LINGER_MS = 5


def create_topic(bootstrap: str, name: str) -> None:
    from klog.client import Admin

    with Admin(bootstrap) as admin:
        admin.create_topic(name, 1, 1)


# -- klog -------------------------------------------------------------------------------


def klog_produce(bootstrap: str, topic: str, value: bytes, n: int) -> float:
    from klog.client import Producer

    with Producer(
        bootstrap,
        acks=1,
        linger_ms=LINGER_MS,
        batch_size=BATCH_BYTES,
        max_request_size=4 * BATCH_BYTES,
        buffer_memory=64 * 1024 * 1024,
    ) as producer:
        producer.partitions_for(topic)
        send = producer.send
        start = time.perf_counter()
        for _ in range(n):
            send(topic, value)
        producer.flush()
        return time.perf_counter() - start


def klog_consume(bootstrap: str, topic: str, n: int) -> float:
    from klog.client import Consumer

    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, 0)])
        seen = 0
        start = time.perf_counter()
        while seen < n:
            seen += len(consumer.poll(5.0))
        return time.perf_counter() - start


# -- kafka-python -----------------------------------------------------------------------


def kafka_python_produce(bootstrap: str, topic: str, value: bytes, n: int) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=LINGER_MS,
        batch_size=BATCH_BYTES,
        max_request_size=4 * BATCH_BYTES,
    )
    producer.partitions_for(topic)
    send = producer.send
    start = time.perf_counter()
    for _ in range(n):
        send(topic, value)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return elapsed


def kafka_python_consume(bootstrap: str, topic: str, n: int) -> float:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    consumer.assign([TopicPartition(topic, 0)])
    seen = 0
    start = time.perf_counter()
    while seen < n:
        for records in consumer.poll(timeout_ms=5000).values():
            seen += len(records)
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


# -- confluent-kafka --------------------------------------------------------------------


def confluent_produce(bootstrap: str, topic: str, value: bytes, n: int) -> float:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": 1,
            "linger.ms": LINGER_MS,
            "batch.size": BATCH_BYTES,
            "queue.buffering.max.kbytes": 65536,
            "enable.idempotence": False,
        }
    )
    producer.list_topics(topic, timeout=10)
    produce = producer.produce
    start = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                produce(topic, value)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush()
    return time.perf_counter() - start


def confluent_consume(bootstrap: str, topic: str, n: int) -> float:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    seen = 0
    start = time.perf_counter()
    while seen < n:
        for message in consumer.consume(num_messages=10000, timeout=5.0):
            if message.error() is None:
                seen += 1
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


CLIENTS: dict[str, tuple[Callable[..., float], Callable[..., float]]] = {
    "klog": (klog_produce, klog_consume),
    "kafka-python": (kafka_python_produce, kafka_python_consume),
    "confluent-kafka": (confluent_produce, confluent_consume),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1024])
    parser.add_argument("--clients", nargs="+", default=list(CLIENTS), choices=list(CLIENTS))
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = parser.parse_args()

    broker = None
    tmp = tempfile.TemporaryDirectory(prefix="klog-bench-")
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = Broker(Path(tmp.name) / "broker").start()
        bootstrap = broker.bootstrap
    try:
        rows = []
        for size in args.sizes:
            value = os.urandom(size)
            rates: dict[str, tuple[float, float]] = {}
            for name in args.clients:
                produce, consume = CLIENTS[name]
                topic = f"bench-{name}-{size}-{uuid.uuid4().hex[:6]}"
                create_topic(bootstrap, topic)
                produced = produce(bootstrap, topic, value, args.records)
                consumed = consume(bootstrap, topic, args.records)
                rates[name] = (args.records / produced, args.records / consumed)
                print(
                    f"  {name:<16} {size:>5} B  produce {rates[name][0]:>10,.0f}/s  "
                    f"consume {rates[name][1]:>10,.0f}/s",
                    file=sys.stderr,
                )
            rows.append((size, rates))
        print_table(rows, args.records)
    finally:
        if broker is not None:
            broker.stop()
        tmp.cleanup()


def print_table(rows: list[tuple[int, dict[str, tuple[float, float]]]], records: int) -> None:
    print(f"\n{records:,} records per run, 1 partition, acks=1, linger {LINGER_MS} ms\n")
    header = "| size | client | produce rec/s | consume rec/s | klog produce x | klog consume x |"
    print(header)
    print("|---|---|---:|---:|---:|---:|")
    for size, rates in rows:
        klog_rates = rates.get("klog")
        for name, (prod, cons) in rates.items():
            if klog_rates and name != "klog":
                ratio_p, ratio_c = f"{klog_rates[0] / prod:.2f}", f"{klog_rates[1] / cons:.2f}"
            else:
                ratio_p = ratio_c = "-"
            print(f"| {size} B | {name} | {prod:,.0f} | {cons:,.0f} | {ratio_p} | {ratio_c} |")


if __name__ == "__main__":
    main()
