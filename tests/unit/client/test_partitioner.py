"""The default partitioner agrees with the Java client (murmur2) and sticks per KIP-480."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from klog.client.partitioner import StickyPartitioner, murmur2, partition_for_key

# Kafka's UtilsTest.testMurmur2 (clients/src/test/java/org/apache/kafka/common/utils).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
    # Values from Kafka's murmur2 quoted by other ports' tests (the Akka sharding one).
    b"1": -1993445489,
    b"12": 126087238,
    b"123": -267702483,
    b"1234": -1614185708,
    b"12345": -1188365604,
}


def test_murmur2_matches_java_vectors() -> None:
    for key, expected in JAVA_MURMUR2.items():
        assert murmur2(key) == expected, key


def test_partition_is_java_to_positive_modulo() -> None:
    # DefaultPartitioner: Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions.
    for key, hashed in JAVA_MURMUR2.items():
        for n in (1, 3, 6, 12, 100):
            assert partition_for_key(key, n) == (hashed & 0x7FFFFFFF) % n


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_murmur2_matches_kafka_python(key: bytes) -> None:
    assert murmur2(key) & 0xFFFFFFFF == kafka_python_murmur2(key)


def test_sticky_stays_while_batch_open_and_moves_after() -> None:
    open_batches: set[tuple[str, int]] = set()
    sticky = StickyPartitioner(random.Random(7))

    def has_open(topic: str, p: int) -> bool:
        return (topic, p) in open_batches

    first = sticky.partition("t", 6, range(6), has_open)
    open_batches.add(("t", first))
    assert all(sticky.partition("t", 6, range(6), has_open) == first for _ in range(50))
    open_batches.clear()  # the batch was sent
    second = sticky.partition("t", 6, range(6), has_open)
    assert second != first


def test_sticky_prefers_available_partitions() -> None:
    sticky = StickyPartitioner(random.Random(1))
    seen = {sticky.partition("t", 8, [2, 5], lambda t, p: False) for _ in range(40)}
    assert seen == {2, 5}


def test_sticky_spreads_over_all_partitions() -> None:
    sticky = StickyPartitioner(random.Random(3))
    seen = {sticky.partition("t", 4, range(4), lambda t, p: False) for _ in range(200)}
    assert seen == {0, 1, 2, 3}
