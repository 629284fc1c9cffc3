"""Which ``__consumer_offsets`` partition owns a group: Kafka's exact arithmetic.

Kafka computes ``Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`` where
``hashCode`` is Java's ``String.hashCode`` (``s[0]*31^(n-1) + ... + s[n-1]`` over UTF-16
code units, in wrapping 32-bit arithmetic) and ``Utils.abs(n)`` is ``n & 0x7fffffff`` (so
``Integer.MIN_VALUE`` maps to 0, unlike ``Math.abs``). Matching it bit for bit means a
klog cluster and a Kafka cluster agree on where a group lives. Pure functions; shareable.
"""

from __future__ import annotations

_MASK32 = 0xFFFFFFFF


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode()``: a signed 32-bit int."""
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + ((units[i] << 8) | units[i + 1])) & _MASK32
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_group(group_id: str, num_partitions: int) -> int:
    """The ``__consumer_offsets`` partition whose leader coordinates ``group_id``."""
    return (java_string_hash(group_id) & 0x7FFFFFFF) % num_partitions
