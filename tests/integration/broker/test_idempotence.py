"""Idempotent producers against real klog processes.

Real clients with idempotence on (kafka-python 3's default producer, confluent-kafka
with ``enable.idempotence=true`` and acks=all, aiokafka) round-trip records, and their batches are
stored with the producer id klog handed out. Over the raw wire (``klog.wire``):
InitProducerId's answers; a batch sent twice is stored once and both answers carry the
same base offset; a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is
INVALID_PRODUCER_EPOCH; a transactional batch is INVALID_TXN_STATE; DescribeProducers
shows the producer; and retries are still recognised after a clean restart and after
SIGKILL (for batches that were acknowledged), with producer ids never handed out twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiokafka
import confluent_kafka
import kafka
import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from klog.wire import (
    ApiVersionsRequest,
    DescribeProducersRequest,
    ErrorCode,
    InitProducerIdRequest,
    build_batch,
)
from tests.integration.broker.conftest import (
    TIMEOUT,
    ConfluentDriver,
    segment_batches,
    unique_topic,
)
from tests.integration.conftest import KlogNode
from tests.integration.wire_client import WireConnection

INIT_PRODUCER_ID_VERSION = 4


@pytest.fixture
def node(klog_node_factory) -> KlogNode:
    return klog_node_factory().start()


@pytest.fixture
def topic(node: KlogNode) -> str:
    name = unique_topic("idem")
    ConfluentDriver(node.bootstrap).create_topic(name, 1)
    return name


@pytest.fixture
def wire(node: KlogNode) -> Iterator[WireConnection]:
    conn = WireConnection(node.bootstrap)
    yield conn
    conn.close()


def init_producer_id(
    conn: WireConnection,
    transactional_id: str | None = None,
    version: int = INIT_PRODUCER_ID_VERSION,
    producer_id: int = -1,
    producer_epoch: int = -1,
):
    request = InitProducerIdRequest(
        transactional_id=transactional_id,
        transaction_timeout_ms=60_000,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
    )
    return conn.request(request, version)


def batch(pid: int, epoch: int, seq: int, count: int = 2, transactional: bool = False) -> bytes:
    # Current timestamps: producer.id.expiration.ms counts from a producer's last batch
    # timestamp (as in Kafka), so day-old ones would expire the producer at once.
    now_ms = time.time_ns() // 1_000_000
    return build_batch(
        [(b"k", b"seq-%d-%d" % (seq, i), [], now_ms) for i in range(count)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        is_transactional=transactional,
    )


def stored(node: KlogNode, topic: str) -> list[tuple[int, int, int, int]]:
    """(base offset, producer id, epoch, base sequence) of every stored batch."""
    return [
        (h.base_offset, h.producer_id, h.producer_epoch, h.base_sequence)
        for h, _ in segment_batches(node, topic, 0)
    ]


# -- real clients ------------------------------------------------------------------------


def test_kafka_python_default_producer_is_idempotent(node: KlogNode, topic: str) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=node.bootstrap, linger_ms=5)
    try:
        futures = [producer.send(topic, b"v%d" % i, key=b"k") for i in range(30)]
        producer.flush(TIMEOUT)
        offsets = [f.get(TIMEOUT).offset for f in futures]
    finally:
        producer.close(TIMEOUT)
    assert offsets == list(range(30))
    batches = stored(node, topic)
    assert {pid for _, pid, _, _ in batches} == {0}
    # Sequences continue batch after batch from 0, as the producer numbered its records.
    assert [seq for _, _, _, seq in batches] == [base for base, _, _, _ in batches]
    consumed = ConfluentDriver(node.bootstrap).consume_earliest(topic, 1, 30)
    assert [c.rec.value for c in consumed] == [b"v%d" % i for i in range(30)]


def test_confluent_idempotent_producer_with_acks_all(node: KlogNode, topic: str) -> None:
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": node.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    reports: list = []
    for i in range(200):
        producer.produce(
            topic, b"c%03d" % i, on_delivery=lambda err, msg: reports.append((err, msg.offset()))
        )
        producer.poll(0)
    assert producer.flush(TIMEOUT) == 0
    assert [err for err, _ in reports if err is not None] == []
    assert sorted(offset for _, offset in reports) == list(range(200))
    batches = stored(node, topic)
    assert len({pid for _, pid, _, _ in batches}) == 1
    assert batches[0][1] >= 0 and batches[0][3] == 0
    consumed = ConfluentDriver(node.bootstrap).consume_earliest(topic, 1, 200)
    assert [c.rec.value for c in consumed] == [b"c%03d" % i for i in range(200)]


def test_aiokafka_idempotent_producer(node: KlogNode, topic: str) -> None:
    async def run() -> list[int]:
        producer = aiokafka.AIOKafkaProducer(
            bootstrap_servers=node.bootstrap, enable_idempotence=True, linger_ms=5
        )
        await producer.start()
        try:
            futures = [await producer.send(topic, b"a%d" % i) for i in range(40)]
            return [(await future).offset for future in futures]
        finally:
            await producer.stop()

    assert asyncio.run(run()) == list(range(40))
    batches = stored(node, topic)
    assert len({pid for _, pid, _, _ in batches}) == 1 and batches[0][1] >= 0
    assert [seq for _, _, _, seq in batches] == [base for base, _, _, _ in batches]


# -- InitProducerId ----------------------------------------------------------------------


def test_api_versions_advertise_init_producer_id_and_describe_producers(
    wire: WireConnection,
) -> None:
    versions = {
        v.api_key: (v.min_version, v.max_version)
        for v in wire.request(ApiVersionsRequest(), 3).api_keys
    }
    assert versions[22] == (0, 4)
    assert versions[61] == (0, 0)


@pytest.mark.parametrize("version", range(5))
def test_init_producer_id_gives_fresh_ids_with_epoch_zero(
    wire: WireConnection, version: int
) -> None:
    first = init_producer_id(wire, version=version)
    second = init_producer_id(wire, version=version)
    assert (first.error_code, first.producer_epoch) == (0, 0)
    assert (second.error_code, second.producer_epoch) == (0, 0)
    assert second.producer_id == first.producer_id + 1


def test_a_recovering_producer_gets_a_new_id(wire: WireConnection) -> None:
    """v3+ carries the producer's id and epoch; without a transactional id Kafka ignores
    them and hands out a fresh id at epoch 0 (TransactionCoordinator.handleInitProducerId)."""
    first = init_producer_id(wire)
    again = init_producer_id(wire, producer_id=first.producer_id, producer_epoch=3)
    assert (again.error_code, again.producer_epoch) == (0, 0)
    assert again.producer_id > first.producer_id
    half = init_producer_id(wire, producer_id=first.producer_id, producer_epoch=-1)
    assert (half.error_code, half.producer_id) == (ErrorCode.INVALID_REQUEST, -1)


@pytest.mark.parametrize(
    ("transactional_id", "code"),
    [("txn-1", ErrorCode.COORDINATOR_NOT_AVAILABLE), ("", ErrorCode.INVALID_REQUEST)],
)
def test_transactional_ids_are_refused(
    wire: WireConnection, transactional_id: str, code: int
) -> None:
    response = init_producer_id(wire, transactional_id)
    assert (response.error_code, response.producer_id, response.producer_epoch) == (code, -1, -1)


# -- produce over the wire ---------------------------------------------------------------


def test_a_retried_batch_is_stored_once_with_its_original_offset(
    node: KlogNode, topic: str, wire: WireConnection
) -> None:
    pid = init_producer_id(wire).producer_id
    assert wire.produce(topic, build_batch([(None, b"plain", [], 1)]), acks=-1).base_offset == 0
    first = wire.produce(topic, batch(pid, 0, 0), acks=-1)
    retry = wire.produce(topic, batch(pid, 0, 0), acks=-1)
    assert (first.error_code, first.base_offset) == (0, 1)
    assert (retry.error_code, retry.base_offset) == (0, 1)
    nxt = wire.produce(topic, batch(pid, 0, 2), acks=-1)
    assert (nxt.error_code, nxt.base_offset) == (0, 3)
    assert stored(node, topic) == [(0, -1, -1, -1), (1, pid, 0, 0), (3, pid, 0, 2)]


def test_gaps_old_epochs_and_transactions_are_refused(
    node: KlogNode, topic: str, wire: WireConnection
) -> None:
    pid = init_producer_id(wire).producer_id
    assert wire.produce(topic, batch(pid, 1, 0), acks=-1).error_code == 0
    gap = wire.produce(topic, batch(pid, 1, 5), acks=-1)
    assert (gap.error_code, gap.base_offset) == (ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
    old = wire.produce(topic, batch(pid, 0, 2), acks=-1)
    assert old.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    new_epoch_mid_sequence = wire.produce(topic, batch(pid, 2, 2), acks=-1)
    assert new_epoch_mid_sequence.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    txn = wire.produce(topic, batch(pid, 1, 2, transactional=True), acks=-1)
    assert txn.error_code == ErrorCode.INVALID_TXN_STATE
    assert wire.produce(topic, batch(pid, 2, 0), acks=-1).base_offset == 2
    assert stored(node, topic) == [(0, pid, 1, 0), (2, pid, 2, 0)]


def test_describe_producers_lists_the_partitions_producers(
    topic: str, wire: WireConnection
) -> None:
    pid = init_producer_id(wire).producer_id
    before_ms = time.time_ns() // 1_000_000
    wire.produce(topic, batch(pid, 0, 0, count=3), acks=-1)
    request = DescribeProducersRequest(
        topics=[DescribeProducersRequest.TopicRequest(name=topic, partition_indexes=[0, 5])]
    )
    (result,) = wire.request(request, 0).topics
    known, unknown = result.partitions
    assert known.error_code == 0
    (state,) = known.active_producers
    assert (state.producer_id, state.producer_epoch, state.last_sequence) == (pid, 0, 2)
    assert before_ms <= state.last_timestamp <= time.time_ns() // 1_000_000
    assert unknown.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


# -- restarts ----------------------------------------------------------------------------


@pytest.mark.parametrize("segment_bytes", [1 << 30, 300], ids=["one-segment", "rolling"])
@pytest.mark.parametrize("stop", ["clean", "sigkill"])
def test_retries_are_recognised_after_a_restart(
    klog_node_factory, stop: str, segment_bytes: int
) -> None:
    """With small segments the state comes back from the snapshot of the last roll plus
    the active segment; with one segment from scanning it (or the clean shutdown's)."""
    node = klog_node_factory({"log.segment.bytes": str(segment_bytes)}).start()
    topic = unique_topic("idem")
    ConfluentDriver(node.bootstrap).create_topic(topic, 1)
    conn = WireConnection(node.bootstrap)
    pid = init_producer_id(conn).producer_id
    for seq in range(0, 12, 2):
        assert conn.produce(topic, batch(pid, 0, seq), acks=-1).error_code == 0  # acknowledged
    conn.close()
    if stop == "clean":
        assert node.stop() == 0
    else:
        node.kill()
    node.restart()
    conn = WireConnection(node.bootstrap)
    try:
        # The last five batches are recognised; the next sequence is appended.
        for seq in range(2, 12, 2):
            retry = conn.produce(topic, batch(pid, 0, seq), acks=-1)
            assert (retry.error_code, retry.base_offset) == (0, seq)
        assert conn.produce(topic, batch(pid, 0, 12), acks=-1).base_offset == 12
        assert [base for base, *_ in stored(node, topic)] == list(range(0, 14, 2))
        snapshots = list((node.data_dir / f"{topic}-0").glob("*.snapshot"))
        assert len(snapshots) > 1 if segment_bytes < 1000 else len(snapshots) <= 1
        # Ids are never handed out twice: a new node uses a new block.
        assert init_producer_id(conn).producer_id > pid
    finally:
        conn.close()


# -- expiry ------------------------------------------------------------------------------


def describe_producers(conn: WireConnection, topic: str) -> list[int]:
    request = DescribeProducersRequest(
        topics=[DescribeProducersRequest.TopicRequest(name=topic, partition_indexes=[0])]
    )
    (result,) = conn.request(request, 0).topics
    (partition,) = result.partitions
    assert partition.error_code == 0
    return [state.producer_id for state in partition.active_producers]


def test_idle_producers_expire_after_a_dynamic_producer_id_expiration_ms(
    klog_node_factory, wait_for
) -> None:
    node = klog_node_factory({"producer.id.expiration.check.interval.ms": "100"}).start()
    topic = unique_topic("idem")
    ConfluentDriver(node.bootstrap).create_topic(topic, 1)
    conn = WireConnection(node.bootstrap)
    try:
        pid = init_producer_id(conn).producer_id
        conn.produce(topic, batch(pid, 0, 0), acks=-1)
        assert describe_producers(conn, topic) == [pid]
        admin = AdminClient({"bootstrap.servers": node.bootstrap})
        resource = ConfigResource(
            ResourceType.BROKER,
            "1",
            incremental_configs=[
                ConfigEntry(
                    "producer.id.expiration.ms",
                    "1000",
                    incremental_operation=AlterConfigOpType.SET,
                )
            ],
        )
        admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)
        wait_for(lambda: describe_producers(conn, topic) == [], what="the producer to expire")
        # Forgotten: any sequence is accepted again, as from a new producer.
        assert conn.produce(topic, batch(pid, 0, 7), acks=-1).error_code == 0
    finally:
        conn.close()
