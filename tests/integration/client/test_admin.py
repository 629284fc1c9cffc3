"""Admin against a real klog-server: topics, partitions, configs, records, offsets and
the cluster, with typed errors."""

from __future__ import annotations

import pytest

from klog.client import (
    AdminOperationError,
    AlterConfigOp,
    AlterConfigOpType,
    ConfigResource,
    ConfigResourceType,
    NewTopic,
    OffsetSpec,
    Producer,
    TopicAlreadyExistsError,
    TopicPartition,
    UnknownTopicOrPartitionError,
)
from klog.client.errors import InvalidPartitionsError
from klog.client.types import ConfigSource


def test_describe_cluster(admin, klog_node) -> None:
    cluster = admin.describe_cluster()
    assert cluster.cluster_id
    [broker] = cluster.brokers
    assert (broker.host, broker.port) == (klog_node.host, klog_node.port)
    assert cluster.controller_id == broker.node_id


def test_create_describe_list_delete_topics(admin) -> None:
    admin.create_topic("orders", 3, 1, {"retention.ms": "3600000"})
    [described] = admin.describe_topics(["orders"])
    assert [p.partition for p in described.partitions] == [0, 1, 2]
    broker = admin.describe_cluster().brokers[0].node_id
    for p in described.partitions:
        assert (p.leader, p.replicas, p.isr) == (broker, [broker], [broker])
    assert described.topic_id is not None and not described.is_internal
    assert "orders" in admin.list_topics()
    with pytest.raises(TopicAlreadyExistsError) as info:
        admin.create_topic("orders", 1, 1)
    assert info.value.code == 36 and info.value.name == "TOPIC_ALREADY_EXISTS"
    admin.delete_topic("orders")
    assert "orders" not in admin.list_topics()
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.describe_topics(["orders"])
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topic("orders")


def test_batch_calls_report_every_failure(admin) -> None:
    admin.create_topic("exists", 1, 1)
    with pytest.raises(AdminOperationError) as info:
        admin.create_topics(
            [NewTopic("fresh", 1, 1), NewTopic("exists", 1, 1), NewTopic("bad", 0, 1)]
        )
    assert set(info.value.errors) == {"exists", "bad"}
    assert isinstance(info.value.errors["exists"], TopicAlreadyExistsError)
    assert "fresh" in admin.list_topics()


def test_create_partitions(admin, new_topic) -> None:
    topic = new_topic(2)
    admin.create_partitions(topic, 5)
    assert len(admin.describe_topics([topic])[0].partitions) == 5
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions(topic, 3)


def test_describe_and_incrementally_alter_topic_configs(admin, new_topic) -> None:
    topic = new_topic(1)
    configs = admin.describe_topic_config(topic)
    assert configs["cleanup.policy"].value == "delete"
    assert configs["retention.ms"].source is ConfigSource.DEFAULT_CONFIG
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    admin.alter_configs(
        resource,
        [AlterConfigOp("retention.ms", "1234567"), AlterConfigOp("segment.bytes", "1048576")],
    )
    after = admin.describe_topic_config(topic)
    assert after["retention.ms"].value == "1234567"
    assert after["retention.ms"].source is ConfigSource.DYNAMIC_TOPIC_CONFIG
    admin.alter_configs(resource, [AlterConfigOp("retention.ms", None, AlterConfigOpType.DELETE)])
    assert admin.describe_topic_config(topic)["retention.ms"].is_default
    assert admin.describe_topic_config(topic)["segment.bytes"].value == "1048576"


def test_describe_broker_config(admin) -> None:
    broker = admin.describe_cluster().brokers[0].node_id
    configs = admin.describe_broker_config(broker)
    assert "log.retention.hours" in configs or "log.retention.ms" in configs


def test_list_offsets_and_delete_records(admin, bootstrap, new_topic) -> None:
    topic = new_topic(1)
    base = 1_650_000_000_000
    with Producer(bootstrap) as producer:
        for i in range(10):
            producer.send(topic, b"v", timestamp=base + i)
        producer.flush(20)
    tp = TopicPartition(topic, 0)
    assert admin.list_offsets({tp: OffsetSpec.EARLIEST})[tp].offset == 0
    assert admin.list_offsets({tp: OffsetSpec.LATEST})[tp].offset == 10
    assert admin.list_offsets({tp: base + 7})[tp].offset == 7
    assert admin.delete_records({tp: 6}) == {tp: 6}
    assert admin.list_offsets({tp: OffsetSpec.EARLIEST})[tp].offset == 6
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.list_offsets({(topic, 9): OffsetSpec.LATEST})
