"""Value types of the client's public API: partitions, records, offsets, admin results.

All are immutable (NamedTuples or frozen dataclasses), hashable where they are keys,
and safe to share between threads. ``TopicPartition`` is a NamedTuple so a plain
``("orders", 0)`` tuple compares equal to it and can be passed wherever one is taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

Headers = Sequence[tuple[str, bytes | None]]


class TopicPartition(NamedTuple):
    topic: str
    partition: int


def as_topic_partitions(items: Iterable[tuple[str, int]]) -> list[TopicPartition]:
    """Normalise ``(topic, partition)`` tuples or TopicPartitions, checking their types."""
    out = []
    for item in items:
        try:
            topic, partition = item
        except (TypeError, ValueError):
            raise TypeError(
                f"expected a (topic, partition) tuple or TopicPartition, got {item!r}"
            ) from None
        if not isinstance(topic, str) or not isinstance(partition, int):
            raise TypeError(f"expected (str, int), got {item!r}")
        out.append(TopicPartition(topic, partition))
    return out


class TimestampType(IntEnum):
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class RecordMetadata(NamedTuple):
    """Where a produced record landed. ``offset`` is -1 with ``acks=0`` (the broker does
    not answer); ``timestamp`` is the broker's when the topic uses LogAppendTime."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class ConsumerRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_type: TimestampType


class OffsetAndMetadata(NamedTuple):
    """A committed position: the offset of the next record to consume."""

    offset: int
    metadata: str = ""
    leader_epoch: int = -1


class OffsetAndTimestamp(NamedTuple):
    """An offset found by ListOffsets: -1 / -1 when no record matches a timestamp."""

    offset: int
    timestamp: int
    leader_epoch: int = -1


class OffsetSpec(IntEnum):
    """Special timestamps of ListOffsets; any other int >= 0 is a timestamp in ms."""

    LATEST = -1
    EARLIEST = -2
    MAX_TIMESTAMP = -3


@dataclass(frozen=True)
class NewTopic:
    """A topic to create. -1 partitions / replication factor = the broker's defaults."""

    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    configs: dict[str, str] = field(default_factory=dict)
    replica_assignment: dict[int, list[int]] | None = None


@dataclass(frozen=True)
class BrokerDescription:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class ClusterDescription:
    cluster_id: str | None
    controller_id: int
    brokers: list[BrokerDescription]


@dataclass(frozen=True)
class PartitionDescription:
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]
    offline_replicas: list[int] = field(default_factory=list)
    leader_epoch: int = -1
    error_code: int = 0


@dataclass(frozen=True)
class TopicDescription:
    name: str
    partitions: list[PartitionDescription]
    is_internal: bool = False
    topic_id: str | None = None


class ConfigResourceType(IntEnum):
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8


class ConfigResource(NamedTuple):
    type: ConfigResourceType
    name: str


class ConfigSource(IntEnum):
    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7
    GROUP_CONFIG = 8


@dataclass(frozen=True)
class ConfigSynonym:
    name: str
    value: str | None
    source: ConfigSource


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str | None
    source: ConfigSource
    read_only: bool = False
    is_sensitive: bool = False
    synonyms: list[ConfigSynonym] = field(default_factory=list)
    documentation: str | None = None

    @property
    def is_default(self) -> bool:
        return self.source is ConfigSource.DEFAULT_CONFIG


class AlterConfigOpType(IntEnum):
    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


class AlterConfigOp(NamedTuple):
    name: str
    value: str | None = None
    op: AlterConfigOpType = AlterConfigOpType.SET


@dataclass(frozen=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str | None = None
    group_type: str | None = None


@dataclass(frozen=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    assignment: list[TopicPartition]


@dataclass(frozen=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[MemberDescription]
    coordinator: int


@dataclass(frozen=True)
class GroupOffset:
    """One partition of a group's committed offsets, with the partition's end and lag."""

    topic: str
    partition: int
    committed_offset: int
    log_end_offset: int
    lag: int
    metadata: str = ""
