"""The Java client's default partitioning, so keys land where Java producers put them.

* A record with a key goes to ``toPositive(murmur2(key)) % num_partitions``
  (``org.apache.kafka.common.utils.Utils.murmur2``, seed 0x9747b28c, then
  ``& 0x7fffffff``), over all partitions whether or not they have a leader.
* A record without a key and without an explicit partition sticks to one partition
  (KIP-480) until a new batch would have to be started for it; then another partition
  is chosen at random, preferring partitions that have a leader.

``murmur2`` is a pure function. ``StickyPartitioner`` holds per-topic state and is not
thread-safe on its own: the producer calls it under its accumulator lock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of ``data``, as a signed int like Java's."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length & ~3
    for i in range(0, whole, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition the Java client's default partitioner picks for ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


class StickyPartitioner:
    """KIP-480 partition choice for keyless records, per topic."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._current: dict[str, int] = {}
        self._rng = rng or random.Random()

    def partition(
        self,
        topic: str,
        num_partitions: int,
        available: Sequence[int],
        has_open_batch: Callable[[str, int], bool],
    ) -> int:
        """The sticky partition of ``topic``; moves to another one when the current
        partition has no open batch to add to (its batch was sent or is full).

        ``available`` lists the partitions that currently have a leader."""
        current = self._current.get(topic)
        if current is not None and current < num_partitions and has_open_batch(topic, current):
            return current
        choices = [p for p in available if p < num_partitions] or range(num_partitions)
        if current is not None and len(choices) > 1:
            choices = [p for p in choices if p != current]
        chosen = self._rng.choice(choices)
        self._current[topic] = chosen
        return chosen
