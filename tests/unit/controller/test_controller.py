"""QuorumController decisions on a real metadata log: records, error codes, concurrency,
validate-only, restart by replay."""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from klog.controller import (
    BROKER_RESOURCE,
    MAX_RECORDS_PER_USER_OP,
    METADATA_VERSION,
    TOPIC_RESOURCE,
    ConfigAlteration,
    Endpoint,
    MetadataImage,
    MetadataLog,
    MetadataLogFailedError,
    NewPartitions,
    NewTopic,
    QuorumController,
    new_topic_id,
)
from klog.segment import Log
from klog.wire import (
    ConfigRecord,
    FenceBrokerRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from klog.wire.errors import ErrorCode

ZERO_UUID = uuid.UUID(int=0)


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return trio.run(fn)


@pytest.fixture
def cluster(cluster_factory):
    """Bootstrapped, with brokers 1, 2 and 3 registered and unfenced."""
    cluster = cluster_factory()
    run(lambda: cluster.start(brokers=3))
    return cluster


def records_since(cluster, offset: int) -> list[Any]:
    return [
        record
        for records, last in cluster.metadata_log.replay()
        if last >= offset
        for record in records
    ]


def batches_since(cluster, offset: int) -> list[list[Any]]:
    return [records for records, last in cluster.metadata_log.replay() if last >= offset]


def create(cluster, *topics: NewTopic, **options: Any) -> list[Any]:
    return run(lambda: cluster.controller.create_topics(list(topics), **options))


def codes(results: list[Any]) -> list[ErrorCode]:
    return [result.error_code for result in results]


# -- bootstrap and registration ----------------------------------------------------------


def test_bootstrap_finalizes_metadata_version_once(cluster_factory, image_state) -> None:
    cluster = cluster_factory()
    assert run(cluster.controller.bootstrap) is True
    assert cluster.image.features == {"metadata.version": METADATA_VERSION}
    assert METADATA_VERSION == 21  # Kafka 3.9-IV0
    assert run(cluster.controller.bootstrap) is False
    assert cluster.metadata_log.next_offset == 1
    cluster.close()
    reopened = cluster_factory()
    assert image_state(reopened.image) == image_state(cluster.image)
    assert run(reopened.controller.bootstrap) is False


def test_broker_epoch_is_the_offset_of_the_registration(cluster_factory) -> None:
    cluster = cluster_factory()
    run(cluster.controller.bootstrap)
    incarnation = uuid.uuid4()
    endpoints = [Endpoint("PLAINTEXT", "localhost", 9092, 0), Endpoint("SSL", "h", 9093, 1)]
    epoch = run(lambda: cluster.controller.register_broker(4, incarnation, endpoints, "rack-a"))
    assert epoch == 1
    (batch,) = batches_since(cluster, 1)
    register, unfence = batch
    assert isinstance(register, RegisterBrokerRecord) and register.broker_epoch == 1
    assert register.fenced and [f.name for f in register.features] == ["metadata.version"]
    assert unfence == UnfenceBrokerRecord(id=4, epoch=1)
    broker = cluster.image.brokers[4]
    assert (broker.broker_epoch, broker.incarnation_id, broker.rack) == (1, incarnation, "rack-a")
    assert broker.endpoints == tuple(endpoints) and not broker.fenced
    again = run(lambda: cluster.controller.register_broker(4, uuid.uuid4(), endpoints, None))
    assert again == 3 and cluster.image.brokers[4].broker_epoch == 3
    assert cluster.deltas[-1].changed_brokers == {4}


# -- create topics -----------------------------------------------------------------------


def test_create_topic_writes_kafkas_records_in_one_batch(cluster) -> None:
    start = cluster.metadata_log.next_offset
    (result,) = create(cluster, NewTopic("orders", 3, 2, configs={"retention.ms": "1000"}))
    assert result.error_code == ErrorCode.NONE and result.error_message is None
    assert (result.num_partitions, result.replication_factor) == (3, 2)
    assert result.topic_id not in (ZERO_UUID, uuid.UUID(int=1))
    (batch,) = batches_since(cluster, start)
    assert [type(r).__name__ for r in batch] == [
        "TopicRecord",
        "ConfigRecord",
        "PartitionRecord",
        "PartitionRecord",
        "PartitionRecord",
    ]
    assert batch[0] == TopicRecord(name="orders", topic_id=result.topic_id)
    assert batch[1] == ConfigRecord(
        resource_type=TOPIC_RESOURCE, resource_name="orders", name="retention.ms", value="1000"
    )
    topic = cluster.image.topic("orders")
    assert topic is not None and topic.topic_id == result.topic_id
    assert cluster.image.topic_configs("orders") == {"retention.ms": "1000"}
    leaders = set()
    for index, state in topic.partitions.items():
        assert len(state.replicas) == 2 and set(state.replicas) <= {1, 2, 3}
        assert state.isr == state.replicas and state.leader == state.replicas[0]
        assert (state.leader_epoch, state.partition_epoch) == (0, 0)
        leaders.add(state.leader)
        assert batch[2 + index].partition_id == index
    assert len(leaders) == 3
    assert cluster.deltas[-1].changed_partitions == {("orders", 0), ("orders", 1), ("orders", 2)}


def test_minus_one_means_the_controller_defaults(cluster_factory) -> None:
    cluster = cluster_factory(default_num_partitions=4, default_replication_factor=3)
    run(lambda: cluster.start(brokers=3))
    (result,) = create(cluster, NewTopic("t"))
    assert (result.num_partitions, result.replication_factor) == (4, 3)


def test_placement_is_deterministic_for_a_seed(tmp_path) -> None:
    def layout(directory: str, seed: int) -> list[tuple[int, ...]]:
        image = MetadataImage()
        controller = QuorumController(
            1, image, MetadataLog(Log.open(tmp_path / directory)), rng=random.Random(seed)
        )

        async def main() -> None:
            await controller.bootstrap()
            for broker_id in (1, 2, 3, 4):
                await controller.register_broker(broker_id, uuid.uuid4(), [], None)
            await controller.create_topics([NewTopic("t", 8, 3)])

        run(main)
        topic = image.topic("t")
        assert topic is not None
        return [topic.partitions[i].replicas for i in range(8)]

    assert layout("a", 5) == layout("b", 5)
    assert len({tuple(layout(str(seed), seed)) for seed in range(6)}) > 1


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        (NewTopic("t", 0, 1), ErrorCode.INVALID_PARTITIONS),
        (NewTopic("t", -2, 1), ErrorCode.INVALID_PARTITIONS),
        (NewTopic("t", 1, 0), ErrorCode.INVALID_REPLICATION_FACTOR),
        (NewTopic("t", 1, -2), ErrorCode.INVALID_REPLICATION_FACTOR),
        (NewTopic("t", 1, 4), ErrorCode.INVALID_REPLICATION_FACTOR),
        (NewTopic("t", 2, -1, assignments={0: [1]}), ErrorCode.INVALID_REQUEST),
        (NewTopic("t", -1, 1, assignments={0: [1]}), ErrorCode.INVALID_REQUEST),
        (NewTopic("t", assignments={0: []}), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (NewTopic("t", assignments={0: [1, 9]}), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (NewTopic("t", assignments={0: [1, 1]}), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (NewTopic("t", assignments={0: [1], 1: [1, 2]}), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (NewTopic("t", assignments={0: [1], 2: [2]}), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (NewTopic("t", assignments={1: [1]}), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (NewTopic("__internal", 1, 1), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (NewTopic("existing", 1, 1), ErrorCode.TOPIC_ALREADY_EXISTS),
        (NewTopic("exist.ing", 1, 1), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (NewTopic("t", MAX_RECORDS_PER_USER_OP + 1, 1), ErrorCode.POLICY_VIOLATION),
    ],
    ids=lambda value: value.name if isinstance(value, ErrorCode) else "",
)
def test_create_topic_errors(cluster, topic: NewTopic, code: ErrorCode) -> None:
    create(cluster, NewTopic("exist_ing", 1, 1), NewTopic("existing", 1, 1))
    before = cluster.metadata_log.next_offset
    (result,) = create(cluster, topic)
    assert result.error_code == code and result.error_message
    assert (result.topic_id, result.num_partitions) == (ZERO_UUID, -1)
    assert cluster.metadata_log.next_offset == before
    assert cluster.image.topic("t") is None


def test_collisions_and_duplicates_within_one_request(cluster) -> None:
    results = create(
        cluster, NewTopic("a.b", 1, 1), NewTopic("a_b", 1, 1), NewTopic("d", 1, 1), NewTopic("d")
    )
    assert codes(results) == [
        ErrorCode.NONE,
        ErrorCode.INVALID_TOPIC_EXCEPTION,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_REQUEST,
    ]
    assert results[1].error_message == "Topic 'a_b' collides with existing topic: a.b"
    assert sorted(cluster.image.topics_by_name) == ["a.b"]


def test_too_many_partitions_fail_the_whole_request(cluster) -> None:
    half = MAX_RECORDS_PER_USER_OP // 2
    results = create(cluster, NewTopic("a", half, 1), NewTopic("b", half + 1, 1))
    assert codes(results) == [ErrorCode.POLICY_VIOLATION] * 2
    assert cluster.image.topics_by_name == {}


def test_good_topics_are_created_beside_bad_ones_in_one_batch(cluster) -> None:
    start = cluster.metadata_log.next_offset
    results = create(cluster, NewTopic("a", 1, 1), NewTopic("b", 1, 9), NewTopic("c", 2, 1))
    assert codes(results) == [ErrorCode.NONE, ErrorCode.INVALID_REPLICATION_FACTOR, ErrorCode.NONE]
    (batch,) = batches_since(cluster, start)
    assert [r.name for r in batch if isinstance(r, TopicRecord)] == ["a", "c"]
    assert cluster.metadata_log.next_offset == start + 5


def test_internal_topics_need_internal_ok_and_the_metadata_topic_is_never_created(
    cluster,
) -> None:
    (result,) = create(cluster, NewTopic("__consumer_offsets", 5, 1), internal_ok=True)
    assert result.error_code == ErrorCode.NONE
    (result,) = create(cluster, NewTopic("__cluster_metadata", 1, 1), internal_ok=True)
    assert result.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert sorted(cluster.image.topics_by_name) == ["__consumer_offsets"]


def test_manual_assignment(cluster) -> None:
    (result,) = create(cluster, NewTopic("t", assignments={1: [3, 1], 0: [2, 3]}))
    assert (result.error_code, result.num_partitions, result.replication_factor) == (0, 2, 2)
    topic = cluster.image.topic("t")
    assert topic is not None
    assert [(p.replicas, p.leader) for _, p in sorted(topic.partitions.items())] == [
        ((2, 3), 2),
        ((3, 1), 3),
    ]


def test_fenced_brokers_get_no_new_replicas_and_lead_nothing(cluster) -> None:
    epoch = cluster.image.brokers[2].broker_epoch
    run(lambda: cluster.write([FenceBrokerRecord(id=2, epoch=epoch)]))
    (refused,) = create(cluster, NewTopic("t", 1, 3))
    assert refused.error_code == ErrorCode.INVALID_REPLICATION_FACTOR
    create(cluster, NewTopic("t", 6, 2))
    topic = cluster.image.topic("t")
    assert topic is not None
    assert all(set(p.replicas) == {1, 3} for p in topic.partitions.values())
    # Manual assignments may name a fenced broker; it is left out of the ISR.
    create(cluster, NewTopic("m", assignments={0: [2, 1]}))
    state = cluster.image.partition("m", 0)
    assert state is not None and (state.replicas, state.isr, state.leader) == ((2, 1), (1,), 1)
    (only_fenced,) = create(cluster, NewTopic("f", assignments={0: [2]}))
    assert only_fenced.error_code == ErrorCode.INVALID_REPLICA_ASSIGNMENT


def test_validate_only_writes_nothing(cluster, image_state) -> None:
    before = (cluster.metadata_log.next_offset, image_state(cluster.image), len(cluster.deltas))
    results = create(cluster, NewTopic("a", 2, 3), NewTopic("b", 0, 1), validate_only=True)
    assert codes(results) == [ErrorCode.NONE, ErrorCode.INVALID_PARTITIONS]
    assert (results[0].num_partitions, results[0].replication_factor) == (2, 3)
    assert results[0].topic_id == ZERO_UUID
    after = (cluster.metadata_log.next_offset, image_state(cluster.image), len(cluster.deltas))
    assert after == before


def test_concurrent_creates_of_one_name_create_it_once(cluster) -> None:
    results: list[Any] = []

    async def create_one() -> None:
        results.extend(await cluster.controller.create_topics([NewTopic("t", 2, 1)]))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(create_one)
            nursery.start_soon(create_one)

    run(main)
    assert sorted(codes(results)) == [ErrorCode.NONE, ErrorCode.TOPIC_ALREADY_EXISTS]
    created = [r for r in results if r.error_code == ErrorCode.NONE]
    assert cluster.image.topic("t").topic_id == created[0].topic_id
    topic_records = [r for r in records_since(cluster, 0) if isinstance(r, TopicRecord)]
    assert len(topic_records) == 1


class SlowQuorum:
    """The single-node quorum behind a network round trip, as a Raft commit would be."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.epoch = inner.epoch

    @property
    def committed_end(self) -> int:
        return self.inner.committed_end

    async def commit(self, last_offset: int) -> None:
        await trio.sleep(1)
        await self.inner.commit(last_offset)


@pytest.mark.parametrize("slow", [False, True])
def test_cancelling_a_decision_mid_commit_keeps_log_and_image_in_step(
    cluster, cluster_factory, image_state, slow: bool
) -> None:
    if slow:
        cluster.metadata_log.quorum = SlowQuorum(cluster.metadata_log.quorum)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cluster.controller.create_topics, [NewTopic("t", 1, 1)])
            # The creating task now waits for its commit (fsync thread or round trip).
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        (result,) = await cluster.controller.create_topics([NewTopic("u", 1, 1)])
        assert result.error_code == ErrorCode.NONE

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert cluster.image.topic("t") is not None
    cluster.close()
    assert image_state(cluster_factory().image) == image_state(cluster.image)


def test_restart_replays_to_the_same_image(cluster, cluster_factory, image_state) -> None:
    create(cluster, NewTopic("a", 3, 2, configs={"cleanup.policy": "compact"}), NewTopic("b"))
    run(lambda: cluster.controller.create_partitions([NewPartitions("a", 5)]))
    run(lambda: cluster.controller.delete_topics(["b"]))
    alteration = ConfigAlteration(BROKER_RESOURCE, "", {"log.retention.ms": "5"})
    run(lambda: cluster.controller.alter_configs([alteration], incremental=True))
    cluster.close()
    reopened = cluster_factory()
    assert image_state(reopened.image) == image_state(cluster.image)
    # The replayed image accepts the next decisions exactly as the live one would.
    (again,) = create(reopened, NewTopic("a", 1, 1))
    assert again.error_code == ErrorCode.TOPIC_ALREADY_EXISTS
    (fresh,) = create(reopened, NewTopic("b", 1, 1))
    assert fresh.error_code == ErrorCode.NONE


def test_new_topic_ids_avoid_dashes_and_taken_ids() -> None:
    taken: dict[uuid.UUID, str] = {}
    for _ in range(500):
        topic_id = new_topic_id(taken)
        assert topic_id.bytes[0] >> 2 != 62 and topic_id.version == 4
        assert topic_id not in taken
        taken[topic_id] = "t"


# -- delete topics -----------------------------------------------------------------------


def test_delete_topics_by_name_and_id(cluster) -> None:
    a, b = create(cluster, NewTopic("a", 1, 1, configs={"k": "v"}), NewTopic("b", 2, 1))
    start = cluster.metadata_log.next_offset
    missing = uuid.uuid4()
    results = run(lambda: cluster.controller.delete_topics(["a", b.topic_id, "nope", missing]))
    assert [(r.name, r.topic_id, r.error_code) for r in results] == [
        ("a", a.topic_id, ErrorCode.NONE),
        ("b", b.topic_id, ErrorCode.NONE),
        ("nope", ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
        (None, missing, ErrorCode.UNKNOWN_TOPIC_ID),
    ]
    assert batches_since(cluster, start) == [
        [RemoveTopicRecord(topic_id=a.topic_id), RemoveTopicRecord(topic_id=b.topic_id)]
    ]
    assert cluster.image.topics_by_name == {} and cluster.image.configs == {}
    assert cluster.deltas[-1].removed_topics == {a.topic_id: "a", b.topic_id: "b"}
    (recreated,) = create(cluster, NewTopic("a", 1, 1))
    assert recreated.topic_id != a.topic_id and cluster.image.topic_configs("a") == {}


def test_delete_duplicates(cluster) -> None:
    (a,) = create(cluster, NewTopic("a", 1, 1))
    (b,) = create(cluster, NewTopic("b", 1, 1))
    start = cluster.metadata_log.next_offset
    results = run(lambda: cluster.controller.delete_topics(["a", a.topic_id, "b", "b", b.topic_id]))
    assert codes(results) == [
        ErrorCode.NONE,
        ErrorCode.NONE,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.NONE,
    ]
    assert results[2].error_message == "Duplicate topic name."
    assert len(records_since(cluster, start)) == 2


def test_deleting_nothing_writes_nothing(cluster) -> None:
    before = cluster.metadata_log.next_offset
    (result,) = run(lambda: cluster.controller.delete_topics(["nope"]))
    assert result.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert cluster.metadata_log.next_offset == before


# -- create partitions -------------------------------------------------------------------


def test_create_partitions_continues_the_leader_stripe(cluster) -> None:
    create(cluster, NewTopic("t", 2, 2))
    start = cluster.metadata_log.next_offset
    (result,) = run(lambda: cluster.controller.create_partitions([NewPartitions("t", 5)]))
    assert result.error_code == ErrorCode.NONE
    batch = batches_since(cluster, start)[0]
    assert [r.partition_id for r in batch] == [2, 3, 4]
    assert all(isinstance(r, PartitionRecord) and r.leader_epoch == 0 for r in batch)
    topic = cluster.image.topic("t")
    assert topic is not None
    leaders = [topic.partitions[i].leader for i in range(5)]
    first = leaders[0]
    assert leaders == [(first - 1 + i) % 3 + 1 for i in range(5)]
    assert all(len(p.replicas) == 2 for p in topic.partitions.values())
    assert cluster.deltas[-1].changed_partitions == {("t", 2), ("t", 3), ("t", 4)}


def test_create_partitions_with_assignments(cluster) -> None:
    create(cluster, NewTopic("t", 1, 2))
    requests = [NewPartitions("t", 3, [[3, 1], [1, 2]])]
    (result,) = run(lambda: cluster.controller.create_partitions(requests))
    assert result.error_code == ErrorCode.NONE
    assert cluster.image.partition("t", 1).replicas == (3, 1)
    assert cluster.image.partition("t", 2).leader == 1


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (NewPartitions("nope", 3), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
        (NewPartitions("t", 2), ErrorCode.INVALID_PARTITIONS),
        (NewPartitions("t", 1), ErrorCode.INVALID_PARTITIONS),
        (NewPartitions("t", 4, [[1, 2]]), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (NewPartitions("t", 3, [[1]]), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (NewPartitions("t", 3, [[1, 7]]), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (NewPartitions("t", MAX_RECORDS_PER_USER_OP + 3), ErrorCode.POLICY_VIOLATION),
    ],
    ids=lambda value: value.name if isinstance(value, ErrorCode) else "",
)
def test_create_partitions_errors(cluster, request_: NewPartitions, code: ErrorCode) -> None:
    create(cluster, NewTopic("t", 2, 2))
    before = cluster.metadata_log.next_offset
    (result,) = run(lambda: cluster.controller.create_partitions([request_]))
    assert result.error_code == code and result.error_message
    assert cluster.metadata_log.next_offset == before


def test_create_partitions_needs_enough_live_brokers(cluster) -> None:
    create(cluster, NewTopic("t", 1, 3))
    epoch = cluster.image.brokers[3].broker_epoch
    run(lambda: cluster.write([FenceBrokerRecord(id=3, epoch=epoch)]))
    (result,) = run(lambda: cluster.controller.create_partitions([NewPartitions("t", 2)]))
    assert result.error_code == ErrorCode.INVALID_REPLICATION_FACTOR


def test_create_partitions_duplicates_and_validate_only(cluster, image_state) -> None:
    create(cluster, NewTopic("t", 1, 1), NewTopic("u", 1, 1))
    before = image_state(cluster.image)
    requests = [NewPartitions("t", 2), NewPartitions("t", 3), NewPartitions("u", 4)]
    results = run(lambda: cluster.controller.create_partitions(requests, validate_only=True))
    assert codes(results) == [ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST, 0]
    assert image_state(cluster.image) == before


# -- configs -----------------------------------------------------------------------------


def alter(cluster, *alterations: ConfigAlteration, **options: Any) -> list[Any]:
    options.setdefault("incremental", True)
    return run(lambda: cluster.controller.alter_configs(list(alterations), **options))


def test_incremental_alter_sets_and_deletes_only_what_changes(cluster) -> None:
    create(cluster, NewTopic("t", 1, 1, configs={"a": "1", "b": "2"}))
    start = cluster.metadata_log.next_offset
    (result,) = alter(
        cluster, ConfigAlteration(TOPIC_RESOURCE, "t", {"a": "1", "b": None, "c": "3", "z": None})
    )
    assert result.error_code == ErrorCode.NONE
    assert [(r.name, r.value) for r in records_since(cluster, start)] == [
        ("b", None),
        ("c", "3"),
    ]
    assert cluster.image.topic_configs("t") == {"a": "1", "c": "3"}
    assert cluster.deltas[-1].changed_configs == {(TOPIC_RESOURCE, "t")}


def test_legacy_alter_replaces_the_whole_set(cluster) -> None:
    create(cluster, NewTopic("t", 1, 1, configs={"a": "1", "b": "2"}))
    start = cluster.metadata_log.next_offset
    alter(cluster, ConfigAlteration(TOPIC_RESOURCE, "t", {"b": "2", "c": "3"}), incremental=False)
    assert [(r.name, r.value) for r in records_since(cluster, start)] == [
        ("c", "3"),
        ("a", None),
    ]
    assert cluster.image.topic_configs("t") == {"b": "2", "c": "3"}


def test_broker_configs_are_rewritten_even_when_unchanged(cluster) -> None:
    change = ConfigAlteration(BROKER_RESOURCE, "2", {"log.retention.ms": "10", "gone": None})
    alter(cluster, change)
    start = cluster.metadata_log.next_offset
    results = alter(cluster, change, ConfigAlteration(BROKER_RESOURCE, "", {"x": "1"}))
    assert codes(results) == [ErrorCode.NONE, ErrorCode.NONE]
    assert [(r.resource_name, r.name, r.value) for r in records_since(cluster, start)] == [
        ("2", "log.retention.ms", "10"),
        ("2", "gone", None),
        ("", "x", "1"),
    ]
    assert cluster.image.broker_configs(2) == {"log.retention.ms": "10", "x": "1"}


@pytest.mark.parametrize(
    ("resource_type", "name", "code"),
    [
        (TOPIC_RESOURCE, "nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
        (BROKER_RESOURCE, "abc", ErrorCode.INVALID_REQUEST),
        (BROKER_RESOURCE, "7", ErrorCode.BROKER_ID_NOT_REGISTERED),
        (8, "1", ErrorCode.INVALID_REQUEST),
    ],
)
def test_alter_config_errors(cluster, resource_type: int, name: str, code: ErrorCode) -> None:
    before = cluster.metadata_log.next_offset
    (result,) = alter(cluster, ConfigAlteration(resource_type, name, {"k": "v"}))
    assert (result.resource_type, result.resource_name) == (resource_type, name)
    assert result.error_code == code and result.error_message
    assert cluster.metadata_log.next_offset == before


def test_the_controllers_own_id_is_a_valid_broker_resource(cluster_factory) -> None:
    cluster = cluster_factory()
    run(cluster.controller.bootstrap)
    (result,) = alter(cluster, ConfigAlteration(BROKER_RESOURCE, "1", {"k": "v"}))
    assert result.error_code == ErrorCode.NONE
    assert cluster.image.broker_configs(1) == {"k": "v"}


def test_alter_duplicates_and_validate_only(cluster, image_state) -> None:
    create(cluster, NewTopic("t", 1, 1))
    before = image_state(cluster.image)
    same = ConfigAlteration(TOPIC_RESOURCE, "t", {"k": "v"})
    results = alter(cluster, same, same, validate_only=True)
    assert codes(results) == [ErrorCode.INVALID_REQUEST] * 2
    (ok,) = alter(cluster, same, validate_only=True)
    assert ok.error_code == ErrorCode.NONE
    assert image_state(cluster.image) == before


# -- failures ----------------------------------------------------------------------------


class BrokenQuorum:
    epoch = 1
    committed_end = 0

    async def commit(self, last_offset: int) -> None:
        raise OSError(28, "No space left on device")


def test_a_failed_commit_leaves_the_image_alone_and_stops_decisions(cluster, image_state) -> None:
    before = image_state(cluster.image)
    cluster.metadata_log.quorum = BrokenQuorum()
    with pytest.raises(MetadataLogFailedError):
        create(cluster, NewTopic("t", 1, 1))
    assert image_state(cluster.image) == before
    with pytest.raises(MetadataLogFailedError):
        create(cluster, NewTopic("u", 1, 1))
    # Decisions that write nothing still answer.
    (result,) = run(lambda: cluster.controller.delete_topics(["x"]))
    assert result.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
