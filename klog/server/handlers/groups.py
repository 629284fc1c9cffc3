"""Consumer-group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete.

These handlers adapt each API version's request and response shapes to the node's
``klog.coordinator.GroupCoordinator`` (``node.group_coordinator``), which owns the groups.
Errors that stop a request before a coordinator shard (NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID...) arrive as ``KafkaError`` and are put
where each API version carries errors (top level, per group, or per partition). Topics
unknown to the metadata image get UNKNOWN_TOPIC_OR_PARTITION per partition, as Kafka's
request layer does, before the coordinator sees them.

FindCoordinator creates ``__consumer_offsets`` on first use, as Kafka does
(``offsets.topic.num.partitions``, cleanup.policy=compact, replication factor clamped to
the live brokers). Stateless; shared by all connections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klog.controller import NewTopic
from klog.coordinator import OFFSETS_TOPIC, GroupConfig, GroupCoordinator
from klog.server.router import Api, error_code_for
from klog.wire import (
    DeleteGroupsResponse,
    DescribeGroupsResponse,
    FindCoordinatorResponse,
    HeartbeatResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    ListGroupsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetDeleteResponse,
    OffsetFetchResponse,
    SyncGroupResponse,
)
from klog.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from klog.server.node import Node

GROUP_KEY_TYPE = 0
TRANSACTION_KEY_TYPE = 1
NO_OFFSET = -1


def new_group_coordinator(node: Node) -> GroupCoordinator:
    """The coordinator a node runs (``await nursery.start(coordinator.run)``), built from
    its config and replica manager; append failures map through the router's table."""
    assert node.replica_manager is not None
    return GroupCoordinator(
        GroupConfig.from_broker_config(node.config),
        node.replica_manager,
        error_code_for=error_code_for,
        clock_ms=node.clock_ms,
    )


def apis(node: Node) -> list[Api]:
    return [
        Api(10, 0, 6, lambda request, client: find_coordinator(node, request)),
        Api(11, 0, 9, lambda request, client: join_group(node, request, client)),
        Api(14, 0, 5, lambda request, client: sync_group(node, request)),
        Api(12, 0, 4, lambda request, client: heartbeat(node, request)),
        Api(13, 0, 5, lambda request, client: leave_group(node, request)),
        Api(8, 0, 9, lambda request, client: offset_commit(node, request)),
        Api(9, 0, 9, lambda request, client: offset_fetch(node, request)),
        Api(15, 0, 5, lambda request, client: describe_groups(node, request)),
        Api(16, 0, 5, lambda request, client: list_groups(node, request)),
        Api(42, 0, 2, lambda request, client: delete_groups(node, request)),
        Api(47, 0, 0, lambda request, client: offset_delete(node, request)),
    ]


# -- FindCoordinator -----------------------------------------------------------------------


async def find_coordinator(node: Node, request: Any) -> FindCoordinatorResponse:
    body, version = request.body, request.api_version
    key_type = body.key_type if version >= 1 else GROUP_KEY_TYPE
    keys = body.coordinator_keys if version >= 4 else [body.key]
    found = [await _find(node, key_type, key) for key in keys]
    if version >= 4:
        return FindCoordinatorResponse(
            coordinators=[
                FindCoordinatorResponse.Coordinator(
                    key=key,
                    node_id=node_id,
                    host=host,
                    port=port,
                    error_code=code,
                    error_message=msg,
                )
                for key, (node_id, host, port, code, msg) in zip(keys, found, strict=True)
            ]
        )
    node_id, host, port, code, msg = found[0]
    return FindCoordinatorResponse(
        error_code=code, error_message=msg, node_id=node_id, host=host, port=port
    )


async def _find(node: Node, key_type: int, key: str) -> tuple[int, str, int, int, str | None]:
    """(node id, host, port, error code, error message) of the coordinator of ``key``."""
    if key_type == TRANSACTION_KEY_TYPE:
        return _not_found(ErrorCode.COORDINATOR_NOT_AVAILABLE, "transactions are not supported")
    if key_type != GROUP_KEY_TYPE:
        return _not_found(ErrorCode.INVALID_REQUEST, f"unknown coordinator key type {key_type}")
    if node.image.topic(OFFSETS_TOPIC) is None:
        try:
            await _create_offsets_topic(node)
        except Exception as exc:
            code = error_code_for(exc)
            if code != ErrorCode.TOPIC_ALREADY_EXISTS:
                return _not_found(ErrorCode.COORDINATOR_NOT_AVAILABLE, str(exc))
    state = node.image.partition(OFFSETS_TOPIC, node.group_coordinator.partition_for(key))
    if state is None or state.leader < 0:
        return _not_found(
            ErrorCode.COORDINATOR_NOT_AVAILABLE, "no leader for the group's partition"
        )
    for broker_id, host, port, _rack in node.broker_endpoints():
        if broker_id == state.leader:
            return broker_id, host, port, ErrorCode.NONE, None
    return _not_found(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"broker {state.leader} is not live")


def _not_found(code: int, message: str) -> tuple[int, str, int, int, str | None]:
    return -1, "", -1, code, message


async def _create_offsets_topic(node: Node) -> None:
    assert node.controller is not None
    live = max(len(node.image.live_brokers()), 1)
    result = (
        await node.controller.create_topics(
            [
                NewTopic(
                    name=OFFSETS_TOPIC,
                    num_partitions=node.config["offsets.topic.num.partitions"],
                    replication_factor=min(node.config["offsets.topic.replication.factor"], live),
                    configs={
                        "cleanup.policy": "compact",
                        "compression.type": "producer",
                        "segment.bytes": str(node.config["offsets.topic.segment.bytes"]),
                    },
                )
            ],
            internal_ok=True,
        )
    )[0]
    if result.error_code:
        raise KafkaError(result.error_code, result.error_message)


# -- membership ----------------------------------------------------------------------------


async def join_group(node: Node, request: Any, client: Any) -> JoinGroupResponse:
    body = request.body
    try:
        return await node.group_coordinator.join_group(
            body,
            version=request.api_version,
            client_id=request.header.client_id or "",
            client_host=f"/{client.host}",
        )
    except KafkaError as exc:
        return JoinGroupResponse(error_code=exc.code, member_id=body.member_id)


async def sync_group(node: Node, request: Any) -> SyncGroupResponse:
    try:
        return await node.group_coordinator.sync_group(request.body)
    except KafkaError as exc:
        return SyncGroupResponse(error_code=exc.code)


async def heartbeat(node: Node, request: Any) -> HeartbeatResponse:
    try:
        return await node.group_coordinator.heartbeat(request.body)
    except KafkaError as exc:
        return HeartbeatResponse(error_code=exc.code)


async def leave_group(node: Node, request: Any) -> LeaveGroupResponse:
    body, version = request.body, request.api_version
    if version >= 3:
        members = [(m.member_id, m.group_instance_id) for m in body.members]
    else:
        members = [(body.member_id, None)]
    try:
        response = await node.group_coordinator.leave_group(body.group_id, members)
    except KafkaError as exc:
        return LeaveGroupResponse(error_code=exc.code)
    if version < 3 and response.error_code == ErrorCode.NONE and response.members:
        # Before v3 the one member's outcome is the request's.
        response.error_code = response.members[0].error_code
    return response


# -- offsets -------------------------------------------------------------------------------


def _known(node: Node, topic: str, partition: int) -> bool:
    return node.image.partition(topic, partition) is not None


async def offset_commit(node: Node, request: Any) -> OffsetCommitResponse:
    body, version = request.body, request.api_version
    known_topics = []
    unknown = OffsetCommitResponse()
    for topic in body.topics:
        known = [p for p in topic.partitions if _known(node, topic.name, p.partition_index)]
        missing = [p for p in topic.partitions if not _known(node, topic.name, p.partition_index)]
        if known:
            known_topics.append(
                OffsetCommitRequest.OffsetCommitRequestTopic(name=topic.name, partitions=known)
            )
        if missing:
            unknown.topics.append(
                _commit_topic(topic.name, missing, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            )
    body.topics = known_topics
    try:
        response = await node.group_coordinator.commit_offsets(body, version=version)
    except KafkaError as exc:
        response = OffsetCommitResponse(
            topics=[_commit_topic(t.name, t.partitions, exc.code) for t in known_topics]
        )
    response.topics.extend(unknown.topics)
    return response


def _commit_topic(name: str, partitions: list[Any], code: int) -> Any:
    return OffsetCommitResponse.OffsetCommitResponseTopic(
        name=name,
        partitions=[
            OffsetCommitResponse.OffsetCommitResponsePartition(
                partition_index=p.partition_index, error_code=code
            )
            for p in partitions
        ],
    )


def _fetch(node: Node, group_id: str, topics: Any) -> tuple[int, list[Any]]:
    """(group error, [(topic, [(partition, offset or None)])]) for OffsetFetch."""
    requested = None if topics is None else [(t.name, list(t.partition_indexes)) for t in topics]
    try:
        return node.group_coordinator.fetch_offsets(group_id, requested)
    except KafkaError as exc:
        return exc.code, [(name, [(p, None) for p in parts]) for name, parts in requested or []]


def _fetched_partition(cls: type, partition: int, offset: Any, code: int) -> Any:
    return cls(
        partition_index=partition,
        committed_offset=NO_OFFSET if offset is None else offset.offset,
        committed_leader_epoch=-1 if offset is None else offset.leader_epoch,
        metadata="" if offset is None else offset.metadata,
        error_code=code,
    )


async def offset_fetch(node: Node, request: Any) -> OffsetFetchResponse:
    body, version = request.body, request.api_version
    if version >= 8:
        groups = []
        for group in body.groups:
            code, topics = _fetch(node, group.group_id, group.topics)
            groups.append(
                OffsetFetchResponse.OffsetFetchResponseGroup(
                    group_id=group.group_id,
                    error_code=code,
                    topics=[]
                    if code
                    else [
                        OffsetFetchResponse.OffsetFetchResponseTopics(
                            name=name,
                            partitions=[
                                _fetched_partition(
                                    OffsetFetchResponse.OffsetFetchResponsePartitions, p, o, 0
                                )
                                for p, o in parts
                            ],
                        )
                        for name, parts in topics
                    ],
                )
            )
        return OffsetFetchResponse(groups=groups)
    code, topics = _fetch(node, body.group_id, body.topics)
    # v2+ report a group error once at the top; v0-v1 only have per-partition codes.
    partition_code = code if version < 2 else ErrorCode.NONE
    if code and version >= 2:
        topics = []
    return OffsetFetchResponse(
        error_code=code if version >= 2 else ErrorCode.NONE,
        topics=[
            OffsetFetchResponse.OffsetFetchResponseTopic(
                name=name,
                partitions=[
                    _fetched_partition(
                        OffsetFetchResponse.OffsetFetchResponsePartition, p, o, partition_code
                    )
                    for p, o in parts
                ],
            )
            for name, parts in topics
        ],
    )


async def offset_delete(node: Node, request: Any) -> OffsetDeleteResponse:
    body = request.body
    known: list[tuple[str, list[int]]] = []
    unknown: list[Any] = []
    for topic in body.topics:
        indexes = [p.partition_index for p in topic.partitions]
        present = [i for i in indexes if _known(node, topic.name, i)]
        absent = [i for i in indexes if not _known(node, topic.name, i)]
        if present:
            known.append((topic.name, present))
        if absent:
            unknown.append(
                OffsetDeleteResponse.OffsetDeleteResponseTopic(
                    name=topic.name,
                    partitions=[
                        OffsetDeleteResponse.OffsetDeleteResponsePartition(
                            partition_index=i, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                        )
                        for i in absent
                    ],
                )
            )
    try:
        response = await node.group_coordinator.delete_offsets(body.group_id, known)
    except KafkaError as exc:
        return OffsetDeleteResponse(error_code=exc.code)
    if response.error_code == ErrorCode.NONE:
        response.topics.extend(unknown)
    return response


# -- groups as a whole ---------------------------------------------------------------------


async def describe_groups(node: Node, request: Any) -> DescribeGroupsResponse:
    described = []
    for group_id in request.body.groups:
        try:
            described.append(node.group_coordinator.describe_group(group_id))
        except KafkaError as exc:
            described.append(
                DescribeGroupsResponse.DescribedGroup(
                    error_code=exc.code, group_id=group_id, group_state="", protocol_type=""
                )
            )
    return DescribeGroupsResponse(groups=described)


async def list_groups(node: Node, request: Any) -> ListGroupsResponse:
    body, version = request.body, request.api_version
    states = (
        {s.lower() for s in body.states_filter} if version >= 4 and body.states_filter else None
    )
    types = {t.lower() for t in body.types_filter} if version >= 5 and body.types_filter else None
    code, groups = node.group_coordinator.list_groups(states, types)
    return ListGroupsResponse(error_code=code, groups=groups)


async def delete_groups(node: Node, request: Any) -> DeleteGroupsResponse:
    results = await node.group_coordinator.delete_groups(request.body.groups_names)
    return DeleteGroupsResponse(results=results)
