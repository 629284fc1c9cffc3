"""Bundled Kafka client: producer, consumer, admin. Depends on klog.wire and klog.native only.

A trio core (one event loop on a background thread per client object) behind a
synchronous API; works against any Kafka-protocol broker (versions are negotiated per
broker with ApiVersions)::

    from klog.client import Producer, Consumer, Admin
    with Producer("localhost:9092", acks="all", linger_ms=5) as p:
        p.send("orders", b"value", key=b"k").result()
    with Consumer("localhost:9092", group_id="billing", auto_offset_reset="earliest") as c:
        c.subscribe(["orders"])
        for record in c:
            ...

Settings are Kafka's client configs in snake_case (``klog.client.config``); errors are
``klog.client.errors`` exceptions carrying Kafka error codes.
"""

from klog.client.accumulator import RecordFuture
from klog.client.admin import Admin
from klog.client.consumer import Consumer
from klog.client.errors import (
    AdminOperationError,
    BrokerResponseError,
    ClientClosedError,
    CommitFailedError,
    DeliveryCallbackError,
    ErrorCode,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoBrokersAvailableError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from klog.client.partitioner import murmur2, partition_for_key
from klog.client.producer import Producer
from klog.client.types import (
    AlterConfigOp,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigResourceType,
    ConsumerRecord,
    GroupDescription,
    GroupListing,
    GroupOffset,
    NewTopic,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    OffsetSpec,
    RecordMetadata,
    TopicDescription,
    TopicPartition,
)

__all__ = [
    "Admin",
    "AdminOperationError",
    "AlterConfigOp",
    "AlterConfigOpType",
    "BrokerResponseError",
    "ClientClosedError",
    "CommitFailedError",
    "ConfigEntry",
    "ConfigResource",
    "ConfigResourceType",
    "Consumer",
    "ConsumerRecord",
    "DeliveryCallbackError",
    "ErrorCode",
    "GroupDescription",
    "GroupListing",
    "GroupOffset",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaTimeoutError",
    "NewTopic",
    "NoBrokersAvailableError",
    "NoOffsetForPartitionError",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "OffsetOutOfRangeError",
    "OffsetSpec",
    "Producer",
    "RecordFuture",
    "RecordMetadata",
    "TopicAlreadyExistsError",
    "TopicDescription",
    "TopicPartition",
    "UnknownTopicOrPartitionError",
    "murmur2",
    "partition_for_key",
]
