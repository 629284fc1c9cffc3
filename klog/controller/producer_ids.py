"""Producer ids for idempotent producers, handed out in blocks through the metadata log.

Kafka's KRaft scheme: the controller owns the next unassigned producer id, persisted as
``ProducerIdsRecord`` (next producer id, and the broker id and epoch that asked) in
``__cluster_metadata``; a broker asks for a block of ``PRODUCER_ID_BLOCK_SIZE`` (1000)
ids, and hands them out one at a time to InitProducerId requests, asking for another
block when this one runs out. A block is committed before any of its ids is used, so
no id is ever given twice, across restarts too: a restarted node replays the records
and starts from a fresh block (the rest of its old block is skipped, as in Kafka).

``ProducerIdsBlock`` is an immutable value; ``ProducerIdManager`` (the broker's side,
Kafka's RPCProducerIdManager without the prefetch) is used by the tasks of one trio loop
and serialises its block requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

#: Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE.
PRODUCER_ID_BLOCK_SIZE = 1000
INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class ProducerIdsBlock:
    """Producer ids ``first_producer_id`` .. ``last_producer_id`` for ``broker_id``."""

    broker_id: int
    first_producer_id: int
    size: int

    @property
    def last_producer_id(self) -> int:
        return self.first_producer_id + self.size - 1

    @property
    def next_block_first_id(self) -> int:
        return self.first_producer_id + self.size


class ProducerIdManager:
    """Hands out producer ids from blocks that ``allocate_block`` obtains (from the
    controller, which writes the ProducerIdsRecord) whenever the current one is used up."""

    def __init__(self, allocate_block: Callable[[], Awaitable[ProducerIdsBlock]]) -> None:
        self._allocate_block = allocate_block
        self._block: ProducerIdsBlock | None = None
        self._next = 0
        self._lock = trio.Lock()

    async def generate_producer_id(self) -> int:
        """A producer id never handed out before. Raises what ``allocate_block`` raises."""
        async with self._lock:
            if self._block is None or self._next > self._block.last_producer_id:
                self._block = await self._allocate_block()
                self._next = self._block.first_producer_id
            producer_id = self._next
            self._next += 1
            return producer_id
