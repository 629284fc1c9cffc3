"""``Consumer``: the synchronous consumer facade, its fetcher and its group membership.

Threads: the application calls the facade from one thread at a time (as with Kafka's
Java consumer); all partition state lives on the client's trio thread and each call
runs there via ``LoopThread.run``. ``poll()`` is one such call per batch of records.

Fetching: a fetch manager task keeps one FetchRequest in flight per partition leader
for the assigned, unpaused partitions whose buffered-but-unreturned bytes are below
``max_partition_fetch_bytes``, so the next fetch overlaps the application's processing
of the previous one. Responses are split into record batches (CRC-checked by
``klog.wire.iter_batches``) but not decoded; ``poll()`` decodes just the batches it
returns from (``klog.wire.decode_record_tuples``, native codec), skips control batches and
records below the position, and advances the position to what it returned. A seek
bumps the partition's epoch so a response to a fetch sent before it is discarded.
OFFSET_OUT_OF_RANGE applies ``auto_offset_reset`` (``none`` raises
``OffsetOutOfRangeError`` from ``poll()``); leader errors refresh metadata and retry.

Positions: a partition without one takes its committed offset (with a ``group_id``), else
``auto_offset_reset`` (earliest/latest; ``none`` raises ``NoOffsetForPartitionError``).

Groups (``subscribe``): ``poll()`` joins and rejoins the group when needed
(``klog.client._group.GroupMember``) and calls the rebalance listeners
``on_revoked(partitions)`` / ``on_assigned(partitions)`` in the caller's thread. With an
eager assignor (range, roundrobin) every partition is revoked before a rejoin; with
cooperative-sticky only the partitions that move. Auto-commit (``enable_auto_commit``,
every ``auto_commit_interval_ms``, from ``poll()``, before revocation and at ``close()``)
commits the positions, i.e. only records already returned to the application.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import trio

from klog.client._cluster import Cluster
from klog.client._group import GroupMember
from klog.client._loop import LoopThread
from klog.client.assignors import ASSIGNORS
from klog.client.config import parse_bootstrap, resolve
from klog.client.errors import (
    ClientClosedError,
    CommitFailedError,
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    error_for,
)
from klog.client.types import (
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    OffsetSpec,
    TimestampType,
    TopicPartition,
    as_topic_partitions,
)
from klog.wire import (
    CorruptRecordError,
    ErrorCode,
    FetchRequest,
    decode_record_tuples,
    iter_batches,
)

log = logging.getLogger("klog.client")

Listener = Callable[[list[TopicPartition]], Any]
_RESET = {"earliest": OffsetSpec.EARLIEST, "latest": OffsetSpec.LATEST}
_RETRY_FETCH = {
    ErrorCode.NOT_LEADER_OR_FOLLOWER,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.LEADER_NOT_AVAILABLE,
    ErrorCode.FENCED_LEADER_EPOCH,
    ErrorCode.UNKNOWN_LEADER_EPOCH,
    ErrorCode.REPLICA_NOT_AVAILABLE,
    ErrorCode.KAFKA_STORAGE_ERROR,
    ErrorCode.OFFSET_NOT_AVAILABLE,
    ErrorCode.UNKNOWN_TOPIC_ID,
}
_TS_TYPES = (TimestampType.CREATE_TIME, TimestampType.LOG_APPEND_TIME)


class _PartitionState:
    """One assigned partition, owned by the loop thread."""

    __slots__ = (
        "batches",
        "buffered",
        "epoch",
        "fetch_offset",
        "high_watermark",
        "out_of_range",
        "paused",
        "pending",
        "pending_next",
        "position",
    )

    def __init__(self) -> None:
        self.position: int | None = None
        self.fetch_offset = -1
        self.epoch = 0
        self.paused = False
        # Fetching stopped at an out-of-range offset under auto_offset_reset="none",
        # until the application seeks.
        self.out_of_range = False
        self.high_watermark = -1
        self.batches: deque[tuple[Any, memoryview]] = deque()
        self.buffered = 0
        # Decoded records of a partly returned batch, and the offset after that batch.
        self.pending: deque[ConsumerRecord] = deque()
        self.pending_next = -1

    def seek(self, offset: int | None) -> None:
        self.position = offset
        self.fetch_offset = -1 if offset is None else offset
        self.epoch += 1
        self.out_of_range = False
        self.batches.clear()
        self.pending.clear()
        self.buffered = 0


class Consumer:
    """A Kafka consumer: ``Consumer("host:9092", group_id="g", auto_offset_reset=
    "earliest")``; settings are Kafka's consumer configs in snake_case
    (``klog.client.config.CONSUMER``)."""

    def __init__(self, bootstrap_servers: str | list[str] = "localhost:9092", **config: Any):
        self.config = resolve("Consumer", config)
        self._group_id: str | None = self.config["group_id"]
        self._loop = LoopThread("klog-consumer")
        self._cluster = Cluster(self._loop, parse_bootstrap(bootstrap_servers), self.config)
        self._cluster.allow_auto_create = self.config["allow_auto_create_topics"]
        self._assignment: dict[TopicPartition, _PartitionState] = {}
        self._topics: list[str] = []
        self._pattern: re.Pattern[str] | None = None
        self._matched: list[str] = []
        self._on_assigned: Listener | None = None
        self._on_revoked: Listener | None = None
        self._errors: list[KafkaError] = []
        self._fetching: set[int] = set()
        self._fetch_wake: trio.Event | None = None
        self._data_ready: trio.Event | None = None
        self._rr = 0
        self._last_poll = time.monotonic()
        self._next_auto_commit = time.monotonic() + self.config["auto_commit_interval_ms"] / 1000
        self._metadata_seen = -1
        self._closed = False
        assignors = [ASSIGNORS[name]() for name in self.config["partition_assignment_strategy"]]
        self._member: GroupMember | None = None
        if self._group_id:
            self._member = GroupMember(
                self._cluster, self._group_id, self.config, assignors, lambda: self._last_poll
            )
        self._loop.start()
        self._loop.run(self._start)

    async def _start(self) -> None:
        self._fetch_wake = trio.Event()
        self._data_ready = trio.Event()
        self._loop.spawn(self._cluster.refresher)
        self._loop.spawn(self._fetch_manager)
        if self._member is not None:
            self._loop.spawn(self._member.heartbeat_loop)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check(self) -> None:
        if self._closed:
            raise ClientClosedError("the Consumer is closed")
        self._loop.check()
        if self._errors:
            raise self._errors.pop(0)
        if self._member is not None and self._member.fatal is not None:
            fatal, self._member.fatal = self._member.fatal, None
            raise fatal

    # -- subscription and assignment -----------------------------------------------------

    def subscribe(
        self,
        topics: Iterable[str] | str | re.Pattern[str],
        on_assigned: Listener | None = None,
        on_revoked: Listener | None = None,
    ) -> None:
        """Join ``group_id`` for ``topics`` (a list of names, or a regex ``Pattern`` /
        a string starting with ``^`` matched against every topic). Partitions arrive at
        the next ``poll()``; the listeners get lists of TopicPartitions."""
        self._check()
        if self._member is None:
            raise TypeError("subscribe() needs a group_id; use assign() without one")
        if isinstance(topics, re.Pattern) or (isinstance(topics, str) and topics.startswith("^")):
            self._pattern = re.compile(topics) if isinstance(topics, str) else topics
            self._topics = []
            self._cluster.interest = None
        else:
            names = [topics] if isinstance(topics, str) else list(topics)
            if not names or not all(isinstance(t, str) and t for t in names):
                raise TypeError(f"subscribe() takes topic names or a pattern, got {topics!r}")
            self._pattern = None
            self._topics = sorted(set(names))
            self._cluster.add_interest(self._topics)
        self._on_assigned, self._on_revoked = on_assigned, on_revoked
        self._member.request_rejoin()

    def subscription(self) -> set[str]:
        return set(self._topics)

    def unsubscribe(self) -> None:
        """Leave the group (revoking everything) or drop a manual assignment."""
        self._check()
        if self._subscribed and self._assignment:
            self._revoke(sorted(self._assignment), commit=True)
        if self._member is not None:
            self._loop.run(self._member.leave, "the consumer unsubscribed")
            self._member.partitions_lost = False
        self._topics, self._pattern = [], None
        self._loop.run(self._set_assignment, [])

    def assign(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Consume exactly ``partitions`` (no group membership; commits still go to
        ``group_id`` if set)."""
        self._check()
        if self._subscribed:
            raise TypeError("assign() cannot be mixed with subscribe(); unsubscribe() first")
        tps = as_topic_partitions(partitions)
        self._cluster.add_interest({tp.topic for tp in tps})
        self._loop.run(self._set_assignment, tps)

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    @property
    def _subscribed(self) -> bool:
        return bool(self._topics) or self._pattern is not None

    async def _set_assignment(self, partitions: Sequence[TopicPartition]) -> None:
        new = {tp: self._assignment.get(tp) or _PartitionState() for tp in partitions}
        self._assignment = new
        if any(self._cluster.leader(*tp) < 0 for tp in new):
            self._cluster.request_update()
        self._wake_fetcher()

    # -- polling -------------------------------------------------------------------------

    def poll(self, timeout: float = 1.0, max_records: int | None = None) -> list[ConsumerRecord]:
        """Records from the assigned partitions, at most ``max_records`` (default
        ``max_poll_records``), waiting up to ``timeout`` seconds for some."""
        self._check()
        if not self._assignment and not self._subscribed:
            raise TypeError("poll() before subscribe() or assign()")
        limit = max_records or self.config["max_poll_records"]
        deadline = time.monotonic() + timeout
        while True:
            self._last_poll = time.monotonic()
            if self._subscribed:
                self._ensure_group()
            self._maybe_auto_commit()
            records = self._loop.run(self._poll_once, limit, deadline)
            self._check()
            if records or time.monotonic() >= deadline:
                return records

    def __iter__(self) -> Iterator[ConsumerRecord]:
        """Records one by one, forever (until ``close()`` or an error)."""
        while not self._closed:
            yield from self.poll(1.0)

    async def _poll_once(self, limit: int, deadline: float) -> list[ConsumerRecord]:
        await self._ensure_positions(
            [tp for tp, st in self._assignment.items() if st.position is None]
        )
        while True:
            assert self._data_ready is not None
            self._data_ready = trio.Event()
            records = self._drain(limit)
            if records or self._errors:
                return records
            member = self._member
            if member is not None and self._subscribed and member.rejoin_needed:
                return records
            wake = member.rejoin_event if member is not None else trio.Event()
            with trio.move_on_at(trio.current_time() + max(0.0, deadline - time.monotonic())):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_wait_then_cancel, self._data_ready, nursery.cancel_scope)
                    nursery.start_soon(_wait_then_cancel, wake, nursery.cancel_scope)
            if time.monotonic() >= deadline:
                return self._drain(limit)
            await self._ensure_positions(self._without_position())

    def _without_position(self) -> list[TopicPartition]:
        return [tp for tp, st in self._assignment.items() if st.position is None]

    def _drain(self, limit: int) -> list[ConsumerRecord]:
        out: list[ConsumerRecord] = []
        states = [(tp, st) for tp, st in self._assignment.items() if not st.paused]
        if not states:
            return out
        count = len(states)
        self._rr = (self._rr + 1) % count
        consumed = False
        for i in range(count):
            tp, st = states[(self._rr + i) % count]
            while len(out) < limit and (st.pending or st.batches):
                if not st.pending:
                    self._decode_next(tp, st)
                    consumed = True
                    continue
                take = min(limit - len(out), len(st.pending))
                pending = st.pending
                for _ in range(take):
                    out.append(pending.popleft())
                st.position = out[-1].offset + 1
                if not pending and st.pending_next > st.position:
                    st.position = st.pending_next
            if len(out) >= limit:
                break
        if consumed:
            self._wake_fetcher()
        return out

    def _decode_next(self, tp: TopicPartition, st: _PartitionState) -> None:
        header, view = st.batches.popleft()
        st.buffered -= len(view)
        position = st.position if st.position is not None else 0
        next_offset = header.base_offset + header.last_offset_delta + 1
        st.pending_next = next_offset
        if header.attributes & 0x20 or next_offset <= position:  # control batch / already seen
            st.position = max(position, next_offset)
            return
        ts_type = _TS_TYPES[(header.attributes >> 3) & 1]
        topic, partition = tp
        new = tuple.__new__
        st.pending.extend(
            new(ConsumerRecord, (topic, partition, o, ts, k, v, h, ts_type))
            for o, ts, k, v, h in decode_record_tuples(view)
            if o >= position
        )
        if not st.pending:
            st.position = max(position, next_offset)

    # -- positions -----------------------------------------------------------------------

    async def _ensure_positions(self, missing: list[TopicPartition]) -> None:
        if not missing:
            return
        committed: dict[TopicPartition, OffsetAndMetadata] = {}
        if self._member is not None:
            committed = await self._member.committed(missing)
        to_reset = []
        for tp in missing:
            st = self._assignment.get(tp)
            if st is None or st.position is not None:
                continue
            if tp in committed:
                st.seek(committed[tp].offset)
            else:
                to_reset.append(tp)
        if to_reset:
            await self._reset(to_reset)
        self._wake_fetcher()

    async def _reset(self, partitions: list[TopicPartition]) -> None:
        policy = self.config["auto_offset_reset"]
        if policy == "none":
            names = ", ".join(f"{t}-{p}" for t, p in sorted(partitions))
            raise NoOffsetForPartitionError(
                partitions,
                f"no committed offset for {names} and auto_offset_reset='none'; "
                "seek() to a position first",
            )
        found = await self._cluster.list_offsets({tp: _RESET[policy] for tp in partitions})
        for tp, result in found.items():
            st = self._assignment.get(tp)
            if st is not None:
                st.seek(result.offset)

    def seek(self, partition: tuple[str, int], offset: int) -> None:
        """The next ``poll()`` returns ``partition``'s records from ``offset``."""
        self._check()
        [tp] = as_topic_partitions([partition])
        if offset < 0:
            raise ValueError(f"seek offset must be >= 0, got {offset}")
        self._loop.run(self._seek, {tp: offset})

    async def _seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            st = self._assignment.get(tp)
            if st is None:
                raise _not_assigned(tp)
            st.seek(offset)
        self._wake_fetcher()

    def seek_to_beginning(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        self._seek_to(partitions, OffsetSpec.EARLIEST)

    def seek_to_end(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        self._seek_to(partitions, OffsetSpec.LATEST)

    def _seek_to(self, partitions: Iterable[tuple[str, int]] | None, spec: OffsetSpec) -> None:
        self._check()
        tps = sorted(self._assignment) if partitions is None else as_topic_partitions(partitions)
        for tp in tps:
            if tp not in self._assignment:
                raise _not_assigned(tp)
        found = self._loop.run(self._cluster.list_offsets, {tp: int(spec) for tp in tps})
        self._loop.run(self._seek, {tp: r.offset for tp, r in found.items()})

    def position(self, partition: tuple[str, int]) -> int:
        """The offset of the next record ``poll()`` returns for ``partition``."""
        self._check()
        [tp] = as_topic_partitions([partition])
        st = self._assignment.get(tp)
        if st is None:
            raise _not_assigned(tp)
        if st.position is None:
            self._loop.run(self._ensure_positions, [tp])
        assert st.position is not None
        return st.position

    def committed(
        self, partitions: Iterable[tuple[str, int]]
    ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        self._check()
        member = self._require_group("committed()")
        tps = as_topic_partitions(partitions)
        found = self._loop.run(member.committed, tps)
        return {tp: found.get(tp) for tp in tps}

    def offsets_for_times(
        self, timestamps: Mapping[tuple[str, int], int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The earliest offset whose timestamp is >= the given ms, or None if none is."""
        self._check()
        specs = {TopicPartition(*tp): ts for tp, ts in timestamps.items()}
        if any(ts < 0 for ts in specs.values()):
            raise ValueError("offsets_for_times() takes timestamps >= 0")
        found = self._loop.run(self._cluster.list_offsets, specs)
        return {tp: (r if r.offset >= 0 else None) for tp, r in found.items()}

    def beginning_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int]:
        return self._list(partitions, OffsetSpec.EARLIEST)

    def end_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int]:
        return self._list(partitions, OffsetSpec.LATEST)

    def _list(
        self, partitions: Iterable[tuple[str, int]], spec: OffsetSpec
    ) -> dict[TopicPartition, int]:
        self._check()
        specs = {tp: int(spec) for tp in as_topic_partitions(partitions)}
        found = self._loop.run(self._cluster.list_offsets, specs)
        return {tp: r.offset for tp, r in found.items()}

    def partitions_for(self, topic: str) -> list[int]:
        self._check()
        meta = self._cluster.topics.get(topic)
        if meta is None:
            self._cluster.add_interest([topic])
            self._loop.run(self._cluster.refresh_metadata, [topic])
            meta = self._cluster.topics.get(topic)
        return sorted(meta.partitions) if meta is not None else []

    def pause(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Stop fetching and returning records of ``partitions`` until ``resume()``."""
        self._check()
        self._loop.run(self._set_paused, as_topic_partitions(partitions), True)

    def resume(self, partitions: Iterable[tuple[str, int]]) -> None:
        self._check()
        self._loop.run(self._set_paused, as_topic_partitions(partitions), False)

    def paused(self) -> set[TopicPartition]:
        return {tp for tp, st in self._assignment.items() if st.paused}

    async def _set_paused(self, partitions: list[TopicPartition], paused: bool) -> None:
        for tp in partitions:
            st = self._assignment.get(tp)
            if st is None:
                raise _not_assigned(tp)
            st.paused = paused
        self._wake_fetcher()

    # -- commits -------------------------------------------------------------------------

    def commit(
        self,
        offsets: Mapping[tuple[str, int], int | OffsetAndMetadata] | None = None,
        asynchronous: bool = False,
    ) -> concurrent.futures.Future[None] | None:
        """Commit ``offsets`` (next offsets to consume), or every assigned partition's
        position. Synchronous by default; with ``asynchronous=True`` returns a
        ``concurrent.futures.Future`` that resolves (or raises) when the broker answers."""
        self._check()
        member = self._require_group("commit()")
        if offsets is None:
            to_commit = self._positions()
        else:
            to_commit = {
                TopicPartition(*tp): o if isinstance(o, OffsetAndMetadata) else OffsetAndMetadata(o)
                for tp, o in offsets.items()
            }
        use_generation = self._subscribed
        if not asynchronous:
            self._loop.run(member.commit, to_commit, use_generation)
            return None
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop.call_soon(self._spawn_commit, member, to_commit, use_generation, future)
        return future

    def _spawn_commit(
        self, member: GroupMember, offsets: Any, use_generation: bool, future: Any
    ) -> None:
        async def run() -> None:
            try:
                await member.commit(offsets, use_generation)
            except Exception as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)

        self._loop.nursery.start_soon(run)

    def _positions(self) -> dict[TopicPartition, OffsetAndMetadata]:
        return {
            tp: OffsetAndMetadata(st.position)
            for tp, st in list(self._assignment.items())
            if st.position is not None
        }

    def _require_group(self, what: str) -> GroupMember:
        if self._member is None:
            raise TypeError(f"{what} needs a group_id")
        return self._member

    def _maybe_auto_commit(self) -> None:
        if not (self.config["enable_auto_commit"] and self._member is not None):
            return
        now = time.monotonic()
        if now < self._next_auto_commit:
            return
        self._next_auto_commit = now + self.config["auto_commit_interval_ms"] / 1000
        positions = self._positions()
        if positions:
            future = self.commit(positions, asynchronous=True)
            assert future is not None
            future.add_done_callback(self._auto_commit_done)

    def _auto_commit_done(self, future: concurrent.futures.Future[None]) -> None:
        error = future.exception()
        if isinstance(error, CommitFailedError):
            # At-least-once: after the rebalance the records are re-read from the last
            # successful commit, as with Kafka's Java client.
            log.warning("group %s: auto-commit failed: %s", self._group_id, error)
        elif isinstance(error, KafkaError):
            self._errors.append(error)

    def _auto_commit_sync(self, partitions: Sequence[TopicPartition]) -> None:
        if not (self.config["enable_auto_commit"] and self._member is not None):
            return
        positions = {tp: om for tp, om in self._positions().items() if tp in set(partitions)}
        try:
            self._loop.run(self._member.commit, positions, self._subscribed)
        except CommitFailedError as exc:
            # At-least-once: the new owner re-reads from the last successful commit.
            log.warning("group %s: auto-commit before rebalance failed: %s", self._group_id, exc)

    # -- group membership ----------------------------------------------------------------

    def _subscribed_topics(self) -> list[str]:
        if self._pattern is None:
            return self._topics
        pattern = self._pattern
        internal = self.config["exclude_internal_topics"]
        return sorted(
            name
            for name, meta in self._cluster.topics.items()
            if pattern.fullmatch(name) and not (internal and meta.is_internal)
        )

    def _ensure_group(self) -> None:
        member = self._member
        assert member is not None
        if self._pattern is not None and self._cluster.updates == 0:
            self._loop.run(self._cluster.refresh_metadata, None)
        topics = self._subscribed_topics()
        if self._cluster.updates != self._metadata_seen:
            self._metadata_seen = self._cluster.updates
            if self._pattern is not None and topics != self._matched:
                self._matched = topics
                member.request_rejoin()
            elif member.stable and member.metadata_changed(topics):
                member.request_rejoin()
        if not member.rejoin_needed and member.generation_id >= 0:
            return
        owned = sorted(self._assignment)
        if member.partitions_lost and owned:
            member.partitions_lost = False
            self._revoke(owned, commit=False)
            owned = []
        elif not member.cooperative and owned:
            self._revoke(owned, commit=True)
            owned = []
        member.partitions_lost = False
        result = self._loop.run(member.join, topics, owned)
        new = set(result.assignment)
        if member.cooperative:
            revoked = sorted(set(owned) - new)
            if revoked:
                self._revoke(revoked, commit=True)
                member.request_rejoin()
            added = sorted(new - set(owned))
        else:
            added = sorted(new)
        self._loop.run(self._set_assignment, sorted(new))
        if self._on_assigned is not None:
            self._on_assigned(added)

    def _revoke(self, partitions: list[TopicPartition], commit: bool) -> None:
        if commit:
            self._auto_commit_sync(partitions)
        if self._on_revoked is not None:
            self._on_revoked(partitions)
        remaining = [tp for tp in self._assignment if tp not in set(partitions)]
        self._loop.run(self._set_assignment, remaining)

    # -- fetching ------------------------------------------------------------------------

    def _wake_fetcher(self) -> None:
        if self._fetch_wake is not None:
            self._fetch_wake.set()

    async def _fetch_manager(self) -> None:
        limit = self.config["max_partition_fetch_bytes"]
        backoff = self._cluster.retry_backoff
        async with trio.open_nursery() as nursery:
            while True:
                self._fetch_wake = trio.Event()
                by_node: dict[int, list[tuple[TopicPartition, int, int]]] = {}
                leaderless = False
                for tp, st in self._assignment.items():
                    if st.paused or st.position is None or st.buffered >= limit or st.out_of_range:
                        continue
                    leader = self._cluster.leader(*tp)
                    if leader < 0:
                        leaderless = True
                        continue
                    by_node.setdefault(leader, []).append((tp, st.fetch_offset, st.epoch))
                for node, parts in by_node.items():
                    if node not in self._fetching:
                        self._fetching.add(node)
                        nursery.start_soon(self._fetch, node, parts)
                if leaderless:
                    self._cluster.request_update()
                    with trio.move_on_after(backoff):
                        await self._fetch_wake.wait()
                else:
                    await self._fetch_wake.wait()

    async def _fetch(self, node: int, parts: list[tuple[TopicPartition, int, int]]) -> None:
        try:
            await self._fetch_from(node, parts)
        finally:
            self._fetching.discard(node)
            self._wake_fetcher()

    async def _fetch_from(self, node: int, parts: list[tuple[TopicPartition, int, int]]) -> None:
        config = self.config
        topics: dict[str, list[Any]] = {}
        for tp, offset, _epoch in parts:
            topics.setdefault(tp.topic, []).append(
                FetchRequest.FetchPartition(
                    partition=tp.partition,
                    fetch_offset=offset,
                    partition_max_bytes=config["max_partition_fetch_bytes"],
                )
            )
        request = FetchRequest(
            replica_id=-1,
            max_wait_ms=config["fetch_max_wait_ms"],
            min_bytes=config["fetch_min_bytes"],
            max_bytes=config["fetch_max_bytes"],
            isolation_level=0,
            session_id=0,
            session_epoch=-1,
            topics=[FetchRequest.FetchTopic(topic=t, partitions=ps) for t, ps in topics.items()],
            forgotten_topics_data=[],
            rack_id=config["client_rack"] or "",
        )
        try:
            conn = await self._cluster.connection(node)
            response = await conn.request(
                request, timeout=conn.request_timeout + config["fetch_max_wait_ms"] / 1000
            )
        except KafkaError as exc:
            if not exc.retriable:
                raise
            log.debug("fetch from broker %d failed: %s", node, exc)
            self._cluster.request_update()
            await trio.sleep(self._cluster.retry_backoff)
            return
        if response.error_code:
            self._errors.append(error_for(response.error_code, f"fetch from broker {node}"))
            self._signal_data()
            return
        sent = {tp: (offset, epoch) for tp, offset, epoch in parts}
        retry = False
        for t in response.responses:
            for p in t.partitions:
                tp = TopicPartition(t.topic, p.partition_index)
                st = self._assignment.get(tp)
                if st is None or tp not in sent or st.epoch != sent[tp][1]:
                    continue  # unassigned or seeked since the request went out
                retry |= await self._on_partition(tp, st, sent[tp][0], p)
        if retry:
            await trio.sleep(self._cluster.retry_backoff)

    async def _on_partition(
        self, tp: TopicPartition, st: _PartitionState, offset: int, p: Any
    ) -> bool:
        """Handle one partition of a fetch response; True when it should back off."""
        code = p.error_code
        if code == ErrorCode.NONE:
            st.high_watermark = p.high_watermark
            records = p.records
            if not records:
                return False
            try:
                batches = list(iter_batches(records, allow_partial=True))
            except CorruptRecordError as exc:
                self._errors.append(exc)
                self._signal_data()
                return False
            if not batches:
                self._errors.append(
                    error_for(
                        ErrorCode.RECORD_LIST_TOO_LARGE,
                        f"{tp.topic}-{tp.partition} at offset {offset}: a record batch is "
                        f"larger than max_partition_fetch_bytes "
                        f"({self.config['max_partition_fetch_bytes']})",
                    )
                )
                self._signal_data()
                return False
            st.batches.extend(batches)
            st.buffered += sum(len(view) for _h, view in batches)
            st.fetch_offset = batches[-1][0].next_offset
            self._signal_data()
            return False
        if code == ErrorCode.OFFSET_OUT_OF_RANGE:
            if self.config["auto_offset_reset"] == "none":
                st.out_of_range = True
                self._errors.append(
                    OffsetOutOfRangeError(
                        detail=f"{tp.topic}-{tp.partition}: fetch offset {offset} is out of "
                        "range and auto_offset_reset='none'; seek() to a valid offset"
                    )
                )
                self._signal_data()
            else:
                await self._reset([tp])
            return False
        if code in _RETRY_FETCH:
            self._cluster.request_update()
            return True
        self._errors.append(error_for(code, f"fetch {tp.topic}-{tp.partition} at offset {offset}"))
        self._signal_data()
        return False

    def _signal_data(self) -> None:
        if self._data_ready is not None:
            self._data_ready.set()

    # -- shutdown ------------------------------------------------------------------------

    def close(self, timeout: float | None = None) -> None:
        """Commit (with auto-commit), leave the group (dynamic members) and stop."""
        if self._closed:
            return
        try:
            if self._member is not None and not self._loop.closed:
                if self._assignment and self.config["enable_auto_commit"]:
                    self._auto_commit_sync(sorted(self._assignment))
                if self._subscribed:
                    self._loop.run(self._member.leave, "the consumer is closing")
        finally:
            self._closed = True
            if not self._loop.closed:
                self._loop.call_soon(self._cluster.close)
            self._loop.stop(timeout)


async def _wait_then_cancel(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _not_assigned(tp: TopicPartition) -> ValueError:
    return ValueError(f"{tp.topic}-{tp.partition} is not assigned to this consumer")
