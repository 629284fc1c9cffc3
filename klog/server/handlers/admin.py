"""Admin APIs: CreateTopics, DeleteTopics, CreatePartitions, DeleteRecords,
DescribeConfigs, AlterConfigs, IncrementalAlterConfigs.

Topic and partition changes are decided by the controller, which writes metadata
records and applies them once committed; configs are validated here with Kafka's
rules (``klog.server.config``) and persisted as ConfigRecords, so they apply live on
every node that replays them. Stateless; shared by all connections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from klog.controller import ConfigAlteration, NewPartitions, NewTopic
from klog.controller.image import BROKER_RESOURCE, TOPIC_RESOURCE
from klog.server.config import (
    BROKER_CONFIGS,
    TOPIC_CONFIGS,
    ConfigError,
    apply_incremental_alter,
    effective_topic_config,
    validate_topic_configs,
    validate_topic_name,
)
from klog.server.handlers.cluster import is_internal
from klog.server.router import Api, error_code_for, error_message_for
from klog.wire import (
    AlterConfigsResponse,
    CreatePartitionsResponse,
    CreateTopicsResponse,
    DeleteRecordsResponse,
    DeleteTopicsResponse,
    DescribeConfigsResponse,
    IncrementalAlterConfigsResponse,
)
from klog.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from klog.server.node import Node

BROKER_LOGGER_RESOURCE = 8
# CreateTopics' "use the broker default" markers.
DEFAULT_PARTITIONS = -1
DEFAULT_REPLICATION_FACTOR = -1


def apis(node: Node) -> list[Api]:
    return [
        Api(19, 0, 7, lambda request, client: create_topics(node, request)),
        Api(20, 0, 6, lambda request, client: delete_topics(node, request)),
        Api(21, 0, 2, lambda request, client: delete_records(node, request)),
        Api(32, 0, 4, lambda request, client: describe_configs(node, request)),
        Api(33, 0, 2, lambda request, client: alter_configs(node, request)),
        Api(37, 0, 3, lambda request, client: create_partitions(node, request)),
        Api(44, 0, 1, lambda request, client: incremental_alter_configs(node, request)),
    ]


def _failure(exc: Exception) -> tuple[int, str | None]:
    return error_code_for(exc), error_message_for(exc)


# -- topics ------------------------------------------------------------------------------


async def create_topics(node: Node, request: Any) -> CreateTopicsResponse:
    body = request.body
    results: list[Any] = []
    wanted: list[NewTopic] = []
    seen: set[str] = set()
    for topic in body.topics:
        result = CreateTopicsResponse.CreatableTopicResult(name=topic.name)
        results.append(result)
        try:
            if topic.name in seen:
                raise KafkaError(ErrorCode.INVALID_REQUEST, f"{topic.name} is listed twice")
            seen.add(topic.name)
            wanted.append(_new_topic(node, topic))
        except Exception as exc:
            result.error_code, result.error_message = _failure(exc)
    by_name = {r.name: r for r in results if r.error_code == 0}
    if wanted:
        # Kafka lets users create "__"-prefixed topics other than its own internal ones.
        outcomes = await node.controller.create_topics(
            wanted, validate_only=body.validate_only, internal_ok=True
        )
        for outcome in outcomes:
            result = by_name[outcome.name]
            result.error_code = outcome.error_code
            result.error_message = outcome.error_message
            if outcome.error_code == 0:
                result.topic_id = outcome.topic_id
                result.num_partitions = outcome.num_partitions
                result.replication_factor = outcome.replication_factor
                result.configs = _creatable_configs(node, outcome.name, wanted)
    return CreateTopicsResponse(topics=results)


def _new_topic(node: Node, topic: Any) -> NewTopic:
    try:
        validate_topic_name(topic.name)
    except ValueError as exc:
        raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, str(exc)) from exc
    if is_internal(topic.name):
        raise KafkaError(
            ErrorCode.INVALID_REQUEST, f"{topic.name} is an internal topic the broker manages"
        )
    configs = {c.name: c.value for c in topic.configs}
    validate_topic_configs(configs, node.config)
    indexes = [a.partition_index for a in topic.assignments]
    for index in {i for i in indexes if indexes.count(i) > 1}:
        raise KafkaError(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            f"Found multiple manual partition assignments for partition {index}",
        )
    assignments = (
        {a.partition_index: list(a.broker_ids) for a in topic.assignments}
        if topic.assignments
        else None
    )
    partitions = topic.num_partitions
    replication = topic.replication_factor
    if assignments is not None:
        if partitions != DEFAULT_PARTITIONS or replication != DEFAULT_REPLICATION_FACTOR:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                "numPartitions and replicationFactor must be -1 with manual assignments",
            )
    else:
        if partitions == DEFAULT_PARTITIONS:
            partitions = node.config["num.partitions"]
        if replication == DEFAULT_REPLICATION_FACTOR:
            replication = node.config["default.replication.factor"]
        if partitions <= 0:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"{partitions} partitions")
        if replication <= 0:
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_FACTOR, f"replication factor {replication}"
            )
    return NewTopic(
        name=topic.name,
        num_partitions=partitions,
        replication_factor=replication,
        assignments=assignments,
        configs={k: v for k, v in configs.items() if v is not None},
    )


def _creatable_configs(node: Node, name: str, wanted: list[NewTopic]) -> list[Any]:
    overrides = next(t.configs for t in wanted if t.name == name)
    return [
        CreateTopicsResponse.CreatableTopicConfigs(
            name=value.name,
            value=value.text,
            read_only=value.read_only,
            config_source=int(value.source),
            is_sensitive=value.is_sensitive,
        )
        for value in effective_topic_config(node.config, overrides).values()
    ]


async def delete_topics(node: Node, request: Any) -> DeleteTopicsResponse:
    body = request.body
    if request.api_version >= 6:
        targets = [t.name if t.name is not None else t.topic_id for t in body.topics]
    else:
        targets = list(body.topic_names)
    if not node.config["delete.topic.enable"]:
        return DeleteTopicsResponse(
            responses=[
                DeleteTopicsResponse.DeletableTopicResult(
                    name=t if isinstance(t, str) else None,
                    error_code=ErrorCode.TOPIC_DELETION_DISABLED,
                )
                for t in targets
            ]
        )
    outcomes = await node.controller.delete_topics(targets)
    return DeleteTopicsResponse(
        responses=[
            DeleteTopicsResponse.DeletableTopicResult(
                name=o.name,
                topic_id=o.topic_id,
                error_code=o.error_code,
                error_message=o.error_message,
            )
            for o in outcomes
        ]
    )


async def create_partitions(node: Node, request: Any) -> CreatePartitionsResponse:
    body = request.body
    wanted = [
        NewPartitions(
            topic.name,
            topic.count,
            [list(a.broker_ids) for a in topic.assignments] if topic.assignments else None,
        )
        for topic in body.topics
    ]
    outcomes = await node.controller.create_partitions(wanted, validate_only=body.validate_only)
    return CreatePartitionsResponse(
        results=[
            CreatePartitionsResponse.CreatePartitionsTopicResult(
                name=o.name, error_code=o.error_code, error_message=o.error_message
            )
            for o in outcomes
        ]
    )


async def delete_records(node: Node, request: Any) -> DeleteRecordsResponse:
    topics = []
    for topic in request.body.topics:
        results = []
        for requested in topic.partitions:
            result = DeleteRecordsResponse.DeleteRecordsPartitionResult(
                partition_index=requested.partition_index, low_watermark=-1
            )
            try:
                partition = node.replica_manager.leader_partition(
                    topic.name, requested.partition_index
                )
                offset = requested.offset
                if offset == -1:  # Kafka: -1 means "up to the high watermark"
                    offset = partition.high_watermark
                if not 0 <= offset <= partition.high_watermark:
                    raise KafkaError(
                        ErrorCode.OFFSET_OUT_OF_RANGE,
                        f"{offset} is beyond the high watermark {partition.high_watermark}",
                    )
                result.low_watermark = partition.log.delete_records_before(offset, node.clock_ms())
                partition.on_truncated()
            except Exception as exc:
                result.error_code = error_code_for(exc)
            results.append(result)
        topics.append(
            DeleteRecordsResponse.DeleteRecordsTopicResult(name=topic.name, partitions=results)
        )
    return DeleteRecordsResponse(topics=topics)


# -- configs -----------------------------------------------------------------------------


async def describe_configs(node: Node, request: Any) -> DescribeConfigsResponse:
    body = request.body
    version = request.api_version
    results = []
    for resource in body.resources:
        result = DescribeConfigsResponse.DescribeConfigsResult(
            resource_type=resource.resource_type, resource_name=resource.resource_name
        )
        try:
            values = _describe_resource(node, resource.resource_type, resource.resource_name)
            keys = resource.configuration_keys
            for name, value in values.items():
                if keys is not None and name not in keys:
                    continue
                result.configs.append(
                    DescribeConfigsResponse.DescribeConfigsResourceResult(
                        name=name,
                        value=value.text,
                        read_only=value.read_only,
                        is_default=value.source == 5,
                        config_source=int(value.source),
                        is_sensitive=value.is_sensitive,
                        synonyms=[
                            DescribeConfigsResponse.DescribeConfigsSynonym(
                                name=s.name, value=s.value, source=int(s.source)
                            )
                            for s in value.synonyms
                        ]
                        if version >= 1 and body.include_synonyms
                        else [],
                        config_type=int(value.config_type),
                        documentation=value.documentation
                        if version >= 3 and body.include_documentation
                        else None,
                    )
                )
        except Exception as exc:
            result.error_code, result.error_message = _failure(exc)
        results.append(result)
    return DescribeConfigsResponse(results=results)


def _describe_resource(node: Node, resource_type: int, name: str) -> Mapping[str, Any]:
    if resource_type == TOPIC_RESOURCE:
        if node.image.topic(name) is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name}")
        return effective_topic_config(node.config, node.image.topic_configs(name))
    if resource_type == BROKER_RESOURCE:
        return node.config.describe_all(per_broker=_broker_target(node, name))
    raise KafkaError(ErrorCode.INVALID_REQUEST, f"unsupported resource type {resource_type}")


def _broker_target(node: Node, name: str) -> bool:
    """True for this broker's own configs, False for the cluster-wide defaults ("")."""
    if name == "":
        return False
    if name != str(node.node_id):
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"broker {name!r} is not this broker")
    return True


async def alter_configs(node: Node, request: Any) -> AlterConfigsResponse:
    body = request.body
    responses = []
    for resource in body.resources:
        new = {c.name: c.value for c in resource.configs}
        responses.append(
            await _alter(
                node,
                AlterConfigsResponse.AlterConfigsResourceResponse,
                resource,
                lambda current, new=new: dict(new),
                body.validate_only,
            )
        )
    return AlterConfigsResponse(responses=responses)


async def incremental_alter_configs(node: Node, request: Any) -> IncrementalAlterConfigsResponse:
    body = request.body
    responses = []
    for resource in body.resources:
        ops = [(c.name, c.config_operation, c.value) for c in resource.configs]
        defs = TOPIC_CONFIGS if resource.resource_type == TOPIC_RESOURCE else BROKER_CONFIGS
        responses.append(
            await _alter(
                node,
                IncrementalAlterConfigsResponse.AlterConfigsResourceResponse,
                resource,
                lambda current, ops=ops, defs=defs: apply_incremental_alter(current, ops, defs),
                body.validate_only,
            )
        )
    return IncrementalAlterConfigsResponse(responses=responses)


async def _alter(node: Node, result_cls: type, resource: Any, compute, validate_only: bool) -> Any:
    """Validate the resource's new full config set, then persist the difference."""
    result = result_cls(resource_type=resource.resource_type, resource_name=resource.resource_name)
    try:
        if resource.resource_type == TOPIC_RESOURCE:
            if node.image.topic(resource.resource_name) is None:
                raise KafkaError(
                    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {resource.resource_name}"
                )
            current = node.image.topic_configs(resource.resource_name)
            new = {k: v for k, v in compute(current).items() if v is not None}
            validate_topic_configs(new, node.config)
            resource_key = resource.resource_name
        elif resource.resource_type == BROKER_RESOURCE:
            per_broker = _broker_target(node, resource.resource_name)
            scope = resource.resource_name if per_broker else ""
            current = node.image.configs_of(BROKER_RESOURCE, scope)
            new = {k: v for k, v in compute(current).items() if v is not None}
            try:
                node.config.with_dynamic(new, per_broker=per_broker, replace=True)
            except ConfigError as exc:
                raise KafkaError(ErrorCode.INVALID_REQUEST, str(exc)) from exc
            resource_key = scope
        else:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST, f"unsupported resource type {resource.resource_type}"
            )
        changes: dict[str, str | None] = {k: v for k, v in new.items() if current.get(k) != v}
        changes.update({k: None for k in current if k not in new})
        if changes and not validate_only:
            (outcome,) = await node.controller.alter_configs(
                [ConfigAlteration(resource.resource_type, resource_key, changes)],
                incremental=True,
            )
            if outcome.error_code:
                raise KafkaError(outcome.error_code, outcome.error_message)
    except Exception as exc:
        result.error_code, result.error_message = _failure(exc)
    return result
