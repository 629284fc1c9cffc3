"""The bundled producer is idempotent by default: a retry after a lost answer is written
once, and the broker knows the producer (DescribeProducers).

The lost answer comes from ``LossyProxy``: the broker advertises the proxy's address, so
the client reaches the broker only through it, and the proxy drops the answer to the
first Produce request and closes the connection. The same run without idempotence
writes the record twice, which is what makes the idempotent run's single copy mean
something.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from klog.client import Admin, Consumer, Producer
from klog.client.errors import ClientClosedError, MessageTooLargeError
from klog.wire import DescribeProducersRequest
from tests.integration.client.lossy_proxy import LossyProxy
from tests.integration.wire_client import WireConnection

PRODUCE = 0


@pytest.fixture
def proxied_broker(klog_node_factory) -> Iterator[Callable[..., tuple[str, LossyProxy]]]:
    """Starts a broker reachable only through a ``LossyProxy(PRODUCE, drop=1, after=...)``;
    returns the bootstrap address and the proxy."""
    proxies: list[LossyProxy] = []

    def start(after: int = 0) -> tuple[str, LossyProxy]:
        proxy = LossyProxy(api_key=PRODUCE, drop=1, after=after)
        proxies.append(proxy)
        node = klog_node_factory(
            {"advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}"}
        ).start()
        proxy.upstream = (node.host, node.port)
        return f"127.0.0.1:{proxy.port}", proxy

    yield start
    for proxy in proxies:
        proxy.close()


def new_topic(bootstrap: str) -> str:
    name = f"idem-{uuid.uuid4().hex[:10]}"
    with Admin(bootstrap, default_api_timeout_ms=20000) as admin:
        admin.create_topic(name, 1, 1)
    return name


def stored_values(bootstrap: str, topic: str, consume_all: Callable[..., list]) -> list[bytes]:
    """Every value in partition 0, read up to its log end offset."""
    with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        end = consumer.end_offsets([(topic, 0)])[(topic, 0)]
        consumer.assign([(topic, 0)])
        return [record.value for record in consume_all(consumer, end)]


def producer_ids(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    """(producer id, last sequence) of the partition's active producers."""
    conn = WireConnection(bootstrap)
    try:
        request = DescribeProducersRequest(
            topics=[DescribeProducersRequest.TopicRequest(name=topic, partition_indexes=[0])]
        )
        (partition,) = conn.request(request, 0).topics[0].partitions
    finally:
        conn.close()
    assert partition.error_code == 0
    return [(p.producer_id, p.last_sequence) for p in partition.active_producers]


@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "not-idempotent"])
def test_a_lost_produce_answer_is_written_once_only_by_the_idempotent_producer(
    proxied_broker, consume_all, idempotent: bool
) -> None:
    proxied, proxy = proxied_broker()
    topic = new_topic(proxied)
    with Producer(proxied, enable_idempotence=idempotent, linger_ms=0) as producer:
        first = producer.send(topic, b"v0", partition=0)
        producer.flush(30)
        rest = [producer.send(topic, b"v%d" % i, partition=0) for i in range(1, 5)]
        producer.flush(30)
        offsets = [future.result(0).offset for future in [first, *rest]]
    assert proxy.dropped == 1  # the first answer was lost and the batch sent again
    values = stored_values(proxied, topic, consume_all)
    if idempotent:
        assert values == [b"v0", b"v1", b"v2", b"v3", b"v4"]
        assert offsets == [0, 1, 2, 3, 4]  # the retry got the original offset
    else:
        assert values == [b"v0", b"v0", b"v1", b"v2", b"v3", b"v4"]
        assert offsets == [1, 2, 3, 4, 5]


def test_resends_after_a_lost_answer_keep_order_with_requests_in_flight(
    proxied_broker, consume_all
) -> None:
    """Many small batches in flight when the connection drops: every unanswered one is
    resent, in sequence order, and the partition holds each record once, in send order."""
    bootstrap, proxy = proxied_broker(after=5)
    topic = new_topic(bootstrap)
    sent = [b"r%04d" % i for i in range(400)]
    with Producer(bootstrap, linger_ms=0, batch_size=200) as producer:
        for value in sent:
            producer.send(topic, value, partition=0)
        producer.flush(60)
    assert proxy.dropped == 1
    assert stored_values(bootstrap, topic, consume_all) == sent


def test_a_broker_killed_mid_stream_leaves_every_record_once_and_in_order(
    klog_node_factory, consume_all
) -> None:
    """SIGKILL the broker with half the stream queued or in flight, restart it behind
    the same address: the producer resends what went unanswered under the sequences it
    had, the restarted broker takes them (its producer state comes back from the log),
    and the partition holds the stream exactly once, in order. (Whether a kill lands
    between a write and its answer is up to timing; the proxy test above forces that.)"""
    proxy = LossyProxy(api_key=PRODUCE, drop=0)
    node = klog_node_factory(
        {"advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}"}
    ).start()
    proxy.upstream = (node.host, node.port)
    bootstrap = f"127.0.0.1:{proxy.port}"
    try:
        topic = new_topic(bootstrap)
        sent = [b"s%05d" % i for i in range(3000)]
        with Producer(bootstrap, linger_ms=0, batch_size=300) as producer:
            for value in sent[:1500]:
                producer.send(topic, value, partition=0)
            node.kill()
            for value in sent[1500:]:
                producer.send(topic, value, partition=0)
            node.restart()
            proxy.upstream = (node.host, node.port)
            producer.flush(120)
        assert stored_values(bootstrap, topic, consume_all) == sent
    finally:
        proxy.close()


def test_a_batch_refused_for_good_does_not_block_the_partition(
    bootstrap: str, new_topic: Callable[..., str]
) -> None:
    """The refused batch used up sequence numbers the broker never saw; the producer
    takes a new id so the next batch is not refused for the gap."""
    topic = new_topic(configs={"max.message.bytes": "300"})
    with Producer(bootstrap, linger_ms=0) as producer:
        producer.send(topic, b"a", partition=0)
        producer.flush(30)
        too_big = producer.send(topic, b"x" * 1000, partition=0)
        producer.flush(30)
        assert isinstance(too_big.exception(0), MessageTooLargeError)
        after = producer.send(topic, b"b", partition=0)
        producer.flush(30)
        assert after.result(0).offset == 1
    ids = producer_ids(bootstrap, topic)
    assert len(ids) == 2 and ids[0][0] != ids[1][0]  # a second producer id wrote "b"


def test_the_default_producer_numbers_its_batches_for_the_broker(
    bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    with Producer(bootstrap, linger_ms=0) as producer:
        for i in range(3):
            producer.send(topic, b"x%d" % i, partition=0)
            producer.flush(30)
    ((producer_id, last_sequence),) = producer_ids(bootstrap, topic)
    assert producer_id >= 0 and last_sequence == 2


def test_acks_1_leaves_the_default_producer_without_an_id(
    bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    with Producer(bootstrap, acks=1, linger_ms=0) as producer:
        producer.send(topic, b"x", partition=0).result(30)
    assert producer_ids(bootstrap, topic) == []


def test_a_failed_sender_fails_pending_records_instead_of_hanging_flush(
    bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    with Producer(bootstrap, linger_ms=60000) as producer:
        producer.send(topic, b"x", partition=0)
        producer.flush(30)  # metadata and the producer id are known now

        def broken(*args: object) -> None:
            raise RuntimeError("sender broke")

        producer._accumulator.ready = broken  # type: ignore[method-assign]
        future = producer.send(topic, b"y", partition=0)
        with pytest.raises(RuntimeError, match="sender broke"):
            producer.flush()  # no timeout: this waited forever when the sender died
        with pytest.raises(ClientClosedError, match="sender stopped"):
            future.result(0)
    # Leaving the block closed the producer without waiting on anything.
