"""One partition replica on this node: leader epoch, ISR, high watermark, acks waiters.

Every produce and fetch goes through a ``Partition``, even with one replica, so
replication plugs in without touching the handlers. State comes from the metadata
image (``update_state``); the log is a ``klog.segment.Log`` owned by the LogManager.

Invariants:
- ``high_watermark`` never decreases while this node leads, and never exceeds the log
  end offset; it is the smallest log end offset among the ISR (here, with followers
  not yet implemented, the ISR is the leader alone, so it is the log end offset).
- An append is acknowledged only after the flush policy ran for it (with
  ``flush.messages=1`` that means fsync'd) and, for acks=all, after the high
  watermark passed its last offset.
- Waiters are keyed by what they wait for: ``HighWatermarkWaiters`` wakes exactly
  the tasks whose offset the high watermark passed. Nothing polls.

Shared by the tasks of one trio loop (the handlers of every connection); appends are
synchronous page-cache writes, so they never interleave inside a batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from klog.segment import AppendInfo, FileSlice, Log, LogManager, TopicPartition
from klog.segment.producer_state import AppendOrigin
from klog.wire.errors import ErrorCode, KafkaError


@dataclass(frozen=True, slots=True)
class ReadResult:
    """A fetch's view of one partition: the records slice and the offsets around it."""

    records: FileSlice
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    log_end_offset: int


class LeaderAndIsr(Protocol):
    """A partition's replica state as the metadata layer publishes it."""

    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int


class HighWatermarkWaiters:
    """Tasks waiting for the high watermark to pass an offset, woken in offset order."""

    def __init__(self) -> None:
        self._waiting: list[tuple[int, trio.Event]] = []

    async def wait_past(self, offset: int) -> None:
        event = trio.Event()
        self._waiting.append((offset, event))
        await event.wait()

    def advance(self, high_watermark: int) -> None:
        still: list[tuple[int, trio.Event]] = []
        for offset, event in self._waiting:
            if offset < high_watermark:
                event.set()
            else:
                still.append((offset, event))
        self._waiting = still

    def wake_all(self) -> None:
        for _, event in self._waiting:
            event.set()
        self._waiting = []


class Partition:
    """A replica of ``topic``-``index`` hosted by node ``node_id``."""

    def __init__(
        self,
        tp: TopicPartition,
        topic_id: uuid.UUID,
        log: Log,
        log_manager: LogManager,
        node_id: int,
        clock_ms: Callable[[], int],
        on_high_watermark: Callable[[Partition], None] | None = None,
    ) -> None:
        self.tp = tp
        self.topic_id = topic_id
        self.log = log
        self._log_manager = log_manager
        self.node_id = node_id
        self._clock = clock_ms
        self._on_high_watermark = on_high_watermark
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.leader = -1
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.high_watermark = log.log_end_offset
        self._acks = HighWatermarkWaiters()

    @property
    def topic(self) -> str:
        return self.tp.topic

    @property
    def index(self) -> int:
        return self.tp.partition

    @property
    def is_leader(self) -> bool:
        return self.leader == self.node_id

    def update_state(self, state: LeaderAndIsr) -> None:
        """Apply the partition's state from the metadata image."""
        was_leader = self.is_leader
        self.replicas = state.replicas
        self.isr = state.isr
        self.leader = state.leader
        self.leader_epoch = state.leader_epoch
        self.partition_epoch = state.partition_epoch
        if self.is_leader:
            # With no follower fetch state yet, the ISR's slowest member is the leader.
            self._advance_high_watermark(self.log.log_end_offset)
        elif was_leader:
            self._acks.wake_all()  # their acks can no longer be granted here

    # -- leader side ---------------------------------------------------------------------

    def check_leader(self, current_leader_epoch: int = -1) -> None:
        """Raise the Kafka error a client gets when this replica cannot serve it."""
        if not self.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"{self} is not led by this node")
        if current_leader_epoch != -1:
            if current_leader_epoch < self.leader_epoch:
                raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH, f"epoch {current_leader_epoch}")
            if current_leader_epoch > self.leader_epoch:
                raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH, f"epoch {current_leader_epoch}")

    async def append_records_as_leader(
        self,
        buf: object,
        *,
        required_acks: int,
        timeout_ms: int,
        origin: AppendOrigin = AppendOrigin.COORDINATOR,
    ) -> AppendInfo:
        """Append batches (a produce request's with ``origin`` CLIENT); return once they
        are acknowledged per ``acks``. A retried idempotent batch is not written again:
        its original offsets come back, acknowledged the same way (see ``Log.append``)."""
        self.check_leader()
        min_isr = self.log.config.min_insync_replicas
        if required_acks == -1 and len(self.isr) < min_isr:
            raise KafkaError(
                ErrorCode.NOT_ENOUGH_REPLICAS,
                f"ISR {list(self.isr)} is smaller than min.insync.replicas={min_isr}",
            )
        info = self.log.append(buf, self.leader_epoch, self._clock(), origin)
        await self._log_manager.flush_if_due(self.log)
        self._advance_high_watermark(self.log.log_end_offset)
        if required_acks == -1 and self.high_watermark <= info.last_offset:
            with trio.move_on_after(timeout_ms / 1000):
                await self._acks.wait_past(info.last_offset)
            if not self.is_leader:
                raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, "leadership moved")
            if self.high_watermark <= info.last_offset:
                raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, "replicas did not acknowledge")
        return info

    def read(
        self,
        fetch_offset: int,
        max_bytes: int,
        *,
        up_to_log_end: bool = False,
        min_one_message: bool = True,
    ) -> ReadResult:
        """Records from ``fetch_offset``: up to the high watermark for consumers, up to
        the log end for followers (``up_to_log_end``)."""
        bound = self.log.log_end_offset if up_to_log_end else self.high_watermark
        records = self.log.read(fetch_offset, max_bytes, bound, min_one_message)
        return ReadResult(
            records=records,
            high_watermark=self.high_watermark,
            last_stable_offset=self.high_watermark,
            log_start_offset=self.log.log_start_offset,
            log_end_offset=self.log.log_end_offset,
        )

    def _advance_high_watermark(self, offset: int) -> None:
        if offset <= self.high_watermark:
            return
        self.high_watermark = offset
        self._acks.advance(offset)
        if self._on_high_watermark is not None:
            self._on_high_watermark(self)

    def on_truncated(self) -> None:
        """After DeleteRecords or truncation: keep the high watermark inside the log."""
        self.high_watermark = min(
            max(self.high_watermark, self.log.log_start_offset), self.log.log_end_offset
        )

    def __repr__(self) -> str:
        return f"Partition({self.tp.topic}-{self.tp.partition}, epoch={self.leader_epoch})"
