"""Data-plane APIs: Produce, Fetch, ListOffsets, OffsetForLeaderEpoch.

Produce hands each partition's records (a memoryview into the request frame) to its
``Partition`` untouched: validation is a native framing/CRC scan, offsets are patched in
place, and no record becomes a Python object — except on compacted topics, where
Kafka refuses keyless records and the keys must be read. Idempotent producers' batches
are checked from their headers (``klog.segment.producer_state``); a retried batch gets
its original base offset with NONE, as in Kafka. Fetch answers with
``FileSlice`` objects that the connection sends with ``sendfile``.

Stateless; shared by all connections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from klog.segment import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, TopicPartition
from klog.segment.producer_state import AppendOrigin
from klog.server.handlers.cluster import is_internal
from klog.server.router import Api, error_code_for, error_message_for
from klog.wire import (
    FetchResponse,
    ListOffsetsResponse,
    OffsetForLeaderEpochResponse,
    ProduceResponse,
)
from klog.wire.errors import ErrorCode, KafkaError
from klog.wire.records import decode_record_tuples, iter_batches

if TYPE_CHECKING:
    from klog.server.node import Node

READ_COMMITTED = 1


def apis(node: Node) -> list[Api]:
    return [
        Api(0, 0, 11, lambda request, client: produce(node, request)),
        Api(1, 4, 16, lambda request, client: fetch(node, request)),
        Api(2, 1, 7, lambda request, client: list_offsets(node, request)),
        Api(23, 2, 4, lambda request, client: offset_for_leader_epoch(node, request)),
    ]


# -- Produce -----------------------------------------------------------------------------


async def produce(node: Node, request: Any) -> ProduceResponse | None:
    body = request.body
    if request.api_version < 3:
        # Produce v0-v2 carry message formats v0/v1, which klog does not store.
        code = ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT
        return None if body.acks == 0 else _produce_error_response(body, code)
    topics = []
    for topic in body.topic_data:
        results = []
        for data in topic.partition_data:
            result = ProduceResponse.PartitionProduceResponse(index=data.index)
            try:
                info = await _append(node, topic.name, data, body.acks, body.timeout_ms)
            except Exception as exc:
                result.error_code = error_code_for(exc)
                result.base_offset = -1
                result.error_message = error_message_for(exc)
            else:
                result.base_offset = info.base_offset
                result.log_append_time_ms = info.log_append_time
                result.log_start_offset = info.log_start_offset
            results.append(result)
        topics.append(
            ProduceResponse.TopicProduceResponse(name=topic.name, partition_responses=results)
        )
    if body.acks == 0:
        return None
    return ProduceResponse(responses=topics)


async def _append(node: Node, topic: str, data: Any, acks: int, timeout_ms: int) -> Any:
    if acks not in (0, 1, -1):
        raise KafkaError(ErrorCode.INVALID_REQUIRED_ACKS, f"acks={acks}")
    if is_internal(topic):
        raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"{topic} is an internal topic")
    partition = node.replica_manager.leader_partition(topic, data.index)
    records = data.records
    if records is None or len(records) == 0:
        raise KafkaError(ErrorCode.INVALID_RECORD, "produce request without records")
    if "compact" in partition.log.config.cleanup_policy:
        _require_keys(records)
    return await partition.append_records_as_leader(
        records, required_acks=acks, timeout_ms=timeout_ms, origin=AppendOrigin.CLIENT
    )


def _require_keys(records: Any) -> None:
    """Compacted topics keep the last value per key, so a keyless record is refused."""
    for header, batch in iter_batches(records):
        if header.is_control:
            continue
        if any(key is None for _, _, key, _, _ in decode_record_tuples(batch)):
            raise KafkaError(
                ErrorCode.INVALID_RECORD, "compacted topic cannot accept a record without a key"
            )


def _produce_error_response(body: Any, code: int) -> ProduceResponse:
    return ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name=topic.name,
                partition_responses=[
                    ProduceResponse.PartitionProduceResponse(
                        index=data.index, error_code=code, base_offset=-1
                    )
                    for data in topic.partition_data
                ],
            )
            for topic in body.topic_data
        ]
    )


# -- Fetch -------------------------------------------------------------------------------


async def fetch(node: Node, request: Any) -> FetchResponse:
    body = request.body
    version = request.api_version
    replica_id = body.replica_state.replica_id if version >= 15 else body.replica_id
    if replica_id >= 0:
        # Follower fetching arrives with replication; until then no node follows.
        return FetchResponse(error_code=ErrorCode.NOT_LEADER_OR_FOLLOWER, session_id=0)
    wanted = _resolve_fetch_topics(node, body.topics, version)
    deadline = trio.current_time() + max(0, body.max_wait_ms) / 1000
    while True:
        responses, total_bytes, any_error = _read_partitions(node, wanted, body, version)
        remaining = deadline - trio.current_time()
        if total_bytes >= body.min_bytes or any_error or remaining <= 0 or not wanted:
            return FetchResponse(error_code=0, session_id=0, responses=responses)
        tps = [TopicPartition(name, p.partition) for name, _, parts in wanted for p in parts]
        if not await node.replica_manager.wait_for_data(tps, remaining):
            responses, _, _ = _read_partitions(node, wanted, body, version)
            return FetchResponse(error_code=0, session_id=0, responses=responses)


def _resolve_fetch_topics(node: Node, topics: list[Any], version: int) -> list[tuple]:
    """(topic name or None, the request topic, its partitions) in request order."""
    resolved = []
    for topic in topics:
        if version >= 13:
            image = node.image.topics_by_id.get(topic.topic_id)
            name = image.name if image else None
        else:
            name = topic.topic
        resolved.append((name, topic, topic.partitions))
    return resolved


def _read_partitions(
    node: Node, wanted: list[tuple], body: Any, version: int
) -> tuple[list[Any], int, bool]:
    responses = []
    budget = body.max_bytes if version >= 3 else 0x7FFFFFFF
    total = 0
    any_error = False
    for name, request_topic, partitions in wanted:
        out = FetchResponse.FetchableTopicResponse(
            topic=request_topic.topic if version < 13 else "",
            topic_id=request_topic.topic_id if version >= 13 else None,
        )
        for requested in partitions:
            data = FetchResponse.PartitionData(
                partition_index=requested.partition, high_watermark=-1, records=b""
            )
            try:
                if name is None:
                    raise KafkaError(ErrorCode.UNKNOWN_TOPIC_ID, str(request_topic.topic_id))
                partition = node.replica_manager.leader_partition(
                    name, requested.partition, requested.current_leader_epoch
                )
                limit = max(0, min(requested.partition_max_bytes, budget - total))
                result = partition.read(requested.fetch_offset, limit, min_one_message=total == 0)
            except Exception as exc:
                data.error_code = error_code_for(exc)
                any_error = True
                partition = node.replica_manager.get_partition(name or "", requested.partition)
                if partition is not None:
                    data.high_watermark = partition.high_watermark
                    data.log_start_offset = partition.log.log_start_offset
            else:
                data.high_watermark = result.high_watermark
                data.last_stable_offset = result.last_stable_offset
                data.log_start_offset = result.log_start_offset
                data.aborted_transactions = [] if body.isolation_level == READ_COMMITTED else None
                if result.records.size:
                    data.records = result.records
                    total += result.records.size
            out.partitions.append(data)
        responses.append(out)
    return responses, total, any_error


# -- ListOffsets -------------------------------------------------------------------------


async def list_offsets(node: Node, request: Any) -> ListOffsetsResponse:
    body = request.body
    topics = []
    for topic in body.topics:
        results = []
        for requested in topic.partitions:
            result = ListOffsetsResponse.ListOffsetsPartitionResponse(
                partition_index=requested.partition_index
            )
            try:
                partition = node.replica_manager.leader_partition(
                    topic.name, requested.partition_index, requested.current_leader_epoch
                )
                found = _offset_for_timestamp(partition, requested.timestamp)
            except Exception as exc:
                result.error_code = error_code_for(exc)
            else:
                if found is not None:
                    result.timestamp = found.timestamp
                    result.offset = found.offset
                    result.leader_epoch = -1 if found.leader_epoch is None else found.leader_epoch
            results.append(result)
        topics.append(
            ListOffsetsResponse.ListOffsetsTopicResponse(name=topic.name, partitions=results)
        )
    return ListOffsetsResponse(topics=topics)


def _offset_for_timestamp(partition: Any, timestamp: int) -> Any:
    """Consumers see offsets up to the high watermark, never uncommitted ones."""
    log = partition.log
    if timestamp == LATEST_TIMESTAMP:
        found = log.offset_for_timestamp(LATEST_TIMESTAMP)
        return type(found)(found.timestamp, partition.high_watermark, found.leader_epoch)
    try:
        found = log.offset_for_timestamp(timestamp)
    except ValueError as exc:
        raise KafkaError(ErrorCode.INVALID_REQUEST, str(exc)) from exc
    if timestamp == EARLIEST_TIMESTAMP:
        # The log start offset is the answer even when it equals the high watermark (an
        # empty partition): Kafka filters only searches by timestamp, never EARLIEST.
        return found
    if found is not None and found.offset >= partition.high_watermark:
        return None
    return found


# -- OffsetForLeaderEpoch ----------------------------------------------------------------


async def offset_for_leader_epoch(node: Node, request: Any) -> OffsetForLeaderEpochResponse:
    body = request.body
    topics = []
    for topic in body.topics:
        results = []
        for requested in topic.partitions:
            result = OffsetForLeaderEpochResponse.EpochEndOffset(partition=requested.partition)
            try:
                partition = node.replica_manager.leader_partition(
                    topic.topic, requested.partition, requested.current_leader_epoch
                )
                epoch, end_offset = partition.log.leader_epoch_cache.end_offset_for(
                    requested.leader_epoch, partition.log.log_end_offset
                )
            except Exception as exc:
                result.error_code = error_code_for(exc)
            else:
                result.leader_epoch = epoch
                result.end_offset = end_offset
            results.append(result)
        topics.append(
            OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult(
                topic=topic.topic, partitions=results
            )
        )
    return OffsetForLeaderEpochResponse(topics=topics)
