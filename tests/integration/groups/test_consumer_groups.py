"""Consumer groups served by a real klog node to real client processes."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.integration.conftest import wait_for
from tests.integration.groups.conftest import (
    GROUP_NODE,
    TIMEOUT,
    all_partitions,
    create_topic,
    produce,
    settled,
    unique,
)

pytestmark = pytest.mark.slow

SESSION_MS = 6000


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(partitions)]
    )
    result = admin.list_consumer_group_offsets([request])[group].result(TIMEOUT)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def test_three_members_share_a_topic_survive_a_kill_and_take_a_newcomer(
    group_node, members
) -> None:
    bootstrap = group_node.bootstrap
    topic = create_topic(bootstrap, unique("six"), 6)
    group = unique("g")
    everything = all_partitions(topic, 6)
    a, b, c = (members(name, bootstrap, group, [topic]) for name in "abc")
    wait_for(lambda: settled([a, b, c], everything), TIMEOUT, what="3 members to share 6")
    assert all(len(m.assignment()) == 2 for m in (a, b, c))

    # While all stay up, every record is consumed exactly once across the group.
    first = [f"first-{i}" for i in range(120)]
    produce(bootstrap, topic, 6, first)
    wait_for(
        lambda: len([r for m in (a, b, c) for r in m.records()]) >= len(first),
        TIMEOUT,
        what="the first records",
    )
    consumed = Counter(r[3] for m in (a, b, c) for r in m.records())
    assert consumed == Counter(first)

    # SIGKILL one member: its partitions move to the others once its session expires.
    c_partitions = c.assignment()
    wait_for(lambda: len(c.committed()) == 2, TIMEOUT, what="c's commits")
    c.kill()
    killed_at = time.monotonic()
    wait_for(
        lambda: settled([a, b], everything),
        SESSION_MS / 1000 + 15,
        what="a and b to take over c's partitions after its session timeout",
    )
    assert time.monotonic() - killed_at >= SESSION_MS / 1000 - 1  # not before it expired
    assert c_partitions <= a.assignment() | b.assignment()
    second = [f"second-{i}" for i in range(60)]
    produce(bootstrap, topic, 6, second)
    wait_for(
        lambda: {r[3] for m in (a, b) for r in m.records()} >= set(second),
        TIMEOUT,
        what="the survivors to consume the second batch",
    )
    # c committed everything it consumed, so nothing of the first batch comes back.
    assert Counter(r[3] for m in (a, b, c) for r in m.records()) == Counter(first + second)

    # A newcomer joins: the partitions are spread over three members again.
    d = members("d", bootstrap, group, [topic])
    wait_for(lambda: settled([a, b, d], everything), TIMEOUT, what="a rebalance taking in d")
    assert all(len(m.assignment()) == 2 for m in (a, b, d))
    third = [f"third-{i}" for i in range(60)]
    produce(bootstrap, topic, 6, third)
    wait_for(
        lambda: {r[3] for m in (a, b, d) for r in m.records()} >= set(third),
        TIMEOUT,
        what="the third batch",
    )
    assert {r[3] for r in d.records()} & set(third)  # the newcomer does its share


def test_committed_offsets_survive_a_broker_restart(klog_node_factory, members) -> None:
    node = klog_node_factory(GROUP_NODE).start()
    topic = create_topic(node.bootstrap, unique("restart"), 3)
    group = unique("g")
    produce(node.bootstrap, topic, 3, [f"before-{i}" for i in range(30)])
    a = members("a", node.bootstrap, group, [topic])
    wait_for(
        lambda: len(a.committed()) == 3 and sum(a.committed().values()) == 30,
        TIMEOUT,
        what="a to consume and commit everything",
    )
    a.stop()
    before = committed_offsets(node.bootstrap, group, topic, 3)
    assert before == {0: 10, 1: 10, 2: 10}

    node.kill()  # SIGKILL: a commit is durable once acknowledged
    node.restart()
    wait_for(
        lambda: committed_offsets(node.bootstrap, group, topic, 3) == before,
        TIMEOUT,
        what="the committed offsets after the restart",
    )
    produce(node.bootstrap, topic, 3, [f"after-{i}" for i in range(9)])
    b = members("b", node.bootstrap, group, [topic])
    wait_for(lambda: len(b.records()) >= 9, TIMEOUT, what="b to consume the new records")
    # b resumed exactly after the last commit: only the new offsets, nothing before.
    records = b.records()
    assert sorted(r[3] for r in records) == sorted(f"after-{i}" for i in range(9))
    assert {(r[1], r[2]) for r in records} == {(p, o) for p in range(3) for o in (10, 11, 12)}


def test_cooperative_sticky_moves_only_what_it_must(group_node, members) -> None:
    bootstrap = group_node.bootstrap
    topic = create_topic(bootstrap, unique("coop"), 6)
    group = unique("g")
    everything = all_partitions(topic, 6)
    sticky = {"assignor": "cooperative-sticky"}
    a = members("a", bootstrap, group, [topic], **sticky)
    b = members("b", bootstrap, group, [topic], **sticky)
    wait_for(lambda: settled([a, b], everything), TIMEOUT, what="a and b to share 6")
    before = {"a": a.assignment(), "b": b.assignment()}
    changes_before = {"a": len(a.of("assignment")), "b": len(b.of("assignment"))}
    c = members("c", bootstrap, group, [topic], **sticky)
    wait_for(
        lambda: settled([a, b, c], everything) and all(len(m.assignment()) == 2 for m in (a, b, c)),
        TIMEOUT,
        what="an incremental rebalance taking in c",
    )
    for name, member in (("a", a), ("b", b)):
        # Incremental: the member only ever gave partitions up, and kept the rest.
        later = member.of("assignment")[changes_before[name] :]
        revoked = {tuple(p) for change in later for p in change["revoked"]}
        assert member.assignment() == before[name] - revoked
        assert len(revoked) == 1
    assert c.assignment() == {tp for name in before for tp in before[name]} - (
        a.assignment() | b.assignment()
    )
    produce(bootstrap, topic, 6, [f"v{i}" for i in range(60)])
    wait_for(lambda: sum(len(m.records()) for m in (a, b, c)) >= 60, TIMEOUT, what="all records")
    assert Counter(r[3] for m in (a, b, c) for r in m.records()) == Counter(
        f"v{i}" for i in range(60)
    )


@pytest.mark.parametrize("client", ["kafka-python", "aiokafka"])
def test_basic_group_cycle(group_node, members, client) -> None:
    bootstrap = group_node.bootstrap
    topic = create_topic(bootstrap, unique(client), 4)
    group = unique("g")
    everything = all_partitions(topic, 4)
    a = members("a", bootstrap, group, [topic], client=client)
    b = members("b", bootstrap, group, [topic], client=client)
    wait_for(lambda: settled([a, b], everything), TIMEOUT, what="a and b to share 4")
    values = [f"v{i}" for i in range(40)]
    produce(bootstrap, topic, 4, values)
    wait_for(lambda: len(a.records()) + len(b.records()) >= 40, TIMEOUT, what="all records")
    assert Counter(r[3] for m in (a, b) for r in m.records()) == Counter(values)
    assert a.records() and b.records()
    wait_for(lambda: len(a.committed()) + len(b.committed()) == 4, TIMEOUT, what="commits")
    b.stop()  # leaves the group: a takes everything
    wait_for(lambda: a.assignment() == everything, TIMEOUT, what="a to take b's partitions")
    a.stop()
    assert committed_offsets(bootstrap, group, topic, 4) == {p: 10 for p in range(4)}
    more = [f"w{i}" for i in range(8)]
    produce(bootstrap, topic, 4, more)
    c = members("c", bootstrap, group, [topic], client=client)
    wait_for(lambda: len(c.records()) >= 8, TIMEOUT, what="c to resume after the commits")
    assert sorted(r[3] for r in c.records()) == sorted(more)


def test_static_member_restarted_within_its_session_keeps_its_partitions(
    group_node, members
) -> None:
    bootstrap = group_node.bootstrap
    topic = create_topic(bootstrap, unique("static"), 4)
    group = unique("g")
    everything = all_partitions(topic, 4)
    static = {"session_timeout_ms": 30000}
    a = members("a", bootstrap, group, [topic], instance_id="instance-a", **static)
    b = members("b", bootstrap, group, [topic], instance_id="instance-b", **static)
    wait_for(lambda: settled([a, b], everything), TIMEOUT, what="a and b to share 4")
    b_partitions = b.assignment()
    a_changes = len(a.of("assignment"))
    b.kill()
    b2 = members("b2", bootstrap, group, [topic], instance_id="instance-b", **static)
    wait_for(lambda: b2.assignment(), TIMEOUT, what="the restarted static member")
    assert b2.assignment() == b_partitions
    produce(bootstrap, topic, 4, [f"v{i}" for i in range(20)])
    wait_for(lambda: len(a.records()) + len(b2.records()) >= 20, TIMEOUT, what="all records")
    # No rebalance happened: a never heard of a change of assignment.
    assert len(a.of("assignment")) == a_changes
    assert {(r[0], r[1]) for r in b2.records()} <= b_partitions


def test_two_groups_each_get_everything_members_of_one_share(group_node, members) -> None:
    bootstrap = group_node.bootstrap
    topic = create_topic(bootstrap, unique("pubsub"), 4)
    everything = all_partitions(topic, 4)
    queue, solo = unique("queue"), unique("solo")
    q1 = members("q1", bootstrap, queue, [topic])
    q2 = members("q2", bootstrap, queue, [topic])
    s = members("s", bootstrap, solo, [topic])
    wait_for(lambda: settled([q1, q2], everything), TIMEOUT, what="the queue group")
    wait_for(lambda: s.assignment() == everything, TIMEOUT, what="the solo group")
    values = [f"v{i}" for i in range(80)]
    produce(bootstrap, topic, 4, values)
    wait_for(
        lambda: len(q1.records()) + len(q2.records()) >= 80 and len(s.records()) >= 80,
        TIMEOUT,
        what="both groups to consume everything",
    )
    assert Counter(r[3] for m in (q1, q2) for r in m.records()) == Counter(values)
    assert q1.records() and q2.records()  # shared, not duplicated
    assert Counter(r[3] for r in s.records()) == Counter(values)
