"""Consumer groups against a real klog-server: subscribe, rebalances between klog
consumers (range, round-robin, cooperative-sticky), listeners, commits, auto-commit,
static membership, max_poll_interval_ms, regex subscriptions, interop with confluent-kafka
consumers in the same group, and the Admin client's group calls."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer as ConfluentConsumer

from klog.client import Admin, Consumer, OffsetAndMetadata, OffsetSpec, Producer, TopicPartition
from klog.client.errors import GroupIdNotFoundError, NoOffsetForPartitionError


def fill(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    with Producer(bootstrap, linger_ms=5) as producer:
        for p in range(partitions):
            for i in range(per_partition):
                producer.send(topic, b"%d-%d" % (p, i), partition=p)
        producer.flush(20)


def group_name() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


class Member(threading.Thread):
    """Polls a consumer in its own thread (each member must keep polling to rebalance)."""

    def __init__(self, consumer: Consumer) -> None:
        super().__init__(daemon=True)
        self.consumer = consumer
        self.records: list = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.records += self.consumer.poll(0.2)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> None:
        self.stop.set()
        self.join(30)
        assert self.error is None, self.error


def poll_until(consumer: Consumer, predicate, timeout: float = 30.0, what: str = "condition"):
    """Keep polling ``consumer`` (which drives its group membership) until ``predicate``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        consumer.poll(0.1)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_subscribe_consumes_everything_and_commits(bootstrap, new_topic, consume_all) -> None:
    topic = new_topic(3)
    fill(bootstrap, topic, 3, 10)
    group = group_name()
    assigned: list = []
    with Consumer(
        bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    ) as consumer:
        consumer.subscribe([topic], on_assigned=assigned.extend)
        records = consume_all(consumer, 30)
        assert sorted(assigned) == [TopicPartition(topic, p) for p in range(3)]
        assert len({(r.partition, r.offset) for r in records}) == 30
        consumer.commit()
        committed = consumer.committed([(topic, p) for p in range(3)])
        assert {tp: om.offset for tp, om in committed.items()} == {
            TopicPartition(topic, p): 10 for p in range(3)
        }
    fill(bootstrap, topic, 3, 2)
    with Consumer(bootstrap, group_id=group, auto_offset_reset="none") as consumer:
        consumer.subscribe([topic])
        again = consume_all(consumer, 6)
        assert sorted(r.offset for r in again) == [10, 10, 10, 11, 11, 11]


def test_explicit_and_async_commits(bootstrap, new_topic, consume_all) -> None:
    topic = new_topic(1)
    fill(bootstrap, topic, 1, 5)
    with Consumer(
        bootstrap, group_id=group_name(), auto_offset_reset="earliest", enable_auto_commit=False
    ) as consumer:
        consumer.subscribe([topic])
        consume_all(consumer, 5)
        consumer.commit({(topic, 0): OffsetAndMetadata(3, "note")})
        committed = consumer.committed([(topic, 0)])[TopicPartition(topic, 0)]
        assert (committed.offset, committed.metadata) == (3, "note")
        future = consumer.commit(asynchronous=True)
        assert future is not None
        future.result(10)
        assert consumer.committed([(topic, 0)])[TopicPartition(topic, 0)].offset == 5


def test_auto_commit_commits_only_what_was_returned(bootstrap, new_topic) -> None:
    topic = new_topic(1)
    fill(bootstrap, topic, 1, 50)
    tp = TopicPartition(topic, 0)
    with Consumer(
        bootstrap, group_id=group_name(), auto_offset_reset="earliest", auto_commit_interval_ms=100
    ) as consumer:
        consumer.subscribe([topic])
        got: list = []
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            got = consumer.poll(0.2, max_records=7)
        consumer.pause([tp])  # nothing more is returned from here on
        poll_until(consumer, lambda: consumer.committed([tp])[tp] is not None, what="auto-commit")
        assert consumer.committed([tp])[tp].offset == len(got) == 7


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_two_members_split_partitions(bootstrap, new_topic, strategy: str) -> None:
    topic = new_topic(6)
    fill(bootstrap, topic, 6, 5)
    group = group_name()
    settings = dict(
        group_id=group,
        auto_offset_reset="earliest",
        partition_assignment_strategy=strategy,
        heartbeat_interval_ms=200,
    )
    revoked: list = []
    first = Consumer(bootstrap, **settings)
    first.subscribe([topic], on_revoked=revoked.extend)
    a = Member(first)
    a.start()
    wait_for(lambda: len(first.assignment()) == 6, what="first member owns everything")
    second = Consumer(bootstrap, **settings)
    second.subscribe([topic])
    b = Member(second)
    b.start()
    try:
        wait_for(
            lambda: len(first.assignment()) == 3 and len(second.assignment()) == 3,
            what="an even split",
        )
        assert not first.assignment() & second.assignment()
        assert revoked, "the first member was told what it lost"
        if strategy == "cooperative-sticky":
            assert len(set(revoked)) == 3  # only the partitions that moved
    finally:
        a.finish()
        b.finish()
        first.close()
        second.close()
    seen = {(r.partition, r.offset) for r in a.records + b.records}
    assert seen == {(p, o) for p in range(6) for o in range(5)}


def test_closing_member_hands_partitions_back(bootstrap, new_topic) -> None:
    topic = new_topic(4)
    group = group_name()
    settings = dict(group_id=group, auto_offset_reset="earliest", heartbeat_interval_ms=200)
    first, second = Consumer(bootstrap, **settings), Consumer(bootstrap, **settings)
    first.subscribe([topic])
    second.subscribe([topic])
    a, b = Member(first), Member(second)
    a.start()
    b.start()
    wait_for(
        lambda: (
            len(first.assignment()) + len(second.assignment()) == 4
            and first.assignment()
            and second.assignment()
        ),
        what="split",
    )
    b.finish()
    second.close()
    wait_for(lambda: len(first.assignment()) == 4, what="the survivor takes over")
    a.finish()
    first.close()


def test_static_member_rejoins_without_rebalancing(bootstrap, new_topic) -> None:
    topic = new_topic(2)
    group = group_name()
    settings = dict(
        group_id=group,
        group_instance_id="instance-1",
        auto_offset_reset="earliest",
        session_timeout_ms=30000,
    )
    consumer = Consumer(bootstrap, **settings)
    consumer.subscribe([topic])
    poll_until(consumer, lambda: len(consumer.assignment()) == 2)
    consumer.close()  # a static member does not leave the group
    with Admin(bootstrap) as admin:
        [member] = admin.describe_group(group).members
        assert member.group_instance_id == "instance-1"
    consumer = Consumer(bootstrap, **settings)
    consumer.subscribe([topic])
    poll_until(consumer, lambda: len(consumer.assignment()) == 2)
    consumer.close()


def test_max_poll_interval_exceeded_leaves_the_group(bootstrap, new_topic) -> None:
    topic = new_topic(1)
    group = group_name()
    consumer = Consumer(
        bootstrap,
        group_id=group,
        max_poll_interval_ms=1000,
        heartbeat_interval_ms=100,
        session_timeout_ms=6000,
    )
    consumer.subscribe([topic])
    poll_until(consumer, lambda: consumer.assignment(), what="join")
    with Admin(bootstrap) as admin:
        wait_for(
            lambda: admin.describe_group(group).members == [],
            timeout=20,
            what="the silent member to leave",
        )
    with Admin(bootstrap) as admin:
        # Polling again rejoins; the join takes more than one poll (KIP-394's
        # MEMBER_ID_REQUIRED round trip), so keep polling as an application would.
        poll_until(consumer, lambda: len(admin.describe_group(group).members) == 1, what="rejoin")
    consumer.close()


def test_regex_subscription_picks_up_new_topics(bootstrap, admin) -> None:
    prefix = f"rx{uuid.uuid4().hex[:6]}"
    admin.create_topic(f"{prefix}-a", 1, 1)
    with Consumer(
        bootstrap, group_id=group_name(), auto_offset_reset="earliest", metadata_max_age_ms=500
    ) as consumer:
        consumer.subscribe(re.compile(re.escape(prefix) + "-.*"))
        poll_until(consumer, lambda: consumer.assignment() == {TopicPartition(f"{prefix}-a", 0)})
        admin.create_topic(f"{prefix}-b", 1, 1)
        poll_until(consumer, lambda: len(consumer.assignment()) == 2, what="the new topic")


def test_no_committed_offset_with_reset_none(bootstrap, new_topic) -> None:
    topic = new_topic(1)
    with Consumer(bootstrap, group_id=group_name(), auto_offset_reset="none") as consumer:
        consumer.subscribe([topic])
        with pytest.raises(NoOffsetForPartitionError):
            for _ in range(100):
                consumer.poll(0.2)


def test_interop_with_confluent_kafka_in_one_group(bootstrap, new_topic) -> None:
    topic = new_topic(4)
    fill(bootstrap, topic, 4, 10)
    group = group_name()
    ours = Consumer(
        bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        partition_assignment_strategy="range",
        heartbeat_interval_ms=200,
    )
    ours.subscribe([topic])
    member = Member(ours)
    member.start()
    wait_for(lambda: len(ours.assignment()) == 4, what="klog member owns everything")
    theirs = ConfluentConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",
            "enable.auto.commit": True,
        }
    )
    their_partitions: set = set()
    theirs.subscribe(
        [topic], on_assign=lambda c, ps: their_partitions.update((p.topic, p.partition) for p in ps)
    )
    their_records = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            len(ours.assignment()) == 2 and len(their_partitions) == 2
        ):
            their_records += [m for m in theirs.consume(100, 0.2) if m.error() is None]
        assert len(ours.assignment()) == 2 and len(their_partitions) == 2
        assert not {(tp.topic, tp.partition) for tp in ours.assignment()} & their_partitions
    finally:
        member.finish()
        ours.close()
        theirs.close()


def test_admin_group_calls(bootstrap, admin, new_topic, consume_all) -> None:
    topic = new_topic(2)
    fill(bootstrap, topic, 2, 10)
    group = group_name()
    with Consumer(
        bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        client_id="lag-checker",
    ) as consumer:
        consumer.subscribe([topic])
        consume_all(consumer, 20)
        consumer.commit({(topic, 0): 10, (topic, 1): 4})
        assert group in [g.group_id for g in admin.list_groups()]
        described = admin.describe_group(group)
        assert described.state == "Stable" and described.protocol_type == "consumer"
        [member] = described.members
        assert member.client_id == "lag-checker"
        assert sorted(member.assignment) == [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    lags = {
        (o.topic, o.partition): (o.committed_offset, o.log_end_offset, o.lag)
        for o in admin.describe_group_offsets(group)
    }
    assert lags == {(topic, 0): (10, 10, 0), (topic, 1): (4, 10, 6)}
    plan = admin.reset_group_offsets(
        group, [(topic, 0), (topic, 1)], OffsetSpec.EARLIEST, dry_run=True
    )
    assert plan == {TopicPartition(topic, 0): 0, TopicPartition(topic, 1): 0}
    assert admin.list_group_offsets(group)[TopicPartition(topic, 1)].offset == 4
    admin.reset_group_offsets(group, [(topic, 1)], OffsetSpec.EARLIEST)
    assert admin.list_group_offsets(group)[TopicPartition(topic, 1)].offset == 0
    admin.delete_group_offsets(group, [(topic, 1)])
    assert TopicPartition(topic, 1) not in admin.list_group_offsets(group)
    admin.delete_groups([group])
    with pytest.raises(GroupIdNotFoundError):
        admin.delete_groups([group])
