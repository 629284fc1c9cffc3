#!/usr/bin/env python3
"""Benchmark klog's message codecs against kafka-python's, in the same run.

Messages: a Metadata v12 response with 1,000 partitions (10 topics x 100, 3 replicas
each) and a Produce v9 request with 100 partitions (10 topics x 10, 1 KiB of records
each). Both libraries build the same message; the script checks that their encodings are
byte-identical before timing, so the comparison is like for like. Each cell is the best
of several timed repeats (microseconds per operation). Goal: klog at least 2x faster
than kafka-python on every row.

    python scripts/bench_wire.py [--repeat 7] [--number 200]
"""

from __future__ import annotations

import argparse
import gc
import timeit
import uuid
from collections.abc import Callable

from kafka.protocol.metadata import MetadataResponse as KpMetadataResponse
from kafka.protocol.producer import ProduceRequest as KpProduceRequest

from klog.wire import MetadataResponse, ProduceRequest

TOPICS = 10
PARTITIONS_PER_TOPIC = 100
PRODUCE_TOPICS = 10
PRODUCE_PARTITIONS_PER_TOPIC = 10
RECORDS = bytes(range(256)) * 4
TOPIC_IDS = [uuid.UUID(int=t + 1) for t in range(TOPICS)]


def klog_metadata() -> MetadataResponse:
    m = MetadataResponse
    return m(
        brokers=[
            m.MetadataResponseBroker(node_id=i, host="localhost", port=9092 + i) for i in range(3)
        ],
        cluster_id="bench-cluster",
        controller_id=0,
        topics=[
            m.MetadataResponseTopic(
                name=f"topic-{t}",
                topic_id=TOPIC_IDS[t],
                partitions=[
                    m.MetadataResponsePartition(
                        partition_index=p,
                        leader_id=p % 3,
                        leader_epoch=7,
                        replica_nodes=[p % 3, (p + 1) % 3, (p + 2) % 3],
                        isr_nodes=[p % 3, (p + 1) % 3, (p + 2) % 3],
                    )
                    for p in range(PARTITIONS_PER_TOPIC)
                ],
            )
            for t in range(TOPICS)
        ],
    )


def kafka_python_metadata() -> KpMetadataResponse:
    m = KpMetadataResponse
    topic, partition = m.MetadataResponseTopic, m.MetadataResponseTopic.MetadataResponsePartition
    return m(
        throttle_time_ms=0,
        brokers=[
            m.MetadataResponseBroker(node_id=i, host="localhost", port=9092 + i, rack=None)
            for i in range(3)
        ],
        cluster_id="bench-cluster",
        controller_id=0,
        topics=[
            topic(
                error_code=0,
                name=f"topic-{t}",
                topic_id=TOPIC_IDS[t],
                is_internal=False,
                authorized_operations=None,
                partitions=[
                    partition(
                        error_code=0,
                        partition_index=p,
                        leader_id=p % 3,
                        leader_epoch=7,
                        replica_nodes=[p % 3, (p + 1) % 3, (p + 2) % 3],
                        isr_nodes=[p % 3, (p + 1) % 3, (p + 2) % 3],
                        offline_replicas=[],
                    )
                    for p in range(PARTITIONS_PER_TOPIC)
                ],
            )
            for t in range(TOPICS)
        ],
    )


def klog_produce() -> ProduceRequest:
    p = ProduceRequest
    return p(
        acks=-1,
        timeout_ms=30000,
        topic_data=[
            p.TopicProduceData(
                name=f"topic-{t}",
                partition_data=[
                    p.PartitionProduceData(index=i, records=RECORDS)
                    for i in range(PRODUCE_PARTITIONS_PER_TOPIC)
                ],
            )
            for t in range(PRODUCE_TOPICS)
        ],
    )


def kafka_python_produce() -> KpProduceRequest:
    p = KpProduceRequest
    return p(
        transactional_id=None,
        acks=-1,
        timeout_ms=30000,
        topic_data=[
            p.TopicProduceData(
                name=f"topic-{t}",
                partition_data=[
                    p.TopicProduceData.PartitionProduceData(index=i, records=RECORDS)
                    for i in range(PRODUCE_PARTITIONS_PER_TOPIC)
                ],
            )
            for t in range(PRODUCE_TOPICS)
        ],
    )


def best_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    args = parser.parse_args()

    cases = []
    for name, version, ours, theirs, their_cls in (
        (
            "Metadata v12 response, 1000 partitions",
            12,
            klog_metadata(),
            kafka_python_metadata(),
            KpMetadataResponse,
        ),
        (
            "Produce v9 request, 100 partitions",
            9,
            klog_produce(),
            kafka_python_produce(),
            KpProduceRequest,
        ),
    ):
        data = ours.encode(version)
        if theirs.encode(version=version) != data:
            raise SystemExit(f"{name}: kafka-python and klog encodings differ; not comparable")
        cls = type(ours)
        cases.append(
            (
                f"{name}: decode",
                len(data),
                lambda c=cls, d=data, v=version: c.decode(d, v),
                lambda c=their_cls, d=data, v=version: c.decode(d, version=v),
            )
        )
        cases.append(
            (
                f"{name}: encode",
                len(data),
                lambda o=ours, v=version: o.encode(v),
                lambda o=theirs, v=version: o.encode(version=v),
            )
        )

    gc.collect()
    print(f"{'operation':<52} {'bytes':>7} {'klog us':>9} {'kafka-python us':>16} {'speedup':>8}")
    for label, size, ours_fn, theirs_fn in cases:
        # Interleave the two libraries so that machine noise hits both alike.
        ours_runs, theirs_runs = [], []
        for _ in range(args.repeat):
            ours_runs.append(best_us(ours_fn, args.number, 1))
            theirs_runs.append(best_us(theirs_fn, args.number, 1))
        ours_us, theirs_us = min(ours_runs), min(theirs_runs)
        print(
            f"{label:<52} {size:>7} {ours_us:>9.1f} {theirs_us:>16.1f} {theirs_us / ours_us:>7.2f}x"
        )


if __name__ == "__main__":
    main()
