"""Producer APIs: InitProducerId (idempotent producers) and DescribeProducers.

InitProducerId follows Kafka's TransactionCoordinator.handleInitProducerId for the
non-transactional case: a null transactional id always gets a fresh producer id with
epoch 0 (Kafka "blindly accepts" it; the v3+ producer id and epoch a producer sends to
recover from an error are only checked for consistency: one of them -1 without the
other is INVALID_REQUEST, as KafkaApis checks). Ids come in blocks through the metadata
log (``klog.controller.producer_ids``), so none is reused after a restart. klog has no
transaction coordinator: a non-empty transactional id gets COORDINATOR_NOT_AVAILABLE,
the answer FindCoordinator gives for transactions here too (retriable: clients keep
looking for a coordinator until their own timeout, as with a Kafka cluster whose
transaction coordinator is down); an empty one gets INVALID_REQUEST, as in Kafka.

DescribeProducers lists a partition's active idempotent producers from its leader's
producer state (``klog.segment.producer_state``), as Kafka's
``kafka-transactions.sh describe-producers`` shows them.

The handlers keep no state of their own; the producer id manager they share is created
once per node by ``apis``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klog.controller import ProducerIdManager, ProducerIdsBlock
from klog.server.router import Api, error_code_for, error_message_for
from klog.wire import DescribeProducersResponse, InitProducerIdResponse
from klog.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from klog.server.node import Node

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1


def apis(node: Node) -> list[Api]:
    producer_ids = ProducerIdManager(lambda: _allocate_block(node))
    return [
        Api(22, 0, 4, lambda request, client: init_producer_id(producer_ids, request)),
        Api(61, 0, 0, lambda request, client: describe_producers(node, request)),
    ]


async def _allocate_block(node: Node) -> ProducerIdsBlock:
    broker = node.image.brokers.get(node.node_id)
    if broker is None or node.controller is None:
        # Not registered yet: the client retries, as with Kafka's block not yet fetched.
        raise KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "broker not registered yet")
    return await node.controller.allocate_producer_ids(node.node_id, broker.broker_epoch)


# -- InitProducerId ----------------------------------------------------------------------


async def init_producer_id(producer_ids: ProducerIdManager, request: Any) -> InitProducerIdResponse:
    body = request.body
    # Before v3 the fields are absent and decode as their -1 defaults.
    if (body.producer_id == NO_PRODUCER_ID) != (body.producer_epoch == NO_PRODUCER_EPOCH):
        return _init_error(ErrorCode.INVALID_REQUEST)
    if body.transactional_id is None:
        producer_id = await producer_ids.generate_producer_id()
        return InitProducerIdResponse(error_code=0, producer_id=producer_id, producer_epoch=0)
    if body.transactional_id == "":
        return _init_error(ErrorCode.INVALID_REQUEST)
    return _init_error(ErrorCode.COORDINATOR_NOT_AVAILABLE)


def _init_error(code: ErrorCode) -> InitProducerIdResponse:
    return InitProducerIdResponse(
        error_code=code, producer_id=NO_PRODUCER_ID, producer_epoch=NO_PRODUCER_EPOCH
    )


# -- DescribeProducers -------------------------------------------------------------------


async def describe_producers(node: Node, request: Any) -> DescribeProducersResponse:
    topics = []
    for topic in request.body.topics:
        results = []
        for index in topic.partition_indexes:
            result = DescribeProducersResponse.PartitionResponse(partition_index=index)
            try:
                partition = node.replica_manager.leader_partition(topic.name, index)
            except Exception as exc:
                result.error_code = error_code_for(exc)
                result.error_message = error_message_for(exc)
            else:
                producers = partition.log.producer_state.producers
                result.active_producers = [
                    DescribeProducersResponse.ProducerState(
                        producer_id=producer_id,
                        producer_epoch=entry.epoch,
                        last_sequence=entry.last_seq,
                        last_timestamp=entry.last_timestamp,
                        coordinator_epoch=-1,
                        current_txn_start_offset=-1,
                    )
                    for producer_id, entry in sorted(producers.items())
                ]
            results.append(result)
        topics.append(DescribeProducersResponse.TopicResponse(name=topic.name, partitions=results))
    return DescribeProducersResponse(topics=topics)
