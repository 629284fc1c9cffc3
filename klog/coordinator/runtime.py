"""The trio runtime around the group coordinator shards: clock, timers, waiting, I/O.

One ``GroupCoordinator`` per node. For every ``__consumer_offsets`` partition this node
leads it owns a ``GroupCoordinatorShard`` (the pure state machine) and three jobs:

* loading: read the partition from its log start to its log end and replay every record
  (requests for its groups get COORDINATOR_LOAD_IN_PROGRESS meanwhile);
* writing: one writer task appends the records shard operations ask for, in the order
  they were asked, through ``Partition.append_records_as_leader(acks=-1)`` (durable under
  the acks=all rules, bounded by ``offsets.commit.timeout.ms``). Writes queued while an
  append waits go out together in the next append (group commit). Only after an append
  succeeds are its records replayed, in log order; a failed append is never applied;
* timers: one task sleeps until the shard's next deadline (or until an operation makes
  it earlier) and fires what is due.

Requests wait on a trio event per request ("waiter"), completed by whatever shard result
answers them; nothing polls. Leadership comes from the replica manager's listener
callbacks: on resignation every parked request is answered NOT_COORDINATOR.

Errors that keep a request from reaching a shard (not coordinator, loading, stopped) are
raised as ``KafkaError``; the server's group handlers turn them into per-API responses.
All state is owned by the node's trio loop; methods must be called from it.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from klog.coordinator.config import OFFSETS_TOPIC, GroupConfig
from klog.coordinator.partitioning import partition_for_group
from klog.coordinator.records import OffsetAndMetadata, build_record_batches, iter_log_batches
from klog.coordinator.shard import GroupCoordinatorShard, Result, TopicPartitions, Write
from klog.replication import Partition, ReplicaManager
from klog.segment.log import wall_clock_ms
from klog.wire import DeleteGroupsResponse
from klog.wire.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)

_LOADING, _ACTIVE, _FAILED, _CLOSED = "loading", "active", "failed", "closed"


@dataclass(eq=False)
class _Waiter:
    event: trio.Event = field(default_factory=trio.Event)
    response: Any = None


@dataclass(eq=False)
class _Coordinated:
    """One ``__consumer_offsets`` partition this node leads, and its jobs."""

    partition: Partition
    shard: GroupCoordinatorShard
    state: str = _LOADING
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    wakeup: trio.Event = field(default_factory=trio.Event)
    sleeping_until_ms: int | None = None
    send: Any = None
    receive: Any = None

    def __post_init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[Write](math.inf)


class GroupCoordinator:
    """The node's group coordinator: start ``run`` in the node's nursery."""

    def __init__(
        self,
        config: GroupConfig,
        replica_manager: ReplicaManager,
        *,
        error_code_for: Callable[[BaseException], int],
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        """``error_code_for`` turns a failed append's exception into a Kafka error code
        (the server router's one mapping); ``clock_ms`` is wall-clock milliseconds (commit
        timestamps are persisted and compared across restarts)."""
        self.config = config
        self._replica_manager = replica_manager
        self._error_code_for = error_code_for
        self._clock = clock_ms
        self._partitions: dict[int, _Coordinated] = {}
        self._waiters: dict[int, _Waiter] = {}
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow leadership of ``__consumer_offsets`` until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._replica_manager.add_leadership_listener(self)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self.close()

    def close(self) -> None:
        """Stop serving (the node is draining): parked requests are answered
        NOT_COORDINATOR, queued writes fail, new requests get NOT_COORDINATOR."""
        self._stopped = True
        for coordinated in list(self._partitions.values()):
            self._unload(coordinated)

    # -- leadership (ReplicaManager listener) ----------------------------------------------

    def on_become_leader(self, partition: Partition) -> None:
        if partition.topic != OFFSETS_TOPIC or self._nursery is None or self._stopped:
            return
        previous = self._partitions.get(partition.index)
        if previous is not None:
            if previous.partition is partition:
                return  # already coordinating this replica
            self._unload(previous)
        coordinated = _Coordinated(partition, GroupCoordinatorShard(partition.index, self.config))
        self._partitions[partition.index] = coordinated
        self._nursery.start_soon(self._serve_partition, coordinated)

    def on_resign(self, partition: Partition) -> None:
        if partition.topic != OFFSETS_TOPIC:
            return
        coordinated = self._partitions.get(partition.index)
        if coordinated is not None and coordinated.partition is partition:
            self._unload(coordinated)

    def _unload(self, coordinated: _Coordinated) -> None:
        if coordinated.state == _CLOSED:
            return
        was_active = coordinated.state == _ACTIVE
        coordinated.state = _CLOSED
        coordinated.scope.cancel()
        coordinated.send.close()
        if self._partitions.get(coordinated.partition.index) is coordinated:
            del self._partitions[coordinated.partition.index]
        if was_active:
            self._deliver(coordinated, coordinated.shard.on_unloaded())
        queued = []
        while True:
            try:
                queued.append(coordinated.receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        self._fail(coordinated, queued, ErrorCode.NOT_LEADER_OR_FOLLOWER)
        log.info("stopped coordinating %s", coordinated.partition)

    # -- the jobs of one partition ---------------------------------------------------------

    async def _serve_partition(self, coordinated: _Coordinated) -> None:
        async with trio.open_nursery() as nursery:
            with coordinated.scope:
                try:
                    await self._load(coordinated)
                except Exception:
                    log.exception("loading %s failed", coordinated.partition)
                    coordinated.state = _FAILED
                    return
                if coordinated.state == _CLOSED:
                    return  # unloaded before its loading (with no checkpoint) finished
                coordinated.state = _ACTIVE
                self._deliver(coordinated, coordinated.shard.on_loaded(self._clock()))
                # The writer is outside the scope that unloading cancels: an append in
                # flight must still answer its requests (it fails once leadership is gone).
                nursery.start_soon(self._writer, coordinated)
                await self._timers(coordinated)

    async def _load(self, coordinated: _Coordinated) -> None:
        partition, shard = coordinated.partition, coordinated.shard
        started = trio.current_time()
        offset = partition.log.log_start_offset
        records = 0
        while offset < partition.log.log_end_offset:
            data = partition.read(
                offset, self.config.offsets_load_buffer_size, up_to_log_end=True
            ).records.read_bytes()
            now = self._clock()
            for next_offset, batch in iter_log_batches(data):
                for record in batch:
                    shard.replay(record, now)
                records += len(batch)
                offset = next_offset
            await trio.sleep(0)  # a long partition must not stall the node's requests
        log.log(
            logging.INFO if records else logging.DEBUG,
            "loaded %s: %d records, %d groups in %.3fs",
            partition,
            records,
            len(shard.groups),
            trio.current_time() - started,
        )

    async def _writer(self, coordinated: _Coordinated) -> None:
        # The receive side stays open when the writer is cancelled: unloading drains
        # what is still queued and answers it.
        async for first in coordinated.receive:
            batch = [first]
            while True:
                try:
                    batch.append(coordinated.receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            await self._append(coordinated, batch)

    async def _append(self, coordinated: _Coordinated, writes: list[Write]) -> None:
        partition = coordinated.partition
        records = [record for write in writes for record in write.records]
        try:
            if coordinated.state == _CLOSED:
                raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, "no longer the coordinator")
            buf = build_record_batches(
                records, self._clock(), partition.log.config.max_message_bytes
            )
            await partition.append_records_as_leader(
                buf, required_acks=-1, timeout_ms=self.config.offsets_commit_timeout_ms
            )
        except BaseException as exc:
            if isinstance(exc, trio.Cancelled):
                # The node is stopping: whether the append happened is unknown, so the
                # requests hear it failed (a retried commit is harmless).
                code = ErrorCode.NOT_LEADER_OR_FOLLOWER
            else:
                code = self._error_code_for(exc)
                if code == ErrorCode.UNKNOWN_SERVER_ERROR:
                    log.exception("writing to %s failed", partition)
            self._fail(coordinated, writes, code)
            if not isinstance(exc, Exception):
                raise
            return
        now = self._clock()
        for write in writes:
            for record in write.records:
                self._deliver(coordinated, coordinated.shard.replay(record, now))
            if write.on_written is not None:
                self._deliver(coordinated, write.on_written(now))

    def _fail(self, coordinated: _Coordinated, writes: list[Write], code: int) -> None:
        now = self._clock()
        for write in writes:
            if write.on_failed is not None:
                self._deliver(coordinated, write.on_failed(code, now))

    async def _timers(self, coordinated: _Coordinated) -> None:
        shard = coordinated.shard
        while True:
            deadline = shard.next_deadline()
            coordinated.wakeup = trio.Event()
            coordinated.sleeping_until_ms = deadline
            if deadline is None:
                await coordinated.wakeup.wait()
            else:
                with trio.move_on_after(max(deadline - self._clock(), 0) / 1000):
                    await coordinated.wakeup.wait()
            self._deliver(coordinated, shard.fire_timers(self._clock()))

    def _deliver(self, coordinated: _Coordinated, result: Result) -> None:
        """Answer the replies, queue the writes, and wake the timer task if the shard's
        next deadline is now earlier than the one it sleeps until."""
        for waiter_id, response in result.replies:
            waiter = self._waiters.get(waiter_id)
            if waiter is not None and not waiter.event.is_set():
                waiter.response = response
                waiter.event.set()
        for write in result.writes:
            try:
                coordinated.send.send_nowait(write)
            except trio.ClosedResourceError:
                self._fail(coordinated, [write], ErrorCode.NOT_LEADER_OR_FOLLOWER)
        deadline = coordinated.shard.next_deadline()
        asleep = coordinated.sleeping_until_ms
        if deadline is not None and (asleep is None or deadline < asleep):
            coordinated.wakeup.set()

    # -- serving requests ------------------------------------------------------------------

    def partition_for(self, group_id: str) -> int:
        return partition_for_group(group_id, self.config.num_partitions)

    def _coordinated(self, group_id: str) -> _Coordinated:
        """The active partition owning ``group_id``, or the error the client should get."""
        if not group_id:
            raise KafkaError(ErrorCode.INVALID_GROUP_ID, "the group id is empty")
        if self._stopped:
            raise KafkaError(ErrorCode.NOT_COORDINATOR, "the coordinator is shutting down")
        coordinated = self._partitions.get(self.partition_for(group_id))
        if coordinated is None:
            raise KafkaError(ErrorCode.NOT_COORDINATOR, f"not the coordinator of {group_id!r}")
        if coordinated.state == _LOADING:
            raise KafkaError(
                ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, f"{coordinated.partition} is loading"
            )
        if coordinated.state != _ACTIVE:
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, "coordinator partition failed")
        return coordinated

    def shard_for(self, group_id: str) -> GroupCoordinatorShard:
        """The active shard owning ``group_id`` (for reads); raises like requests do."""
        return self._coordinated(group_id).shard

    async def _call(
        self, group_id: str, op: Callable[[GroupCoordinatorShard, int, int], Result]
    ) -> Any:
        coordinated = self._coordinated(group_id)
        waiter_id = next(self._ids)
        waiter = _Waiter()
        self._waiters[waiter_id] = waiter
        try:
            self._deliver(coordinated, op(coordinated.shard, waiter_id, self._clock()))
            await waiter.event.wait()
        finally:
            del self._waiters[waiter_id]
        return waiter.response

    async def join_group(
        self, request: Any, *, version: int, client_id: str, client_host: str
    ) -> Any:
        return await self._call(
            request.group_id,
            lambda shard, waiter, now: shard.join_group(
                request,
                version=version,
                client_id=client_id,
                client_host=client_host,
                waiter=waiter,
                now_ms=now,
            ),
        )

    async def sync_group(self, request: Any) -> Any:
        return await self._call(
            request.group_id,
            lambda shard, waiter, now: shard.sync_group(request, waiter=waiter, now_ms=now),
        )

    async def heartbeat(self, request: Any) -> Any:
        return await self._call(
            request.group_id,
            lambda shard, waiter, now: shard.heartbeat(request, waiter=waiter, now_ms=now),
        )

    async def leave_group(self, group_id: str, members: list[tuple[str, str | None]]) -> Any:
        return await self._call(
            group_id,
            lambda shard, waiter, now: shard.leave_group(
                group_id, members, waiter=waiter, now_ms=now
            ),
        )

    async def commit_offsets(self, request: Any, *, version: int) -> Any:
        return await self._call(
            request.group_id,
            lambda shard, waiter, now: shard.commit_offsets(
                request, version=version, waiter=waiter, now_ms=now
            ),
        )

    async def delete_offsets(self, group_id: str, topics: TopicPartitions) -> Any:
        return await self._call(
            group_id,
            lambda shard, waiter, now: shard.delete_offsets(
                group_id, topics, waiter=waiter, now_ms=now
            ),
        )

    def fetch_offsets(
        self, group_id: str, topics: TopicPartitions | None
    ) -> tuple[int, list[tuple[str, list[tuple[int, OffsetAndMetadata | None]]]]]:
        return self.shard_for(group_id).fetch_offsets(group_id, topics)

    def describe_group(self, group_id: str) -> Any:
        return self.shard_for(group_id).describe_group(group_id)

    def list_groups(
        self, states: set[str] | None = None, types: set[str] | None = None
    ) -> tuple[int, list[Any]]:
        """Groups of every partition this node coordinates; COORDINATOR_LOAD_IN_PROGRESS
        (with the groups known so far) while any partition is still loading."""
        error = ErrorCode.NONE
        groups: list[Any] = []
        for coordinated in self._partitions.values():
            if coordinated.state == _ACTIVE:
                groups.extend(coordinated.shard.list_groups(states, types))
            elif coordinated.state == _LOADING:
                error = ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
        return error, groups

    async def delete_groups(self, group_ids: Iterable[str]) -> list[Any]:
        """DeleteGroups results in request order; groups of one partition are deleted by
        one write."""
        requested = list(group_ids)
        by_partition: dict[int, list[str]] = {}
        results: dict[str, Any] = {}
        for group_id in dict.fromkeys(requested):
            try:
                self._coordinated(group_id)
            except KafkaError as exc:
                results[group_id] = DeleteGroupsResponse.DeletableGroupResult(
                    group_id=group_id, error_code=exc.code
                )
                continue
            by_partition.setdefault(self.partition_for(group_id), []).append(group_id)
        for ids in by_partition.values():
            answered = await self._call(
                ids[0],
                lambda shard, waiter, now, ids=ids: shard.delete_groups(
                    ids, waiter=waiter, now_ms=now
                ),
            )
            results.update((result.group_id, result) for result in answered)
        return [results[group_id] for group_id in dict.fromkeys(requested)]
