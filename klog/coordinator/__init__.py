"""Group coordinator (classic protocol) and committed offsets in ``__consumer_offsets``.

* ``GroupCoordinator``: the node's trio runtime (loading, writing, timers, waiting);
* ``GroupCoordinatorShard``: the pure state machine of one ``__consumer_offsets``
  partition, driven by ``now_ms`` and changed by replaying records;
* ``GroupConfig``: its settings, from Kafka's broker config names;
* ``partition_for_group`` / ``java_string_hash``: Kafka's group -> partition mapping;
* the ``__consumer_offsets`` record types and codecs.
"""

from klog.coordinator.config import OFFSETS_TOPIC, GroupConfig
from klog.coordinator.group import ClassicGroup, GroupState, Member
from klog.coordinator.partitioning import java_string_hash, partition_for_group
from klog.coordinator.records import (
    CoordinatorRecord,
    GroupMetadataRecord,
    OffsetAndMetadata,
    OffsetCommitRecord,
    build_record_batches,
    decode_record,
    encode_record,
    iter_log_batches,
)
from klog.coordinator.runtime import GroupCoordinator
from klog.coordinator.shard import GroupCoordinatorShard, Result, Write

__all__ = [
    "OFFSETS_TOPIC",
    "ClassicGroup",
    "CoordinatorRecord",
    "GroupConfig",
    "GroupCoordinator",
    "GroupCoordinatorShard",
    "GroupMetadataRecord",
    "GroupState",
    "Member",
    "OffsetAndMetadata",
    "OffsetCommitRecord",
    "Result",
    "Write",
    "build_record_batches",
    "decode_record",
    "encode_record",
    "iter_log_batches",
    "java_string_hash",
    "partition_for_group",
]
