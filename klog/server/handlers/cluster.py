"""Cluster-metadata APIs: ApiVersions, Metadata, DescribeCluster, DescribeTopicPartitions.

All answers are read from the node's metadata image. Metadata auto-creates unknown
topics when ``auto.create.topics.enable`` and the request allow it (Kafka's rule:
valid, non-internal names only), through the controller like CreateTopics does.

Stateless; shared by all connections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klog.server.config import validate_topic_name
from klog.server.router import Api, error_code_for
from klog.wire import (
    ApiVersionsResponse,
    DescribeClusterResponse,
    DescribeTopicPartitionsResponse,
    MetadataResponse,
)
from klog.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from klog.controller.image import TopicImage
    from klog.server.node import Node

# Kafka's own internal topics; other "__" names are ordinary user topics.
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


def apis(node: Node) -> list[Api]:
    return [
        Api(18, 0, 4, lambda request, client: api_versions(node, request)),
        Api(3, 0, 12, lambda request, client: metadata(node, request)),
        Api(60, 0, 1, lambda request, client: describe_cluster(node, request)),
        Api(75, 0, 0, lambda request, client: describe_topic_partitions(node, request)),
    ]


async def api_versions(node: Node, request: Any) -> ApiVersionsResponse:
    return ApiVersionsResponse(
        error_code=0,
        api_keys=node.router.api_versions(),
        finalized_features_epoch=node.image.last_offset,
    )


def is_internal(name: str) -> bool:
    return name in INTERNAL_TOPICS


async def metadata(node: Node, request: Any) -> MetadataResponse:
    body = request.body
    version = request.api_version
    response = MetadataResponse(
        brokers=[
            MetadataResponse.MetadataResponseBroker(
                node_id=broker_id, host=host, port=port, rack=rack
            )
            for broker_id, host, port, rack in node.broker_endpoints()
        ],
        cluster_id=node.cluster_id,
        controller_id=node.node_id,
    )
    if body.topics is None or (version == 0 and not body.topics):
        names = sorted(node.image.topics_by_name)
        response.topics = [_topic_metadata(node.image.topics_by_name[n]) for n in names]
        return response
    allow_create = node.config["auto.create.topics.enable"] and (
        version < 4 or body.allow_auto_topic_creation
    )
    for requested in body.topics:
        name = requested.name
        if name is None and version >= 10:
            image = node.image.topics_by_id.get(requested.topic_id)
            if image is None:
                response.topics.append(
                    MetadataResponse.MetadataResponseTopic(
                        error_code=ErrorCode.UNKNOWN_TOPIC_ID, topic_id=requested.topic_id
                    )
                )
                continue
            name = image.name
        response.topics.append(await _named_topic(node, name, allow_create))
    return response


async def _named_topic(node: Node, name: str, allow_create: bool) -> Any:
    image = node.image.topic(name)
    if image is not None:
        return _topic_metadata(image)
    try:
        validate_topic_name(name)
    except ValueError:
        return MetadataResponse.MetadataResponseTopic(
            error_code=ErrorCode.INVALID_TOPIC_EXCEPTION, name=name
        )
    if not allow_create or is_internal(name):
        return MetadataResponse.MetadataResponseTopic(
            error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name=name
        )
    try:
        await node.auto_create_topic(name)
    except Exception as exc:
        code = error_code_for(exc)
        if code != ErrorCode.TOPIC_ALREADY_EXISTS:
            return MetadataResponse.MetadataResponseTopic(error_code=code, name=name)
    image = node.image.topic(name)
    if image is None:  # deleted again between the write and now
        return MetadataResponse.MetadataResponseTopic(
            error_code=ErrorCode.LEADER_NOT_AVAILABLE, name=name
        )
    return _topic_metadata(image)


def _topic_metadata(topic: TopicImage) -> Any:
    return MetadataResponse.MetadataResponseTopic(
        error_code=0,
        name=topic.name,
        topic_id=topic.topic_id,
        is_internal=is_internal(topic.name),
        partitions=[
            MetadataResponse.MetadataResponsePartition(
                error_code=0 if state.leader >= 0 else ErrorCode.LEADER_NOT_AVAILABLE,
                partition_index=index,
                leader_id=state.leader,
                leader_epoch=state.leader_epoch,
                replica_nodes=list(state.replicas),
                isr_nodes=list(state.isr),
                offline_replicas=[],
            )
            for index, state in sorted(topic.partitions.items())
        ],
    )


async def describe_cluster(node: Node, request: Any) -> DescribeClusterResponse:
    if request.api_version >= 1 and request.body.endpoint_type not in (1,):
        raise KafkaError(
            ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, "only broker endpoints are served here"
        )
    return DescribeClusterResponse(
        error_code=0,
        cluster_id=node.cluster_id,
        controller_id=node.node_id,
        brokers=[
            DescribeClusterResponse.DescribeClusterBroker(
                broker_id=broker_id, host=host, port=port, rack=rack
            )
            for broker_id, host, port, rack in node.broker_endpoints()
        ],
    )


async def describe_topic_partitions(node: Node, request: Any) -> DescribeTopicPartitionsResponse:
    body = request.body
    names = [t.name for t in body.topics] if body.topics else sorted(node.image.topics_by_name)
    cursor = body.cursor
    if cursor is not None:
        names = [n for n in names if n >= cursor.topic_name]
    limit = body.response_partition_limit
    topics = []
    next_cursor = None
    for name in names:
        image = node.image.topic(name)
        if image is None:
            topics.append(
                DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic(
                    error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name=name
                )
            )
            continue
        first = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        out = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic(
            error_code=0, name=name, topic_id=image.topic_id, is_internal=is_internal(name)
        )
        for index, state in sorted(image.partitions.items()):
            if index < first:
                continue
            if limit <= 0:
                next_cursor = DescribeTopicPartitionsResponse.Cursor(
                    topic_name=name, partition_index=index
                )
                break
            limit -= 1
            out.partitions.append(
                DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition(
                    error_code=0,
                    partition_index=index,
                    leader_id=state.leader,
                    leader_epoch=state.leader_epoch,
                    replica_nodes=list(state.replicas),
                    isr_nodes=list(state.isr),
                    offline_replicas=[],
                )
            )
        topics.append(out)
        if next_cursor is not None:
            break
    return DescribeTopicPartitionsResponse(topics=topics, next_cursor=next_cursor)
