"""The metadata image: what every node knows about the cluster, built by replaying records.

Input: KRaft metadata records (``klog.wire`` message objects: TopicRecord,
PartitionRecord, PartitionChangeRecord, ConfigRecord, RemoveTopicRecord,
RegisterBrokerRecord, UnregisterBrokerRecord, FenceBrokerRecord, UnfenceBrokerRecord,
BrokerRegistrationChangeRecord, FeatureLevelRecord, ProducerIdsRecord; other types are
skipped) in log order. Output: topics (by name and by id), partitions (replicas, ISR,
leader, epochs), registered brokers and their endpoints, configs per resource, features,
and the next unassigned producer id.

Invariants: the image changes only in ``apply``; a record that does not fit (for example
a partition of an unknown topic) raises ``MetadataReplayError`` because it means the
log and the code disagree (records naming a broker must name its current epoch, as in
Kafka). A batch that fails part-way leaves the image half-applied: replay errors are
fatal. ``apply_batch`` returns a ``MetadataDelta`` naming what changed so publishers
(the replica manager) react without diffing. Not shared between threads; tasks of one
trio loop may read it between applies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

# ConfigResource types as in Kafka's ConfigResource.Type (and ConfigRecord.resource_type).
TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4

# PartitionChangeRecord.leader: -2 means "leader unchanged", -1 means "no leader".
NO_LEADER_CHANGE = -2
NO_LEADER = -1


class MetadataReplayError(Exception):
    """A metadata record cannot be applied to the current image."""


@dataclass(frozen=True)
class PartitionState:
    topic_id: uuid.UUID
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    removing_replicas: tuple[int, ...] = ()
    adding_replicas: tuple[int, ...] = ()
    leader_recovery_state: int = 0


@dataclass
class TopicImage:
    name: str
    topic_id: uuid.UUID
    partitions: dict[int, PartitionState] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    name: str
    host: str
    port: int
    security_protocol: int


@dataclass(frozen=True)
class BrokerRegistration:
    broker_id: int
    incarnation_id: uuid.UUID
    broker_epoch: int
    endpoints: tuple[Endpoint, ...]
    rack: str | None
    fenced: bool
    in_controlled_shutdown: bool = False

    def endpoint(self, listener_name: str | None = None) -> Endpoint | None:
        for endpoint in self.endpoints:
            if listener_name is None or endpoint.name == listener_name:
                return endpoint
        return None


@dataclass
class MetadataDelta:
    """What one applied batch changed."""

    changed_partitions: set[tuple[str, int]] = field(default_factory=set)
    removed_topics: dict[uuid.UUID, str] = field(default_factory=dict)
    changed_configs: set[tuple[int, str]] = field(default_factory=set)
    changed_brokers: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(
            self.changed_partitions
            or self.removed_topics
            or self.changed_configs
            or self.changed_brokers
        )


class MetadataImage:
    """Topics, partitions, brokers, configs and features, as of ``last_offset``."""

    def __init__(self) -> None:
        self.topics_by_name: dict[str, TopicImage] = {}
        self.topics_by_id: dict[uuid.UUID, TopicImage] = {}
        self.brokers: dict[int, BrokerRegistration] = {}
        self.configs: dict[tuple[int, str], dict[str, str]] = {}
        self.features: dict[str, int] = {}
        #: The first id of the next producer id block (Kafka's ProducerIdControlManager).
        self.next_producer_id = 0
        self._producer_ids_replayed = False
        self.last_offset = -1

    # -- reading -------------------------------------------------------------------------

    def topic(self, name: str) -> TopicImage | None:
        return self.topics_by_name.get(name)

    def partition(self, topic: str, partition: int) -> PartitionState | None:
        image = self.topics_by_name.get(topic)
        return image.partitions.get(partition) if image else None

    def configs_of(self, resource_type: int, name: str) -> dict[str, str]:
        return dict(self.configs.get((resource_type, name), {}))

    def topic_configs(self, name: str) -> dict[str, str]:
        return self.configs_of(TOPIC_RESOURCE, name)

    def broker_configs(self, broker_id: int | None) -> dict[str, str]:
        """Dynamic broker configs: per-broker overrides on top of cluster-wide defaults."""
        merged = dict(self.configs.get((BROKER_RESOURCE, ""), {}))
        if broker_id is not None:
            merged.update(self.configs.get((BROKER_RESOURCE, str(broker_id)), {}))
        return merged

    def live_brokers(self) -> list[BrokerRegistration]:
        return [b for _, b in sorted(self.brokers.items()) if not b.fenced]

    # -- replay --------------------------------------------------------------------------

    def apply_batch(self, records: list[Any], last_offset: int) -> MetadataDelta:
        delta = MetadataDelta()
        for record in records:
            self.apply(record, delta)
        self.last_offset = last_offset
        return delta

    def apply(self, record: Any, delta: MetadataDelta) -> None:
        handler = getattr(self, "_apply_" + type(record).__name__, None)
        if handler is None:
            return  # records this node does not act on (NoOpRecord...)
        handler(record, delta)

    def _apply_TopicRecord(self, record: Any, delta: MetadataDelta) -> None:
        if record.name in self.topics_by_name:
            raise MetadataReplayError(f"topic {record.name!r} already exists")
        if record.topic_id in self.topics_by_id:
            raise MetadataReplayError(f"topic id {record.topic_id} already exists")
        topic = TopicImage(record.name, record.topic_id)
        self.topics_by_name[record.name] = topic
        self.topics_by_id[record.topic_id] = topic

    def _apply_PartitionRecord(self, record: Any, delta: MetadataDelta) -> None:
        topic = self._topic_by_id(record.topic_id)
        topic.partitions[record.partition_id] = PartitionState(
            topic_id=record.topic_id,
            partition=record.partition_id,
            replicas=tuple(record.replicas),
            isr=tuple(record.isr),
            leader=record.leader,
            leader_epoch=record.leader_epoch,
            partition_epoch=record.partition_epoch,
            removing_replicas=tuple(record.removing_replicas),
            adding_replicas=tuple(record.adding_replicas),
            leader_recovery_state=record.leader_recovery_state,
        )
        delta.changed_partitions.add((topic.name, record.partition_id))

    def _apply_PartitionChangeRecord(self, record: Any, delta: MetadataDelta) -> None:
        topic = self._topic_by_id(record.topic_id)
        current = topic.partitions.get(record.partition_id)
        if current is None:
            raise MetadataReplayError(f"change for unknown partition {record.partition_id}")
        changes: dict[str, Any] = {"partition_epoch": current.partition_epoch + 1}
        if record.isr is not None:
            changes["isr"] = tuple(record.isr)
        if record.replicas is not None:
            changes["replicas"] = tuple(record.replicas)
        if record.removing_replicas is not None:
            changes["removing_replicas"] = tuple(record.removing_replicas)
        if record.adding_replicas is not None:
            changes["adding_replicas"] = tuple(record.adding_replicas)
        if record.leader_recovery_state != -1:
            changes["leader_recovery_state"] = record.leader_recovery_state
        if record.leader != NO_LEADER_CHANGE:
            # Kafka bumps the leader epoch whenever the leader changes.
            changes["leader"] = record.leader
            changes["leader_epoch"] = current.leader_epoch + 1
        topic.partitions[record.partition_id] = replace(current, **changes)
        delta.changed_partitions.add((topic.name, record.partition_id))

    def _apply_RemoveTopicRecord(self, record: Any, delta: MetadataDelta) -> None:
        topic = self.topics_by_id.pop(record.topic_id, None)
        if topic is None:
            raise MetadataReplayError(f"removal of unknown topic id {record.topic_id}")
        del self.topics_by_name[topic.name]
        self.configs.pop((TOPIC_RESOURCE, topic.name), None)
        delta.removed_topics[topic.topic_id] = topic.name
        delta.changed_partitions = {
            (name, p) for name, p in delta.changed_partitions if name != topic.name
        }

    def _apply_ConfigRecord(self, record: Any, delta: MetadataDelta) -> None:
        key = (record.resource_type, record.resource_name)
        configs = self.configs.setdefault(key, {})
        if record.value is None:
            configs.pop(record.name, None)
            if not configs:
                # Dropped so an image after deletions equals one that never had the keys.
                del self.configs[key]
        else:
            configs[record.name] = record.value
        delta.changed_configs.add(key)

    def _apply_RegisterBrokerRecord(self, record: Any, delta: MetadataDelta) -> None:
        self.brokers[record.broker_id] = BrokerRegistration(
            broker_id=record.broker_id,
            incarnation_id=record.incarnation_id,
            broker_epoch=record.broker_epoch,
            endpoints=tuple(
                Endpoint(e.name, e.host, e.port, e.security_protocol) for e in record.end_points
            ),
            rack=record.rack,
            fenced=record.fenced,
            in_controlled_shutdown=record.in_controlled_shutdown,
        )
        delta.changed_brokers.add(record.broker_id)

    def _apply_UnregisterBrokerRecord(self, record: Any, delta: MetadataDelta) -> None:
        self._broker(record.broker_id, record.broker_epoch)
        del self.brokers[record.broker_id]
        delta.changed_brokers.add(record.broker_id)

    def _broker(self, broker_id: int, epoch: int) -> BrokerRegistration:
        """The registration a record about broker ``broker_id`` at ``epoch`` refers to;
        Kafka refuses to replay such a record for another incarnation's epoch."""
        broker = self.brokers.get(broker_id)
        if broker is None:
            raise MetadataReplayError(f"unknown broker {broker_id}")
        if broker.broker_epoch != epoch:
            raise MetadataReplayError(
                f"broker {broker_id} has epoch {broker.broker_epoch}, the record names {epoch}"
            )
        return broker

    def _change_broker(
        self, broker_id: int, epoch: int, delta: MetadataDelta, **changes: bool
    ) -> None:
        self.brokers[broker_id] = replace(self._broker(broker_id, epoch), **changes)
        delta.changed_brokers.add(broker_id)

    def _apply_FenceBrokerRecord(self, record: Any, delta: MetadataDelta) -> None:
        self._change_broker(record.id, record.epoch, delta, fenced=True)

    def _apply_UnfenceBrokerRecord(self, record: Any, delta: MetadataDelta) -> None:
        self._change_broker(record.id, record.epoch, delta, fenced=False)

    def _apply_BrokerRegistrationChangeRecord(self, record: Any, delta: MetadataDelta) -> None:
        # Kafka's encoding: fenced -1 = unfenced, 0 = no change, 1 = fenced;
        # in_controlled_shutdown 0 = no change, 1 = now in controlled shutdown.
        changes: dict[str, bool] = {}
        if record.fenced not in (-1, 0, 1) or record.in_controlled_shutdown not in (0, 1):
            raise MetadataReplayError(f"bad broker registration change {record}")
        if record.fenced:
            changes["fenced"] = record.fenced == 1
        if record.in_controlled_shutdown:
            changes["in_controlled_shutdown"] = True
        self._change_broker(record.broker_id, record.broker_epoch, delta, **changes)

    def _apply_FeatureLevelRecord(self, record: Any, delta: MetadataDelta) -> None:
        if record.feature_level == 0:
            # Level 0 means "not supported": Kafka removes the finalized feature.
            self.features.pop(record.name, None)
        else:
            self.features[record.name] = record.feature_level

    def _apply_ProducerIdsRecord(self, record: Any, delta: MetadataDelta) -> None:
        # Kafka refuses to replay a block that does not move past the current one.
        if self._producer_ids_replayed and record.next_producer_id <= self.next_producer_id:
            raise MetadataReplayError(
                f"next producer id {record.next_producer_id} does not pass {self.next_producer_id}"
            )
        self.next_producer_id = record.next_producer_id
        self._producer_ids_replayed = True

    def _topic_by_id(self, topic_id: uuid.UUID) -> TopicImage:
        topic = self.topics_by_id.get(topic_id)
        if topic is None:
            raise MetadataReplayError(f"unknown topic id {topic_id}")
        return topic
