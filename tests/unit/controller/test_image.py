"""MetadataImage: every record type it applies, the deltas it reports, replay errors."""

from __future__ import annotations

import uuid

import pytest

from klog.controller import (
    BROKER_RESOURCE,
    NO_LEADER,
    NO_LEADER_CHANGE,
    TOPIC_RESOURCE,
    Endpoint,
    MetadataImage,
    MetadataReplayError,
)
from klog.wire import (
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    FeatureLevelRecord,
    FenceBrokerRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
)

TOPIC_ID = uuid.UUID("11111111-2222-4333-8444-555555555555")


def partition(index: int, replicas: list[int], topic_id: uuid.UUID = TOPIC_ID) -> PartitionRecord:
    return PartitionRecord(
        partition_id=index,
        topic_id=topic_id,
        replicas=replicas,
        isr=replicas,
        leader=replicas[0],
        leader_epoch=0,
        partition_epoch=0,
    )


def register(broker_id: int, epoch: int, fenced: bool = False) -> RegisterBrokerRecord:
    return RegisterBrokerRecord(
        broker_id=broker_id,
        incarnation_id=uuid.UUID(int=broker_id + 100),
        broker_epoch=epoch,
        end_points=[
            RegisterBrokerRecord.BrokerEndpoint(
                name="PLAINTEXT", host="h", port=9000 + broker_id, security_protocol=0
            ),
            RegisterBrokerRecord.BrokerEndpoint(
                name="SSL", host="h", port=9100 + broker_id, security_protocol=1
            ),
        ],
        rack="r1",
        fenced=fenced,
    )


@pytest.fixture
def image() -> MetadataImage:
    """A topic "t" with partitions 0 (replicas 1,2) and 1 (replicas 2,1)."""
    image = MetadataImage()
    image.apply_batch(
        [TopicRecord(name="t", topic_id=TOPIC_ID), partition(0, [1, 2]), partition(1, [2, 1])],
        0,
    )
    return image


def test_topic_and_partition_records_build_the_topic(image: MetadataImage) -> None:
    topic = image.topic("t")
    assert topic is not None and image.topics_by_id[TOPIC_ID] is topic
    state = image.partition("t", 1)
    assert state is not None
    assert (state.replicas, state.isr, state.leader) == ((2, 1), (2, 1), 2)
    assert (state.leader_epoch, state.partition_epoch, state.topic_id) == (0, 0, TOPIC_ID)
    assert image.partition("t", 2) is None and image.partition("u", 0) is None
    assert image.last_offset == 0


def test_apply_batch_reports_new_partitions_and_sets_the_offset() -> None:
    image = MetadataImage()
    delta = image.apply_batch([TopicRecord(name="t", topic_id=TOPIC_ID), partition(0, [1])], 7)
    assert delta and delta.changed_partitions == {("t", 0)}
    assert image.last_offset == 7


def test_records_without_effect_are_skipped_but_advance_the_offset(image: MetadataImage) -> None:
    delta = image.apply_batch([NoOpRecord(), ProducerIdsRecord(broker_id=1)], 9)
    assert not delta
    assert image.last_offset == 9
    assert image.topic("t") is not None


@pytest.mark.parametrize(
    "record",
    [
        TopicRecord(name="t", topic_id=uuid.uuid4()),
        TopicRecord(name="other", topic_id=TOPIC_ID),
        partition(0, [1], topic_id=uuid.uuid4()),
        PartitionChangeRecord(partition_id=5, topic_id=TOPIC_ID, isr=[1]),
        RemoveTopicRecord(topic_id=uuid.uuid4()),
    ],
    ids=["name-taken", "id-taken", "partition-of-unknown-topic", "change-of-unknown", "remove"],
)
def test_records_that_do_not_fit_are_replay_errors(image: MetadataImage, record: object) -> None:
    with pytest.raises(MetadataReplayError):
        image.apply_batch([record], 1)
    assert image.last_offset == 0


def test_isr_change_bumps_only_the_partition_epoch(image: MetadataImage) -> None:
    change = PartitionChangeRecord(partition_id=0, topic_id=TOPIC_ID, isr=[1])
    delta = image.apply_batch([change], 1)
    state = image.partition("t", 0)
    assert state is not None
    assert (state.isr, state.leader, state.leader_epoch, state.partition_epoch) == ((1,), 1, 0, 1)
    assert state.replicas == (1, 2)
    assert delta.changed_partitions == {("t", 0)}


def test_leader_change_bumps_the_leader_epoch(image: MetadataImage) -> None:
    image.apply_batch(
        [
            PartitionChangeRecord(partition_id=0, topic_id=TOPIC_ID, leader=2),
            PartitionChangeRecord(partition_id=1, topic_id=TOPIC_ID, leader=NO_LEADER),
        ],
        1,
    )
    first, second = image.partition("t", 0), image.partition("t", 1)
    assert first is not None and second is not None
    assert (first.leader, first.leader_epoch, first.partition_epoch) == (2, 1, 1)
    assert (second.leader, second.leader_epoch) == (NO_LEADER, 1)


def test_reassignment_fields_change_only_when_given(image: MetadataImage) -> None:
    image.apply_batch(
        [
            PartitionChangeRecord(
                partition_id=0,
                topic_id=TOPIC_ID,
                replicas=[1, 2, 3],
                adding_replicas=[3],
                removing_replicas=[2],
                leader_recovery_state=1,
                leader=NO_LEADER_CHANGE,
            )
        ],
        1,
    )
    state = image.partition("t", 0)
    assert state is not None
    assert state.replicas == (1, 2, 3)
    assert (state.adding_replicas, state.removing_replicas) == ((3,), (2,))
    assert (state.leader_recovery_state, state.leader_epoch, state.isr) == (1, 0, (1, 2))


def test_remove_topic_drops_it_its_configs_and_its_pending_changes(image: MetadataImage) -> None:
    image.apply_batch(
        [ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name="t", name="k", value="v")], 1
    )
    delta = image.apply_batch(
        [
            PartitionChangeRecord(partition_id=0, topic_id=TOPIC_ID, isr=[1]),
            RemoveTopicRecord(topic_id=TOPIC_ID),
        ],
        2,
    )
    assert image.topic("t") is None and TOPIC_ID not in image.topics_by_id
    assert image.topic_configs("t") == {}
    assert delta.removed_topics == {TOPIC_ID: "t"}
    assert delta.changed_partitions == set()


def test_config_records_set_and_delete_and_leave_no_empty_maps() -> None:
    image = MetadataImage()
    set_ = ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name="t", name="k", value="1")
    delta = image.apply_batch([set_], 0)
    assert image.topic_configs("t") == {"k": "1"}
    assert delta.changed_configs == {(TOPIC_RESOURCE, "t")}
    copy = image.topic_configs("t")
    copy["k"] = "changed"
    assert image.topic_configs("t") == {"k": "1"}
    delete = ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name="t", name="k", value=None)
    image.apply_batch([delete], 1)
    assert image.configs == {}
    image.apply_batch([delete], 2)
    assert image.configs == {}


def test_broker_configs_merge_cluster_defaults_and_per_broker_overrides() -> None:
    image = MetadataImage()
    image.apply_batch(
        [
            ConfigRecord(resource_type=BROKER_RESOURCE, resource_name="", name="a", value="1"),
            ConfigRecord(resource_type=BROKER_RESOURCE, resource_name="", name="b", value="1"),
            ConfigRecord(resource_type=BROKER_RESOURCE, resource_name="2", name="b", value="2"),
        ],
        0,
    )
    assert image.broker_configs(2) == {"a": "1", "b": "2"}
    assert image.configs_of(BROKER_RESOURCE, "2") == {"b": "2"}
    assert image.configs_of(TOPIC_RESOURCE, "2") == {}
    assert image.broker_configs(3) == {"a": "1", "b": "1"}
    assert image.broker_configs(None) == {"a": "1", "b": "1"}


def test_register_broker_record_builds_the_registration() -> None:
    image = MetadataImage()
    delta = image.apply_batch([register(1, 5), register(2, 6, fenced=True)], 6)
    broker = image.brokers[1]
    assert (broker.broker_epoch, broker.rack, broker.fenced) == (5, "r1", False)
    assert broker.incarnation_id == uuid.UUID(int=101)
    assert broker.endpoint() == Endpoint("PLAINTEXT", "h", 9001, 0)
    assert broker.endpoint("SSL") == Endpoint("SSL", "h", 9101, 1)
    assert broker.endpoint("SASL_SSL") is None
    assert [b.broker_id for b in image.live_brokers()] == [1]
    assert delta.changed_brokers == {1, 2}


def test_fence_and_unfence_need_the_current_broker_epoch() -> None:
    image = MetadataImage()
    image.apply_batch([register(1, 5)], 5)
    image.apply_batch([FenceBrokerRecord(id=1, epoch=5)], 6)
    assert image.brokers[1].fenced and image.live_brokers() == []
    delta = image.apply_batch([UnfenceBrokerRecord(id=1, epoch=5)], 7)
    assert not image.brokers[1].fenced and delta.changed_brokers == {1}
    for record in (
        FenceBrokerRecord(id=1, epoch=4),
        UnfenceBrokerRecord(id=2, epoch=5),
        UnregisterBrokerRecord(broker_id=1, broker_epoch=3),
        UnregisterBrokerRecord(broker_id=9, broker_epoch=5),
    ):
        with pytest.raises(MetadataReplayError):
            image.apply_batch([record], 8)
    assert not image.brokers[1].fenced


def test_unregister_removes_the_broker() -> None:
    image = MetadataImage()
    image.apply_batch([register(1, 5)], 5)
    delta = image.apply_batch([UnregisterBrokerRecord(broker_id=1, broker_epoch=5)], 6)
    assert image.brokers == {} and delta.changed_brokers == {1}


@pytest.mark.parametrize(
    ("fenced", "shutdown", "expected"),
    [(1, 0, (True, False)), (-1, 0, (False, False)), (0, 1, (True, True)), (0, 0, (True, False))],
)
def test_broker_registration_change_record(
    fenced: int, shutdown: int, expected: tuple[bool, bool]
) -> None:
    image = MetadataImage()
    image.apply_batch([register(1, 5, fenced=True)], 5)
    change = BrokerRegistrationChangeRecord(
        broker_id=1, broker_epoch=5, fenced=fenced, in_controlled_shutdown=shutdown
    )
    delta = image.apply_batch([change], 6)
    broker = image.brokers[1]
    assert (broker.fenced, broker.in_controlled_shutdown) == expected
    assert delta.changed_brokers == {1}


@pytest.mark.parametrize(
    "change",
    [
        BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=4, fenced=-1),
        BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=5, fenced=2),
        BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=5, in_controlled_shutdown=-1),
    ],
    ids=["stale-epoch", "bad-fenced", "bad-shutdown"],
)
def test_bad_broker_registration_changes_are_replay_errors(change: object) -> None:
    image = MetadataImage()
    image.apply_batch([register(1, 5, fenced=True)], 5)
    with pytest.raises(MetadataReplayError):
        image.apply_batch([change], 6)


def test_feature_levels_are_finalized_and_level_zero_removes() -> None:
    image = MetadataImage()
    image.apply_batch([FeatureLevelRecord(name="metadata.version", feature_level=21)], 0)
    image.apply_batch([FeatureLevelRecord(name="group.version", feature_level=1)], 1)
    assert image.features == {"metadata.version": 21, "group.version": 1}
    image.apply_batch([FeatureLevelRecord(name="group.version", feature_level=0)], 2)
    assert image.features == {"metadata.version": 21}
