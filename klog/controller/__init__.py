"""Metadata quorum, metadata log records and the metadata image every node applies.

* ``image``: ``MetadataImage`` (what handlers read), rebuilt by replaying records;
* ``metadata_log``: ``MetadataLog`` (records in ``__cluster_metadata-0``) and the
  ``Quorum`` seam deciding when a batch commits (``SingleNodeQuorum`` for one node);
* ``controller``: ``QuorumController``, the decisions (create/delete topics, create
  partitions, alter configs, register brokers) and their dataclass inputs and results;
* ``placement``: Kafka's striped round-robin replica placement;
* ``producer_ids``: producer id blocks (``ProducerIdsBlock``) and the broker's
  ``ProducerIdManager`` handing ids out of them.
"""

from klog.controller.controller import (
    INTERNAL_TOPIC_PREFIX,
    MAX_RECORDS_PER_USER_OP,
    METADATA_TOPIC_ID,
    METADATA_VERSION,
    METADATA_VERSION_FEATURE,
    AlterConfigsResult,
    ConfigAlteration,
    CreatePartitionsResult,
    CreateTopicResult,
    DeleteTopicResult,
    NewPartitions,
    NewTopic,
    QuorumController,
    new_topic_id,
)
from klog.controller.image import (
    BROKER_RESOURCE,
    NO_LEADER,
    NO_LEADER_CHANGE,
    TOPIC_RESOURCE,
    BrokerRegistration,
    Endpoint,
    MetadataDelta,
    MetadataImage,
    MetadataReplayError,
    PartitionState,
    TopicImage,
)
from klog.controller.metadata_log import (
    MetadataLog,
    MetadataLogFailedError,
    Quorum,
    SingleNodeQuorum,
)
from klog.controller.placement import PlacementError, place_replicas
from klog.controller.producer_ids import PRODUCER_ID_BLOCK_SIZE, ProducerIdManager, ProducerIdsBlock

__all__ = [
    "BROKER_RESOURCE",
    "INTERNAL_TOPIC_PREFIX",
    "MAX_RECORDS_PER_USER_OP",
    "METADATA_TOPIC_ID",
    "METADATA_VERSION",
    "METADATA_VERSION_FEATURE",
    "NO_LEADER",
    "NO_LEADER_CHANGE",
    "PRODUCER_ID_BLOCK_SIZE",
    "TOPIC_RESOURCE",
    "AlterConfigsResult",
    "BrokerRegistration",
    "ConfigAlteration",
    "CreatePartitionsResult",
    "CreateTopicResult",
    "DeleteTopicResult",
    "Endpoint",
    "MetadataDelta",
    "MetadataImage",
    "MetadataLog",
    "MetadataLogFailedError",
    "MetadataReplayError",
    "NewPartitions",
    "NewTopic",
    "PartitionState",
    "PlacementError",
    "ProducerIdManager",
    "ProducerIdsBlock",
    "Quorum",
    "QuorumController",
    "SingleNodeQuorum",
    "TopicImage",
    "new_topic_id",
    "place_replicas",
]
