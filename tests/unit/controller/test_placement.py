"""Replica placement: Kafka's layout, its invariants, determinism."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klog.controller import PlacementError, place_replicas


def test_kafkas_expected_assignment() -> None:
    # AdminTest.testReplicaAssignment in Kafka: 5 brokers, 10 partitions, 3 replicas,
    # fixed start index 0.
    expected = [
        [0, 1, 2],
        [1, 2, 3],
        [2, 3, 4],
        [3, 4, 0],
        [4, 0, 1],
        [0, 2, 3],
        [1, 3, 4],
        [2, 4, 0],
        [3, 0, 1],
        [4, 1, 2],
    ]
    assert place_replicas([4, 2, 0, 3, 1], 10, 3, random.Random(), fixed_start_index=0) == expected


@pytest.mark.parametrize(("brokers", "factor"), [([1, 2], 3), ([], 1), ([1], 0)])
def test_an_unreachable_replication_factor_is_refused(brokers: list[int], factor: int) -> None:
    with pytest.raises(PlacementError):
        place_replicas(brokers, 1, factor, random.Random(0))


@settings(max_examples=60, deadline=None)
@given(
    brokers=st.sets(st.integers(0, 1000), min_size=1, max_size=9),
    partitions=st.integers(1, 40),
    data=st.data(),
    seed=st.integers(0, 2**32),
)
def test_placement_invariants(
    brokers: set[int], partitions: int, data: st.DataObject, seed: int
) -> None:
    factor = data.draw(st.integers(1, len(brokers)))
    layout = place_replicas(list(brokers), partitions, factor, random.Random(seed))
    assert len(layout) == partitions
    for replicas in layout:
        assert len(replicas) == factor == len(set(replicas))
        assert set(replicas) <= brokers
    # Leaders go round robin: no broker leads more than one partition above another.
    leaders = Counter(replicas[0] for replicas in layout)
    counts = [leaders.get(b, 0) for b in brokers]
    assert max(counts) - min(counts) <= 1
    assert layout == place_replicas(sorted(brokers), partitions, factor, random.Random(seed))


@settings(max_examples=30, deadline=None)
@given(
    count=st.integers(1, 7),
    first=st.integers(1, 30),
    more=st.integers(1, 30),
    start=st.integers(0, 6),
)
def test_adding_partitions_continues_the_leader_stripe(
    count: int, first: int, more: int, start: int
) -> None:
    brokers = list(range(count))
    start %= count
    factor = min(3, count)
    whole = place_replicas(brokers, first + more, factor, random.Random(), fixed_start_index=start)
    head = place_replicas(brokers, first, factor, random.Random(), fixed_start_index=start)
    tail = place_replicas(
        brokers, more, factor, random.Random(), start_partition=first, fixed_start_index=start
    )
    # As in Kafka's addPartitions, leaders continue where they left off; followers
    # restart their shift (Kafka does the same).
    assert [r[0] for r in head + tail] == [r[0] for r in whole]
    assert head == whole[:first]
