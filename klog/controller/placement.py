"""Replica placement: Kafka's striped round-robin (``AdminUtils``, rack-unaware).

Brokers are taken in id order. Partition ``p``'s first replica is broker
``(p + start) % n``; the others follow at a shift that grows by one every ``n``
partitions, so leaders and followers spread evenly. ``start`` and the initial shift are
random unless the caller fixes both (adding partitions continues the leader stripe of
partition 0, as Kafka's ``addPartitions`` does; the follower shift restarts, as there).
Deterministic for a given ``random.Random``.

Pure functions; shareable.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


class PlacementError(ValueError):
    """The replication factor cannot be met with the given brokers."""


def place_replicas(
    brokers: Sequence[int],
    num_partitions: int,
    replication_factor: int,
    rng: random.Random,
    *,
    start_partition: int = 0,
    fixed_start_index: int | None = None,
) -> list[list[int]]:
    """Replica lists for partitions ``start_partition .. start_partition + num_partitions - 1``
    over ``brokers`` (ids of live brokers). Raises ``PlacementError`` when there are fewer
    brokers than ``replication_factor``."""
    if replication_factor <= 0:
        raise PlacementError(f"replication factor {replication_factor} must be positive")
    ids = sorted(brokers)
    count = len(ids)
    if replication_factor > count:
        raise PlacementError(
            f"the target replication factor of {replication_factor} cannot be reached "
            f"because only {count} broker(s) are registered"
        )
    if fixed_start_index is not None:
        start = shift = fixed_start_index
    else:
        start, shift = rng.randrange(count), rng.randrange(count)
    out = []
    for partition in range(start_partition, start_partition + num_partitions):
        if partition > 0 and partition % count == 0:
            shift += 1
        first = (partition + start) % count
        replicas = [ids[first]]
        for j in range(replication_factor - 1):
            replicas.append(ids[(first + 1 + (shift + j) % (count - 1)) % count])
        out.append(replicas)
    return out
