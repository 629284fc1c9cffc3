"""Topic lifecycle as each real client sees it: auto-creation, size limits, deletion.

- A topic that does not exist is created by the first produce (Metadata auto-creation)
  with the broker's ``num.partitions``.
- With ``max.message.bytes`` set on a topic, a batch of exactly that size is accepted and
  one byte more is refused: the client surfaces MESSAGE_TOO_LARGE (code 10).
- A deleted topic leaves the metadata and its partition directories leave the data dir;
  the name can be reused and the new topic starts empty.
"""

from __future__ import annotations

import time

import pytest

from klog.wire.records import build_batch
from tests.integration.broker.conftest import (
    ADMIN_DRIVERS,
    MESSAGE_TOO_LARGE,
    Driver,
    ProduceFailed,
    Rec,
)

NUM_PARTITIONS = 3
NODE_OVERRIDES = {"num.partitions": str(NUM_PARTITIONS)}
MAX_MESSAGE_BYTES = 10_000


def test_auto_creation_on_first_produce(driver: Driver, topic_name: str, wait_for) -> None:
    assert topic_name not in driver.list_topics()
    sent = [Rec(b"key", b"first value", (("h", b"v"),))]
    driver.produce(topic_name, sent)
    wait_for(
        lambda: driver.list_topics().get(topic_name) == NUM_PARTITIONS,
        what=f"{topic_name} with {NUM_PARTITIONS} partitions",
    )
    [got] = driver.consume_earliest(topic_name, NUM_PARTITIONS, 1)
    assert (got.rec.key, got.rec.value, got.rec.headers) == (b"key", b"first value", (("h", b"v"),))
    assert got.offset == 0


def value_for_batch_size(size: int) -> bytes:
    """A value whose single-record batch (no key, no headers, uncompressed) is ``size``
    bytes, as every client encodes it (one-byte timestamp and offset deltas)."""
    length = size - len(build_batch([(None, b"", (), 0)]))
    while len(build_batch([(None, b"v" * length, (), 0)])) > size:
        length -= 1  # the value's length varint grew by a byte
    value = b"v" * length
    assert len(build_batch([(None, value, (), 0)])) == size
    return value


def test_message_just_over_max_message_bytes_is_refused(driver: Driver, topic_name: str) -> None:
    driver.create_topic(topic_name, 1, {"max.message.bytes": str(MAX_MESSAGE_BYTES)})
    at_limit = Rec(None, value_for_batch_size(MAX_MESSAGE_BYTES), (), _ts(driver))
    over = Rec(None, value_for_batch_size(MAX_MESSAGE_BYTES + 1), (), _ts(driver))

    driver.produce(topic_name, [at_limit], "none")
    with pytest.raises(ProduceFailed) as failure:
        driver.produce(topic_name, [over], "none")
    assert failure.value.code == MESSAGE_TOO_LARGE, failure.value.text

    assert driver.end_offsets(topic_name, 1) == {0: (0, 1)}
    [got] = driver.consume_earliest(topic_name, 1, 1)
    assert got.rec.value == at_limit.value


def _ts(driver: Driver) -> int | None:
    return int(time.time() * 1000) if driver.explicit_timestamps else None


@pytest.mark.parametrize("driver", ADMIN_DRIVERS, indirect=True)
def test_delete_topic(driver: Driver, shared_node, topic_name: str, wait_for) -> None:
    driver.create_topic(topic_name, 2)
    driver.produce(topic_name, [Rec(b"k", b"doomed", (), _ts(driver))])
    dirs = [shared_node.data_dir / f"{topic_name}-{p}" for p in range(2)]
    assert all(d.is_dir() for d in dirs)

    driver.delete_topic(topic_name)
    wait_for(lambda: topic_name not in driver.list_topics(), what=f"{topic_name} to go")
    wait_for(lambda: not any(d.exists() for d in dirs), what="partition dirs renamed or removed")

    driver.create_topic(topic_name, 1)
    assert driver.end_offsets(topic_name, 1) == {0: (0, 0)}
