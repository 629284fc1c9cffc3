"""RecordAccumulator: batching by size and linger, readiness, draining, retries, memory."""

import threading

import pytest

from klog.client.accumulator import BATCH_OVERHEAD, RecordAccumulator, record_size
from klog.client.errors import KafkaTimeoutError, MessageTooLargeError, NotLeaderOrFollowerError
from klog.client.partitioner import StickyPartitioner
from klog.client.types import RecordMetadata, TopicPartition
from klog.wire import build_batch, decode_records


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **overrides) -> tuple[RecordAccumulator, list[int]]:
    wakeups: list[int] = []
    settings = dict(
        batch_size=1000,
        linger=0.005,
        buffer_memory=1 << 20,
        max_block=0.2,
        max_request_size=1 << 20,
        wakeup=lambda: wakeups.append(1),
        clock=clock,
    )
    settings.update(overrides)
    return RecordAccumulator(**settings), wakeups


def leader_zero(topic: str, partition: int) -> int:
    return 0


def test_batch_closes_at_batch_size_and_is_ready() -> None:
    clock = Clock()
    acc, wakeups = make(clock)
    value = b"x" * 100
    size = record_size(None, value, None)
    per_batch = (1000 - BATCH_OVERHEAD) // size
    for _ in range(per_batch):
        acc.append("t", 0, None, value, None, 1, None, 1)
    assert acc.ready(clock.now, leader_zero, set())[0] == {}  # room left, linger not over
    acc.append("t", 0, None, value, None, 1, None, 1)  # does not fit: starts a second batch
    ready, _delay, _unknown = acc.ready(clock.now, leader_zero, set())
    assert ready == {0: [TopicPartition("t", 0)]}  # full, though linger has not passed
    assert len(wakeups) == 2  # one per new batch
    [batch] = acc.drain([TopicPartition("t", 0)])
    assert len(batch.records) == per_batch
    [second] = acc.drain([TopicPartition("t", 0)])
    assert len(second.records) == 1


def test_linger_makes_a_partial_batch_ready() -> None:
    clock = Clock()
    acc, _ = make(clock)
    acc.append("t", 1, b"k", b"v", None, 1, None, 2)
    ready, delay, _ = acc.ready(clock.now, leader_zero, set())
    assert ready == {} and delay == pytest.approx(0.005)
    clock.now += 0.005
    ready, _, _ = acc.ready(clock.now, leader_zero, set())
    assert ready == {0: [TopicPartition("t", 1)]}


def test_flush_forces_readiness_and_unknown_leaders_are_reported() -> None:
    clock = Clock()
    acc, _ = make(clock, linger=10.0)
    acc.append("a", 0, None, b"v", None, 1, None, 1)
    acc.append("b", 0, None, b"v", None, 1, None, 1)
    pending = acc.begin_flush()
    assert len(pending) == 2
    ready, _, unknown = acc.ready(clock.now, lambda t, p: 3 if t == "a" else -1, set())
    acc.end_flush()
    assert ready == {3: [TopicPartition("a", 0)]}
    assert unknown == {"b"}


def test_muted_partitions_are_skipped() -> None:
    clock = Clock()
    acc, _ = make(clock, linger=0.0)
    acc.append("t", 0, None, b"v", None, 1, None, 1)
    tp = TopicPartition("t", 0)
    assert acc.ready(clock.now, leader_zero, {tp})[0] == {}
    assert acc.ready(clock.now, leader_zero, set())[0] == {0: [tp]}


def test_drained_batch_encodes_and_futures_resolve() -> None:
    clock = Clock()
    acc, _ = make(clock)
    seen: list[tuple[RecordMetadata, object]] = []
    futures = [
        acc.append(
            "t",
            0,
            b"k%d" % i,
            b"v%d" % i,
            [("h", b"1")],
            1000 + i,
            lambda md, err: seen.append((md, err)),
            1,
        )
        for i in range(3)
    ]
    [batch] = acc.drain([TopicPartition("t", 0)])
    records = decode_records(build_batch(batch.records))
    assert [(r.key, r.value, r.timestamp) for r in records] == [
        (b"k0", b"v0", 1000),
        (b"k1", b"v1", 1001),
        (b"k2", b"v2", 1002),
    ]
    assert not futures[0].done()
    assert batch.complete(40, -1, None) == []
    acc.completed(batch)
    assert [f.result(0) for f in futures] == [
        RecordMetadata("t", 0, 40 + i, 1000 + i) for i in range(3)
    ]
    assert [md.offset for md, err in seen] == [40, 41, 42] and all(e is None for _, e in seen)
    late: list[RecordMetadata] = []
    futures[1].add_callback(lambda md, err: late.append(md))
    assert late == [RecordMetadata("t", 0, 41, 1001)]


def test_failed_batch_raises_its_typed_error() -> None:
    clock = Clock()
    acc, _ = make(clock)
    future = acc.append("t", 0, None, b"v", None, 1, None, 1)
    [batch] = acc.drain([TopicPartition("t", 0)])
    error = NotLeaderOrFollowerError(detail="t-0")
    batch.complete(-1, -1, error)
    with pytest.raises(NotLeaderOrFollowerError) as info:
        future.result(0)
    assert info.value.code == 6 and info.value.name == "NOT_LEADER_OR_FOLLOWER"
    assert future.exception(0) is error


def test_callback_exceptions_are_returned_not_lost() -> None:
    clock = Clock()
    acc, _ = make(clock)

    def boom(md, err):
        raise RuntimeError("callback bug")

    acc.append("t", 0, None, b"v", None, 1, boom, 1)
    [batch] = acc.drain([TopicPartition("t", 0)])
    [failure] = batch.complete(0, -1, None)
    assert isinstance(failure, RuntimeError)


def test_reenqueued_batch_goes_first_after_backoff() -> None:
    clock = Clock()
    acc, _ = make(clock, linger=0.0)
    tp = TopicPartition("t", 0)
    acc.append("t", 0, None, b"first", None, 1, None, 1)
    [first] = acc.drain([tp])
    acc.append("t", 0, None, b"second", None, 1, None, 1)
    acc.reenqueue(first, clock.now + 0.1)
    ready, delay, _ = acc.ready(clock.now, leader_zero, set())
    assert ready == {} and delay == pytest.approx(0.1)
    clock.now += 0.1
    assert acc.ready(clock.now, leader_zero, set())[0] == {0: [tp]}
    [again] = acc.drain([tp])
    assert again is first and again.attempts == 1


def test_batches_with_sequences_go_back_in_sequence_order() -> None:
    """Answers can come back in any order; the broker must see the resends in order,
    and before every batch that has no sequence yet."""
    clock = Clock()
    acc, _ = make(clock, linger=0.0, batch_size=BATCH_OVERHEAD + 30)
    tp = TopicPartition("t", 0)
    drained = []
    for sequence, value in enumerate([b"a" * 8, b"b" * 8, b"c" * 8]):
        acc.append("t", 0, None, value, None, 1, None, 1)
        [batch] = acc.drain([tp])
        batch.base_sequence = sequence
        drained.append(batch)
    acc.append("t", 0, None, b"unsent", None, 1, None, 1)
    for batch in (drained[2], drained[0], drained[1]):
        acc.reenqueue(batch, clock.now)
    order = []
    while batch_list := acc.drain([tp]):
        order += batch_list
    assert [b.base_sequence for b in order] == [0, 1, 2, -1]


def test_clear_sequences_forgets_the_identity_of_queued_batches() -> None:
    clock = Clock()
    acc, _ = make(clock, linger=0.0)
    tp = TopicPartition("t", 0)
    acc.append("t", 0, None, b"x", None, 1, None, 1)
    [batch] = acc.drain([tp])
    batch.producer_id, batch.producer_epoch, batch.base_sequence = 7, 0, 3
    batch.payload = b"encoded with producer 7"
    acc.reenqueue(batch, clock.now)
    acc.clear_sequences()
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (-1, -1, -1)
    assert batch.payload is None


def test_drain_respects_max_request_size() -> None:
    clock = Clock()
    acc, _ = make(clock, max_request_size=800)
    for p in range(3):
        acc.append("t", p, None, b"x" * 300, None, 1, None, 3)
    batches = acc.drain([TopicPartition("t", p) for p in range(3)])
    assert [b.tp.partition for b in batches] == [0, 1]


def test_oversized_record_is_rejected() -> None:
    acc, _ = make(Clock(), max_request_size=100)
    with pytest.raises(MessageTooLargeError):
        acc.append("t", 0, None, b"x" * 200, None, 1, None, 1)


def test_sticky_partition_moves_when_batch_drained() -> None:
    clock = Clock()
    acc, _ = make(clock, partitioner=StickyPartitioner())
    futures = [acc.append("t", None, None, b"v", None, 1, None, 4, range(4)) for _ in range(5)]
    partitions = {f._batch.tp.partition for f in futures}
    assert len(partitions) == 1
    [tp] = [TopicPartition("t", p) for p in partitions]
    acc.drain([tp])
    moved = acc.append("t", None, None, b"v", None, 1, None, 4, range(4))
    assert moved._batch.tp != tp


def test_buffer_memory_blocks_until_space_is_freed() -> None:
    clock = Clock()
    size = record_size(None, b"x" * 100, None)
    acc, _ = make(clock, buffer_memory=size * 2, max_block=5.0, linger=0.0)
    acc.append("t", 0, None, b"x" * 100, None, 1, None, 1)
    acc.append("t", 0, None, b"x" * 100, None, 1, None, 1)
    [batch] = acc.drain([TopicPartition("t", 0)])
    done = threading.Event()

    def third() -> None:
        acc.append("t", 0, None, b"x" * 100, None, 1, None, 1)
        done.set()

    thread = threading.Thread(target=third)
    thread.start()
    assert not done.wait(0.05)  # blocked on memory
    batch.complete(0, -1, None)
    acc.completed(batch)
    assert done.wait(5.0)
    thread.join()


def test_buffer_memory_times_out() -> None:
    size = record_size(None, b"x" * 100, None)
    acc, _ = make(Clock(), buffer_memory=size, max_block=0.05)
    acc.append("t", 0, None, b"x" * 100, None, 1, None, 1)
    with pytest.raises(KafkaTimeoutError, match="buffer_memory"):
        acc.append("t", 0, None, b"x" * 100, None, 1, None, 1)


def test_expire_removes_old_batches() -> None:
    clock = Clock()
    acc, _ = make(clock)
    acc.append("t", 0, None, b"v", None, 1, None, 1)
    assert acc.expire(clock.now + 1, 2.0) == []
    [expired] = acc.expire(clock.now + 2, 2.0)
    assert expired.tp == TopicPartition("t", 0)
