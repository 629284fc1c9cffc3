"""The group admin APIs (ListGroups, DescribeGroups, DeleteGroups, OffsetDelete, batched
LeaveGroup, multi-group OffsetFetch, admin offset commits) through real admin clients."""

from __future__ import annotations

import confluent_kafka
import kafka
import kafka.admin
import kafka.errors
import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.integration.conftest import wait_for
from tests.integration.groups.conftest import (
    TIMEOUT,
    all_partitions,
    create_topic,
    produce,
    settled,
    unique,
)

pytestmark = pytest.mark.slow


def test_list_describe_and_delete_groups(group_node, members) -> None:
    bootstrap = group_node.bootstrap
    topic = create_topic(bootstrap, unique("admin"), 2)
    group = unique("g")
    a = members("a", bootstrap, group, [topic])
    b = members("b", bootstrap, group, [topic])
    wait_for(lambda: settled([a, b], all_partitions(topic, 2)), TIMEOUT, what="a stable group")
    admin = AdminClient({"bootstrap.servers": bootstrap})

    stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(TIMEOUT)
    assert group in {g.group_id for g in stable.valid}
    empty = admin.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(TIMEOUT)
    assert group not in {g.group_id for g in empty.valid}

    described = admin.describe_consumer_groups([group])[group].result(TIMEOUT)
    assert described.state == ConsumerGroupState.STABLE
    assert described.partition_assignor == "range"
    assigned = {
        (tp.topic, tp.partition)
        for member in described.members
        for tp in member.assignment.topic_partitions
    }
    assert len(described.members) == 2 and assigned == all_partitions(topic, 2)

    with pytest.raises(confluent_kafka.KafkaException) as busy:
        admin.delete_consumer_groups([group])[group].result(TIMEOUT)
    assert busy.value.args[0].code() == confluent_kafka.KafkaError.NON_EMPTY_GROUP

    a.stop()
    b.stop()
    wait_for(
        lambda: (
            admin.describe_consumer_groups([group])[group].result(TIMEOUT).state
            == ConsumerGroupState.EMPTY
        ),
        TIMEOUT,
        what="the group to empty",
    )
    admin.delete_consumer_groups([group])[group].result(TIMEOUT)
    groups = admin.list_consumer_groups().result(TIMEOUT)
    assert group not in {g.group_id for g in groups.valid}
    with pytest.raises(confluent_kafka.KafkaException) as gone:
        admin.delete_consumer_groups([group])[group].result(TIMEOUT)
    assert gone.value.args[0].code() == confluent_kafka.KafkaError.GROUP_ID_NOT_FOUND


def test_admin_offsets_and_offset_delete(group_node) -> None:
    bootstrap = group_node.bootstrap
    topic = create_topic(bootstrap, unique("offsets"), 2)
    other = create_topic(bootstrap, unique("other"), 1)
    produce(bootstrap, topic, 2, [f"v{i}" for i in range(10)])
    first, second = unique("g"), unique("g")
    # confluent-kafka (librdkafka) commits for an empty group...
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(
        second, [TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 5)]
    )
    admin.alter_consumer_group_offsets([request])[second].result(TIMEOUT)
    client = kafka.admin.KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        # ...and so does kafka-python, whose metadata strings arrive as sent (librdkafka's
        # carry a trailing NUL byte, which the broker keeps too).
        client.alter_group_offsets(
            first,
            {
                kafka.TopicPartition(topic, 0): kafka.OffsetAndMetadata(3, "note ✓", -1),
                kafka.TopicPartition(topic, 1): kafka.OffsetAndMetadata(4, "", -1),
                kafka.TopicPartition(other, 0): kafka.OffsetAndMetadata(1, "", -1),
            },
        )
        # One OffsetFetch (v8+) for both groups.
        fetched = client.list_group_offsets({first: None, second: None})
        assert {
            tp.partition: o.offset for tp, o in fetched[first].items() if tp.topic == topic
        } == {
            0: 3,
            1: 4,
        }
        assert fetched[first][kafka.TopicPartition(topic, 0)].metadata == "note ✓"
        assert fetched[second][kafka.TopicPartition(topic, 1)].offset == 5

        # OffsetDelete on an empty group removes exactly the named partitions.
        client.delete_group_offsets(first, [kafka.TopicPartition(other, 0)])
        after = client.list_group_offsets({first: None})[first]
        assert {(tp.topic, tp.partition) for tp in after} == {(topic, 0), (topic, 1)}
    finally:
        client.close()


def test_admin_removes_static_members_by_instance_id(group_node, members) -> None:
    bootstrap = group_node.bootstrap
    topic = create_topic(bootstrap, unique("remove"), 2)
    group = unique("g")
    static = {"session_timeout_ms": 30000}
    a = members("a", bootstrap, group, [topic], instance_id="keep", **static)
    b = members("b", bootstrap, group, [topic], instance_id="drop", **static)
    wait_for(lambda: settled([a, b], all_partitions(topic, 2)), TIMEOUT, what="two members")
    b.kill()  # a static member's partitions stay with it until its session ends...
    client = kafka.admin.KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        # ...unless an admin removes it (LeaveGroup v3+ by group.instance.id).
        client.remove_group_members(group, [kafka.admin.MemberToRemove(group_instance_id="drop")])
    finally:
        client.close()
    wait_for(
        lambda: a.assignment() == all_partitions(topic, 2),
        TIMEOUT,
        what="a to take over long before the 30s session",
    )
