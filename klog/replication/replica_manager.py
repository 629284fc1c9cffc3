"""The replicas this node hosts, kept in step with the published metadata.

``update_partition`` / ``remove_partition`` turn metadata changes into local state.
The server layer translates the metadata image's deltas into these calls, because
replication sits below the controller. A partition assigned to this node gets a log
and a ``Partition``; a removed one's log is deleted; leadership listeners (the group
coordinator) hear when this node starts or stops leading a partition.

``wait_for_data`` is the fetch long-poll: one trio event per waiting fetch, registered
under each partition it reads and set when that partition's high watermark moves, so
a fetch wakes exactly when data it may return arrives.

Shared by every task of the node's trio loop; all mutations are synchronous.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Protocol

import trio

from klog.replication.partition import LeaderAndIsr, Partition
from klog.segment import LogConfig, LogManager, TopicPartition
from klog.wire.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)


class LeadershipListener(Protocol):
    def on_become_leader(self, partition: Partition) -> None: ...

    def on_resign(self, partition: Partition) -> None: ...


class ReplicaManager:
    """Partitions hosted by ``node_id``, created and removed as the image changes."""

    def __init__(
        self,
        node_id: int,
        log_manager: LogManager,
        config_for_topic: Callable[[str], LogConfig],
        clock_ms: Callable[[], int],
    ) -> None:
        self.node_id = node_id
        self.log_manager = log_manager
        self._config_for_topic = config_for_topic
        self._clock = clock_ms
        self.partitions: dict[TopicPartition, Partition] = {}
        self._listeners: list[LeadershipListener] = []
        self._data_waiters: dict[TopicPartition, set[trio.Event]] = {}

    def add_leadership_listener(self, listener: LeadershipListener) -> None:
        self._listeners.append(listener)
        for partition in self.partitions.values():
            if partition.is_leader:
                listener.on_become_leader(partition)

    # -- lookups -------------------------------------------------------------------------

    def get_partition(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get(TopicPartition(topic, index))

    def leader_partition(self, topic: str, index: int, current_leader_epoch: int = -1) -> Partition:
        """The partition if this node leads it, else the error a client should get."""
        partition = self.partitions.get(TopicPartition(topic, index))
        if partition is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic}-{index}")
        partition.check_leader(current_leader_epoch)
        return partition

    # -- metadata ------------------------------------------------------------------------

    def update_partition(
        self, tp: TopicPartition, topic_id: uuid.UUID, state: LeaderAndIsr
    ) -> None:
        """Create or update the local replica of ``tp`` (this node is in its replicas)."""
        partition = self.partitions.get(tp)
        if partition is None:
            log_ = self.log_manager.get_or_create_log(tp, self._config_for_topic(tp.topic))
            partition = Partition(
                tp,
                topic_id,
                log_,
                self.log_manager,
                self.node_id,
                self._clock,
                on_high_watermark=self._high_watermark_moved,
            )
            self.partitions[tp] = partition
        was_leader = partition.is_leader
        partition.update_state(state)
        if partition.is_leader and not was_leader:
            for listener in self._listeners:
                listener.on_become_leader(partition)
        elif was_leader and not partition.is_leader:
            for listener in self._listeners:
                listener.on_resign(partition)

    def topic_config_changed(self, topic: str) -> None:
        self.log_manager.update_topic_config(topic, self._config_for_topic(topic))

    def remove_partition(self, tp: TopicPartition) -> None:
        """Stop hosting ``tp`` and delete its log."""
        partition = self.partitions.pop(tp, None)
        if partition is None:
            return
        if partition.is_leader:
            for listener in self._listeners:
                listener.on_resign(partition)
        self._wake(tp)
        self.log_manager.delete_log(tp)

    # -- fetch long-poll -----------------------------------------------------------------

    async def wait_for_data(self, tps: Iterable[TopicPartition], timeout_s: float) -> bool:
        """Wait until any of ``tps`` gets new committed data, or the timeout. True if woken."""
        event = trio.Event()
        keys = list(tps)
        for tp in keys:
            self._data_waiters.setdefault(tp, set()).add(event)
        try:
            with trio.move_on_after(timeout_s):
                await event.wait()
        finally:
            for tp in keys:
                waiters = self._data_waiters.get(tp)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._data_waiters[tp]
        return event.is_set()

    def _high_watermark_moved(self, partition: Partition) -> None:
        self._wake(partition.tp)

    def _wake(self, tp: TopicPartition) -> None:
        for event in self._data_waiters.get(tp, ()):
            event.set()
