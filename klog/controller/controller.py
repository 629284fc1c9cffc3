"""Controller decisions: topics, partitions, configs, broker registrations and producer id
blocks.

Each decision validates its input against the ``MetadataImage``, computes Kafka's KRaft
records (the ones Kafka's ``ReplicationControlManager``, ``ConfigurationControlManager``
and ``ClusterControlManager`` write, with their error codes and messages), writes them
as one batch through the ``MetadataLog``, and only once that batch is committed applies
it to the image (DESIGN.md section 9: state changes by replaying records, so a restart
that replays the log rebuilds the same image). Decisions are serialised by one lock:
each sees the image every earlier decision left, so two concurrent creates of one topic
give one TOPIC_ALREADY_EXISTS. A validate-only decision writes nothing.

Inputs and outputs are plain dataclasses, not wire messages; the server converts. Topic
names and config values arrive already validated by the server (``klog.server.config``);
the controller checks what needs the image (existence, name collisions, brokers).

Not shared between trio runs; any task of the node's loop may call it.
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from klog.controller.image import (
    BROKER_RESOURCE,
    TOPIC_RESOURCE,
    Endpoint,
    MetadataDelta,
    MetadataImage,
    TopicImage,
)
from klog.controller.metadata_log import MetadataLog
from klog.controller.placement import PlacementError, place_replicas
from klog.controller.producer_ids import INT64_MAX, PRODUCER_ID_BLOCK_SIZE, ProducerIdsBlock
from klog.segment import METADATA_TOPIC
from klog.wire import (
    ConfigRecord,
    FeatureLevelRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from klog.wire.errors import ErrorCode, KafkaError

METADATA_VERSION_FEATURE = "metadata.version"
# The metadata.version feature level of Kafka 3.9-IV0, which klog's records follow.
METADATA_VERSION = 21
# Kafka's QuorumController.MAX_RECORDS_PER_USER_OP: bigger requests are refused.
MAX_RECORDS_PER_USER_OP = 10_000
ZERO_UUID = uuid.UUID(int=0)
# Kafka's Uuid.METADATA_TOPIC_ID, the id of __cluster_metadata.
METADATA_TOPIC_ID = uuid.UUID(int=1)
INTERNAL_TOPIC_PREFIX = "__"

_TOO_MANY_PARTITIONS = "Excessively large number of partitions per request."


@dataclass(frozen=True)
class NewTopic:
    """A topic to create. -1 means "the default" for ``num_partitions`` and
    ``replication_factor``; with ``assignments`` (partition -> replica ids) both must be -1,
    as in CreateTopics."""

    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    assignments: Mapping[int, Sequence[int]] | None = None
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CreateTopicResult:
    name: str
    error_code: ErrorCode = ErrorCode.NONE
    error_message: str | None = None
    #: The new topic's id; the zero UUID on error and for validate-only requests.
    topic_id: uuid.UUID = ZERO_UUID
    num_partitions: int = -1
    replication_factor: int = -1


@dataclass(frozen=True)
class DeleteTopicResult:
    #: None when the topic was given by an unknown id.
    name: str | None
    topic_id: uuid.UUID = ZERO_UUID
    error_code: ErrorCode = ErrorCode.NONE
    error_message: str | None = None


@dataclass(frozen=True)
class NewPartitions:
    """Grow ``topic`` to ``count`` partitions; ``assignments`` lists the replicas of each
    new partition in order (None: the controller places them)."""

    topic: str
    count: int
    assignments: Sequence[Sequence[int]] | None = None


@dataclass(frozen=True)
class CreatePartitionsResult:
    name: str
    error_code: ErrorCode = ErrorCode.NONE
    error_message: str | None = None


@dataclass(frozen=True)
class ConfigAlteration:
    """Config changes for one resource (``TOPIC_RESOURCE`` or ``BROKER_RESOURCE``; a
    broker resource name is a broker id, or "" for the cluster-wide default). A value of
    None deletes the key."""

    resource_type: int
    resource_name: str
    configs: Mapping[str, str | None]


@dataclass(frozen=True)
class AlterConfigsResult:
    resource_type: int
    resource_name: str
    error_code: ErrorCode = ErrorCode.NONE
    error_message: str | None = None


def new_topic_id(taken: Mapping[uuid.UUID, Any]) -> uuid.UUID:
    """A random topic id as Kafka's ``Uuid.randomUuid`` makes them: a version-4 UUID (so
    never the zero UUID nor METADATA_TOPIC_ID), not in ``taken``, and not one whose
    base64 form starts with '-' (command-line tools would read it as an option)."""
    while True:
        topic_id = uuid.uuid4()
        if topic_id.bytes[0] >> 2 != 62 and topic_id not in taken:
            return topic_id


def _collision_key(name: str) -> str | None:
    """Kafka's ``Topic.unifyCollisionChars`` for names with '.' or '_', else None: two
    such names with one key would share metric names."""
    return name.replace(".", "_") if "." in name or "_" in name else None


class _Refused(Exception):
    """A request item fails with a Kafka error code; becomes that item's result."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class QuorumController:
    """The active controller's decisions; see the module docstring."""

    def __init__(
        self,
        node_id: int,
        image: MetadataImage,
        metadata_log: MetadataLog,
        *,
        rng: random.Random | None = None,
        default_num_partitions: int = 1,
        default_replication_factor: int = 1,
        on_commit: Callable[[MetadataDelta], None] | None = None,
    ) -> None:
        """``image`` must already hold every committed record of ``metadata_log`` (replay
        first). ``rng`` drives replica placement (seed it in tests). The defaults stand in
        for -1 in ``NewTopic`` (Kafka's num.partitions / default.replication.factor).
        ``on_commit(delta)`` runs after each decision's records are applied."""
        self.node_id = node_id
        self.image = image
        self.metadata_log = metadata_log
        self._rng = rng if rng is not None else random.Random()
        self._default_num_partitions = default_num_partitions
        self._default_replication_factor = default_replication_factor
        self._on_commit = on_commit
        self._lock = trio.Lock()

    async def _write(self, records: list[Any]) -> MetadataDelta:
        # Shielded: once records are in the log they must reach the image too, or the
        # next decision would be made against an image that replay would not rebuild.
        with trio.CancelScope(shield=True):
            last_offset = await self.metadata_log.append(records)
        delta = self.image.apply_batch(records, last_offset)
        if self._on_commit is not None:
            self._on_commit(delta)
        return delta

    def _active_brokers(self) -> list[int]:
        """Brokers that may take new replicas: registered, unfenced, not shutting down."""
        return sorted(
            b.broker_id
            for b in self.image.brokers.values()
            if not b.fenced and not b.in_controlled_shutdown
        )

    # -- cluster -------------------------------------------------------------------------

    async def bootstrap(self) -> bool:
        """On a new cluster (no metadata.version finalized yet) write the bootstrap
        records: the FeatureLevelRecord for metadata.version. True if written."""
        async with self._lock:
            if METADATA_VERSION_FEATURE in self.image.features:
                return False
            await self._write(
                [FeatureLevelRecord(name=METADATA_VERSION_FEATURE, feature_level=METADATA_VERSION)]
            )
            return True

    async def register_broker(
        self,
        broker_id: int,
        incarnation_id: uuid.UUID,
        endpoints: Sequence[Endpoint],
        rack: str | None,
    ) -> int:
        """Register (or re-register after a restart) a broker and unfence it; returns its
        broker epoch, the offset of its RegisterBrokerRecord as in Kafka."""
        async with self._lock:
            epoch = self.metadata_log.next_offset
            await self._write(
                [
                    RegisterBrokerRecord(
                        broker_id=broker_id,
                        incarnation_id=incarnation_id,
                        broker_epoch=epoch,
                        end_points=[
                            RegisterBrokerRecord.BrokerEndpoint(
                                name=e.name,
                                host=e.host,
                                port=e.port,
                                security_protocol=e.security_protocol,
                            )
                            for e in endpoints
                        ],
                        features=[
                            RegisterBrokerRecord.BrokerFeature(
                                name=METADATA_VERSION_FEATURE,
                                min_supported_version=METADATA_VERSION,
                                max_supported_version=METADATA_VERSION,
                            )
                        ],
                        rack=rack,
                        fenced=True,
                    ),
                    # One node is caught up at once; with Raft this waits for heartbeats.
                    UnfenceBrokerRecord(id=broker_id, epoch=epoch),
                ]
            )
            return epoch

    async def allocate_producer_ids(self, broker_id: int, broker_epoch: int) -> ProducerIdsBlock:
        """The next block of producer ids for ``broker_id`` (Kafka's
        ProducerIdControlManager.generateNextProducerId), committed as a ProducerIdsRecord
        before it is returned. Raises ``KafkaError`` STALE_BROKER_EPOCH if the broker is
        not registered with that epoch, UNKNOWN_SERVER_ERROR when ids are exhausted."""
        async with self._lock:
            broker = self.image.brokers.get(broker_id)
            if broker is None or broker.broker_epoch != broker_epoch:
                raise KafkaError(
                    ErrorCode.STALE_BROKER_EPOCH,
                    f"broker {broker_id} is not registered with epoch {broker_epoch}",
                )
            first = self.image.next_producer_id
            if first > INT64_MAX - PRODUCER_ID_BLOCK_SIZE:
                raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, "producer ids are exhausted")
            block = ProducerIdsBlock(broker_id, first, PRODUCER_ID_BLOCK_SIZE)
            await self._write(
                [
                    ProducerIdsRecord(
                        broker_id=broker_id,
                        broker_epoch=broker_epoch,
                        next_producer_id=block.next_block_first_id,
                    )
                ]
            )
            return block

    # -- topics --------------------------------------------------------------------------

    async def create_topics(
        self,
        topics: Sequence[NewTopic],
        *,
        validate_only: bool = False,
        internal_ok: bool = False,
    ) -> list[CreateTopicResult]:
        """One result per entry of ``topics``, in order. Names starting with "__" are
        refused (INVALID_TOPIC_EXCEPTION) unless ``internal_ok`` (the server creating its
        own internal topics); ``__cluster_metadata`` always is."""
        async with self._lock:
            results, records = self._plan_create_topics(topics, validate_only, internal_ok)
            if records and not validate_only:
                await self._write(records)
            return results

    def _plan_create_topics(
        self, topics: Sequence[NewTopic], validate_only: bool, internal_ok: bool
    ) -> tuple[list[CreateTopicResult], list[Any]]:
        total = sum(self._requested_partitions(topic) for topic in topics)
        if total > MAX_RECORDS_PER_USER_OP:
            error = ErrorCode.POLICY_VIOLATION
            return [CreateTopicResult(t.name, error, _TOO_MANY_PARTITIONS) for t in topics], []
        counts = Counter(topic.name for topic in topics)
        collisions = {
            key: name
            for name in self.image.topics_by_name
            if (key := _collision_key(name)) is not None
        }
        taken_ids: dict[uuid.UUID, Any] = dict(self.image.topics_by_id)
        active = self._active_brokers()
        results: list[CreateTopicResult] = []
        records: list[Any] = []
        for topic in topics:
            try:
                if counts[topic.name] > 1:
                    raise _Refused(ErrorCode.INVALID_REQUEST, "Duplicate topic name.")
                self._check_new_name(topic.name, collisions, internal_ok)
                partitions = self._new_topic_partitions(topic, active)
            except _Refused as exc:
                results.append(CreateTopicResult(topic.name, exc.code, exc.message))
                continue
            topic_id = new_topic_id(taken_ids)
            taken_ids[topic_id] = topic.name
            key = _collision_key(topic.name)
            if key is not None:
                collisions[key] = topic.name
            records.append(TopicRecord(name=topic.name, topic_id=topic_id))
            # As in Kafka: configs after the TopicRecord, before the PartitionRecords.
            records.extend(
                ConfigRecord(
                    resource_type=TOPIC_RESOURCE, resource_name=topic.name, name=k, value=v
                )
                for k, v in topic.configs.items()
            )
            records.extend(
                _partition_record(topic_id, index, replicas, isr)
                for index, (replicas, isr) in enumerate(partitions)
            )
            results.append(
                CreateTopicResult(
                    topic.name,
                    topic_id=ZERO_UUID if validate_only else topic_id,
                    num_partitions=len(partitions),
                    replication_factor=len(partitions[0][0]),
                )
            )
        return results, records

    def _requested_partitions(self, topic: NewTopic) -> int:
        """Kafka's count for the per-request limit (validateTotalNumberOfPartitions)."""
        if topic.assignments:
            return len(topic.assignments)
        if topic.num_partitions == -1:
            return self._default_num_partitions
        return max(topic.num_partitions, 0)

    def _check_new_name(self, name: str, collisions: dict[str, str], internal_ok: bool) -> None:
        if name in self.image.topics_by_name:
            raise _Refused(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        if name == METADATA_TOPIC or (name.startswith(INTERNAL_TOPIC_PREFIX) and not internal_ok):
            raise _Refused(
                ErrorCode.INVALID_TOPIC_EXCEPTION,
                f"Topic '{name}' has the prefix '{INTERNAL_TOPIC_PREFIX}' reserved for "
                "internal topics.",
            )
        key = _collision_key(name)
        if key is not None and key in collisions:
            raise _Refused(
                ErrorCode.INVALID_TOPIC_EXCEPTION,
                f"Topic '{name}' collides with existing topic: {collisions[key]}",
            )

    def _new_topic_partitions(
        self, topic: NewTopic, active: list[int]
    ) -> list[tuple[list[int], list[int]]]:
        """(replicas, isr) per partition of a new topic, following Kafka's createTopic."""
        if topic.assignments:
            if topic.replication_factor != -1:
                raise _Refused(
                    ErrorCode.INVALID_REQUEST,
                    "A manual partition assignment was specified, but replication factor "
                    "was not set to -1.",
                )
            if topic.num_partitions != -1:
                raise _Refused(
                    ErrorCode.INVALID_REQUEST,
                    "A manual partition assignment was specified, but numPartitions was not "
                    "set to -1.",
                )
            factor: int | None = None
            by_index = {}
            for index, replicas in sorted(topic.assignments.items()):
                by_index[index] = self._manual_partition(index, replicas, factor, active)
                factor = len(replicas)
            if sorted(by_index) != list(range(len(by_index))):
                raise _Refused(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    "partitions should be a consecutive 0-based integer sequence",
                )
            return [by_index[index] for index in range(len(by_index))]
        if topic.replication_factor < -1 or topic.replication_factor == 0:
            raise _Refused(
                ErrorCode.INVALID_REPLICATION_FACTOR,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            )
        if topic.num_partitions < -1 or topic.num_partitions == 0:
            raise _Refused(
                ErrorCode.INVALID_PARTITIONS,
                "Number of partitions was set to an invalid non-positive value.",
            )
        count = self._default_num_partitions if topic.num_partitions == -1 else topic.num_partitions
        factor = (
            self._default_replication_factor
            if topic.replication_factor == -1
            else topic.replication_factor
        )
        return [(r, list(r)) for r in self._place(active, count, factor, 0, None)]

    def _place(
        self,
        active: list[int],
        count: int,
        factor: int,
        start_partition: int,
        fixed_start_index: int | None,
    ) -> list[list[int]]:
        try:
            return place_replicas(
                active,
                count,
                factor,
                self._rng,
                start_partition=start_partition,
                fixed_start_index=fixed_start_index,
            )
        except PlacementError as exc:
            raise _Refused(
                ErrorCode.INVALID_REPLICATION_FACTOR,
                f"Unable to replicate the partition {factor} time(s): {exc}",
            ) from None

    def _manual_partition(
        self, index: int, replicas: Sequence[int], factor: int | None, active: list[int]
    ) -> tuple[list[int], list[int]]:
        """Kafka's validateManualPartitionAssignment; returns (replicas, isr)."""
        if not replicas:
            raise _Refused(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                "The manual partition assignment includes an empty replica list.",
            )
        seen: set[int] = set()
        for broker_id in sorted(replicas):
            if broker_id not in self.image.brokers:
                raise _Refused(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"The manual partition assignment includes broker {broker_id}, but no "
                    "such broker is registered.",
                )
            if broker_id in seen:
                raise _Refused(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"The manual partition assignment includes the broker {broker_id} more "
                    "than once.",
                )
            seen.add(broker_id)
        if factor is not None and len(replicas) != factor:
            raise _Refused(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"The manual partition assignment includes a partition with {len(replicas)} "
                "replica(s), but this is not consistent with previous partitions, which have "
                f"{factor} replica(s).",
            )
        isr = [broker_id for broker_id in replicas if broker_id in active]
        if not isr:
            raise _Refused(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"All brokers specified in the manual partition assignment for partition "
                f"{index} are fenced or in controlled shutdown.",
            )
        return list(replicas), isr

    async def delete_topics(self, topics: Sequence[str | uuid.UUID]) -> list[DeleteTopicResult]:
        """Delete topics given by name or by id; one result per entry, in order. A topic
        named twice (by name and by id) is deleted once and both entries succeed."""
        async with self._lock:
            counts = Counter(topics)
            results: list[DeleteTopicResult] = []
            removing: dict[uuid.UUID, Any] = {}
            for ref in topics:
                try:
                    topic = self._topic_to_delete(ref, counts[ref] > 1)
                except _Refused as exc:
                    if isinstance(ref, uuid.UUID):
                        results.append(DeleteTopicResult(None, ref, exc.code, exc.message))
                    else:
                        results.append(DeleteTopicResult(ref, ZERO_UUID, exc.code, exc.message))
                    continue
                results.append(DeleteTopicResult(topic.name, topic.topic_id))
                removing[topic.topic_id] = RemoveTopicRecord(topic_id=topic.topic_id)
            if removing:
                await self._write(list(removing.values()))
            return results

    def _topic_to_delete(self, ref: str | uuid.UUID, duplicate: bool) -> TopicImage:
        if isinstance(ref, uuid.UUID):
            if duplicate:
                raise _Refused(ErrorCode.INVALID_REQUEST, "Duplicate topic id.")
            topic = self.image.topics_by_id.get(ref)
            if topic is None:
                raise _Refused(ErrorCode.UNKNOWN_TOPIC_ID, f"Topic id {ref} does not exist.")
        else:
            if duplicate:
                raise _Refused(ErrorCode.INVALID_REQUEST, "Duplicate topic name.")
            topic = self.image.topic(ref)
            if topic is None:
                raise _Refused(
                    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic '{ref}' does not exist."
                )
        return topic

    async def create_partitions(
        self, topics: Sequence[NewPartitions], *, validate_only: bool = False
    ) -> list[CreatePartitionsResult]:
        """Add partitions to existing topics; one result per entry, in order."""
        async with self._lock:
            counts = Counter(t.topic for t in topics)
            active = self._active_brokers()
            results: list[CreatePartitionsResult] = []
            records: list[Any] = []
            for request in topics:
                try:
                    if counts[request.topic] > 1:
                        raise _Refused(ErrorCode.INVALID_REQUEST, "Duplicate topic name.")
                    added = self._new_partitions(request, active)
                    if len(records) + len(added) > MAX_RECORDS_PER_USER_OP:
                        raise _Refused(ErrorCode.POLICY_VIOLATION, _TOO_MANY_PARTITIONS)
                except _Refused as exc:
                    results.append(CreatePartitionsResult(request.topic, exc.code, exc.message))
                    continue
                records.extend(added)
                results.append(CreatePartitionsResult(request.topic))
            if records and not validate_only:
                await self._write(records)
            return results

    def _new_partitions(self, request: NewPartitions, active: list[int]) -> list[Any]:
        """PartitionRecords for one CreatePartitions topic (Kafka's createPartitionsForTopic)."""
        topic = self.image.topic(request.topic)
        if topic is None:
            raise _Refused(
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                f"Unable to find a topic named {request.topic!r}.",
            )
        current = len(topic.partitions)
        if request.count == current:
            raise _Refused(
                ErrorCode.INVALID_PARTITIONS, f"Topic already has {current} partition(s)."
            )
        if request.count < current:
            raise _Refused(
                ErrorCode.INVALID_PARTITIONS,
                f"The topic {request.topic} currently has {current} partition(s); "
                f"{request.count} would not be an increase.",
            )
        additional = request.count - current
        first = topic.partitions[0]
        factor = len(first.replicas)
        if request.assignments is not None:
            if len(request.assignments) != additional:
                raise _Refused(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"Attempted to add {additional} additional partition(s), but only "
                    f"{len(request.assignments)} assignment(s) were specified.",
                )
            placed = [
                self._manual_partition(current + i, replicas, factor, active)
                for i, replicas in enumerate(request.assignments)
            ]
        else:
            # Continue partition 0's stripe, as Kafka's addPartitions does.
            start = bisect.bisect_left(active, first.replicas[0])
            layout = self._place(
                active, additional, factor, current, start if start < len(active) else 0
            )
            placed = [(replicas, list(replicas)) for replicas in layout]
        return [
            _partition_record(topic.topic_id, current + i, replicas, isr)
            for i, (replicas, isr) in enumerate(placed)
        ]

    # -- configs -------------------------------------------------------------------------

    async def alter_configs(
        self,
        alterations: Sequence[ConfigAlteration],
        *,
        incremental: bool,
        validate_only: bool = False,
    ) -> list[AlterConfigsResult]:
        """Write ConfigRecords; one result per entry, in order. ``incremental`` (Kafka's
        IncrementalAlterConfigs, SET/DELETE already resolved by the server): only the
        given keys change. Otherwise (AlterConfigs) ``configs`` is the resource's new full
        set and every other key is deleted. As in Kafka, broker configs are rewritten even
        when unchanged, so brokers re-apply them."""
        async with self._lock:
            counts = Counter((a.resource_type, a.resource_name) for a in alterations)
            results: list[AlterConfigsResult] = []
            records: list[Any] = []
            for alteration in alterations:
                rtype, rname = alteration.resource_type, alteration.resource_name
                try:
                    if counts[rtype, rname] > 1:
                        raise _Refused(ErrorCode.INVALID_REQUEST, "Duplicate resource.")
                    self._check_config_resource(rtype, rname)
                except _Refused as exc:
                    results.append(AlterConfigsResult(rtype, rname, exc.code, exc.message))
                    continue
                records.extend(self._config_records(alteration, incremental))
                results.append(AlterConfigsResult(rtype, rname))
            if records and not validate_only:
                await self._write(records)
            return results

    def _check_config_resource(self, resource_type: int, name: str) -> None:
        """Kafka's ConfigResourceExistenceChecker."""
        if resource_type == TOPIC_RESOURCE:
            if self.image.topic(name) is None:
                raise _Refused(
                    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist."
                )
        elif resource_type == BROKER_RESOURCE:
            if name == "":
                return
            try:
                broker_id = int(name)
            except ValueError:
                raise _Refused(ErrorCode.INVALID_REQUEST, f"Invalid broker name {name}") from None
            if broker_id not in self.image.brokers and broker_id != self.node_id:
                raise _Refused(
                    ErrorCode.BROKER_ID_NOT_REGISTERED, f"No broker with id {broker_id} found."
                )
        else:
            raise _Refused(
                ErrorCode.INVALID_REQUEST, f"Unsupported config resource type {resource_type}"
            )

    def _config_records(self, alteration: ConfigAlteration, incremental: bool) -> list[Any]:
        rtype, rname = alteration.resource_type, alteration.resource_name
        current = self.image.configs.get((rtype, rname), {})
        target = dict(alteration.configs)
        if not incremental:
            target.update({k: None for k in current if target.get(k) is None})
        always = rtype == BROKER_RESOURCE
        return [
            ConfigRecord(resource_type=rtype, resource_name=rname, name=key, value=value)
            for key, value in target.items()
            if always or current.get(key) != value
        ]


def _partition_record(
    topic_id: uuid.UUID, index: int, replicas: Sequence[int], isr: Sequence[int]
) -> Any:
    """A new partition as Kafka builds it: leader = first in-sync replica, epochs 0."""
    return PartitionRecord(
        partition_id=index,
        topic_id=topic_id,
        replicas=list(replicas),
        isr=list(isr),
        leader=isr[0],
        leader_epoch=0,
        partition_epoch=0,
    )
