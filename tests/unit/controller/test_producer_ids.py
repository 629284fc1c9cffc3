"""Producer id blocks through the metadata log, and the broker side handing ids out."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from klog.controller import (
    PRODUCER_ID_BLOCK_SIZE,
    MetadataDelta,
    MetadataImage,
    MetadataReplayError,
    ProducerIdManager,
    ProducerIdsBlock,
)
from klog.wire import ProducerIdsRecord
from klog.wire.errors import ErrorCode, KafkaError
from tests.unit.controller.conftest import Cluster


def broker_epoch(cluster: Cluster, broker_id: int = 1) -> int:
    return cluster.image.brokers[broker_id].broker_epoch


def test_blocks_follow_each_other_and_survive_a_restart(
    cluster_factory: Callable[..., Cluster],
) -> None:
    async def first_run() -> list[ProducerIdsBlock]:
        cluster = cluster_factory()
        await cluster.start(brokers=2)
        blocks = [
            await cluster.controller.allocate_producer_ids(1, broker_epoch(cluster, 1)),
            await cluster.controller.allocate_producer_ids(2, broker_epoch(cluster, 2)),
        ]
        cluster.close()
        return blocks

    blocks = trio.run(first_run)
    assert blocks == [
        ProducerIdsBlock(1, 0, PRODUCER_ID_BLOCK_SIZE),
        ProducerIdsBlock(2, PRODUCER_ID_BLOCK_SIZE, PRODUCER_ID_BLOCK_SIZE),
    ]

    async def after_restart() -> ProducerIdsBlock:
        cluster = cluster_factory(clean=True)
        assert cluster.image.next_producer_id == 2 * PRODUCER_ID_BLOCK_SIZE
        return await cluster.controller.allocate_producer_ids(1, broker_epoch(cluster, 1))

    assert trio.run(after_restart).first_producer_id == 2 * PRODUCER_ID_BLOCK_SIZE


def test_the_record_is_kafkas(cluster_factory: Callable[..., Cluster]) -> None:
    async def main() -> list[list[object]]:
        cluster = cluster_factory()
        await cluster.start()
        epoch = broker_epoch(cluster)
        await cluster.controller.allocate_producer_ids(1, epoch)
        return [records for records, _ in cluster.metadata_log.replay()]

    batches = trio.run(main)
    assert batches[-1] == [
        ProducerIdsRecord(
            broker_id=1, broker_epoch=batches[-2][0].broker_epoch, next_producer_id=1000
        )
    ]


@pytest.mark.parametrize(("broker_id", "epoch_shift"), [(1, 1), (7, 0)], ids=["stale", "unknown"])
def test_a_stale_or_unknown_broker_gets_no_block(
    cluster_factory: Callable[..., Cluster], broker_id: int, epoch_shift: int
) -> None:
    async def main() -> None:
        cluster = cluster_factory()
        await cluster.start()
        end = cluster.metadata_log.next_offset
        with pytest.raises(KafkaError) as caught:
            await cluster.controller.allocate_producer_ids(
                broker_id, broker_epoch(cluster) + epoch_shift
            )
        assert caught.value.code == ErrorCode.STALE_BROKER_EPOCH
        assert cluster.metadata_log.next_offset == end  # nothing written

    trio.run(main)


def test_replaying_a_block_that_does_not_advance_fails() -> None:
    image = MetadataImage()
    image.apply(ProducerIdsRecord(broker_id=1, next_producer_id=1000), MetadataDelta())
    with pytest.raises(MetadataReplayError):
        image.apply(ProducerIdsRecord(broker_id=1, next_producer_id=1000), MetadataDelta())
    assert image.next_producer_id == 1000


def test_the_manager_hands_out_each_id_once_and_asks_for_blocks_as_needed() -> None:
    asked: list[int] = []

    async def allocate() -> ProducerIdsBlock:
        asked.append(len(asked))
        await trio.sleep(0)  # let other callers run while the block is on its way
        return ProducerIdsBlock(1, 100 * len(asked), 3)

    async def main() -> list[int]:
        manager = ProducerIdManager(allocate)
        ids: list[int] = []

        async def take() -> None:
            ids.append(await manager.generate_producer_id())

        async with trio.open_nursery() as nursery:
            for _ in range(7):
                nursery.start_soon(take)
        return ids

    ids = trio.run(main)
    assert sorted(ids) == [100, 101, 102, 200, 201, 202, 300]
    assert len(asked) == 3


def test_a_failed_allocation_is_retried_by_the_next_caller() -> None:
    outcomes: list[BaseException | ProducerIdsBlock] = [
        KafkaError(ErrorCode.STALE_BROKER_EPOCH, "x"),
        ProducerIdsBlock(1, 5, 10),
    ]

    async def allocate() -> ProducerIdsBlock:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def main() -> int:
        manager = ProducerIdManager(allocate)
        with pytest.raises(KafkaError):
            await manager.generate_producer_id()
        return await manager.generate_producer_id()

    assert trio.run(main) == 5
