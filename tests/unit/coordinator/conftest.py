"""A driver for the group coordinator shard on simulated time.

It plays the runtime's part without trio: numbers each request (its "waiter"), collects
the answers, makes writes durable (replaying them, as the runtime does after an append)
or holds them to fail or release later, and advances a simulated clock by firing the
shard's timers at their deadlines.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import pytest

from klog.coordinator import CoordinatorRecord, GroupConfig, GroupCoordinatorShard, Result, Write
from klog.wire import (
    ConsumerProtocolSubscription,
    HeartbeatRequest,
    JoinGroupRequest,
    OffsetCommitRequest,
    SyncGroupRequest,
)
from klog.wire.errors import ErrorCode
from klog.wire.versioned import encode_versioned

START_MS = 1_700_000_000_000


def subscription(*topics: str) -> bytes:
    """A consumer-protocol subscription, as clients put in JoinGroup."""
    return encode_versioned(ConsumerProtocolSubscription(topics=list(topics)), 1)


class Driver:
    def __init__(self, **config: Any) -> None:
        self.config = GroupConfig(**config)
        self.shard = GroupCoordinatorShard(0, self.config, loading=False)
        self.now = START_MS
        self.log: list[CoordinatorRecord] = []
        self.answers: dict[int, Any] = {}
        self.held: list[Write] = []
        self.hold_writes = False
        self._ids = itertools.count(1)
        self.apply(self.shard.on_loaded(self.now))

    # -- the runtime's part ----------------------------------------------------------------

    def apply(self, result: Result) -> None:
        for waiter, response in result.replies:
            assert waiter not in self.answers, f"request {waiter} answered twice"
            self.answers[waiter] = response
        for write in result.writes:
            if self.hold_writes:
                self.held.append(write)
            else:
                self.complete(write)
        # The runtime's timer task fires what is already due right away.
        deadline = self.shard.next_deadline()
        if deadline is not None and deadline <= self.now:
            self.apply(self.shard.fire_timers(self.now))

    def complete(self, write: Write) -> None:
        self.log.extend(write.records)
        for record in write.records:
            self.apply(self.shard.replay(record, self.now))
        if write.on_written is not None:
            self.apply(write.on_written(self.now))

    def fail(self, write: Write, code: int = ErrorCode.NOT_LEADER_OR_FOLLOWER) -> None:
        if write.on_failed is not None:
            self.apply(write.on_failed(code, self.now))

    def release(self) -> None:
        held, self.held = self.held, []
        for write in held:
            self.complete(write)

    def advance(self, ms: int) -> None:
        target = self.now + ms
        while (deadline := self.shard.next_deadline()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            self.apply(self.shard.fire_timers(self.now))
        self.now = target

    def waiter(self) -> int:
        return next(self._ids)

    def answer(self, waiter: int) -> Any:
        assert waiter in self.answers, f"request {waiter} is still waiting"
        return self.answers[waiter]

    def waiting(self, waiter: int) -> bool:
        return waiter not in self.answers

    # -- requests --------------------------------------------------------------------------

    def join(
        self,
        group: str = "g",
        member_id: str = "",
        *,
        instance: str | None = None,
        protocols: Iterable[tuple[str, bytes]] = (("range", b"r"),),
        protocol_type: str = "consumer",
        session: int = 10_000,
        rebalance: int = 30_000,
        version: int = 9,
        client_id: str = "client",
    ) -> int:
        waiter = self.waiter()
        request = JoinGroupRequest(
            group_id=group,
            session_timeout_ms=session,
            rebalance_timeout_ms=rebalance,
            member_id=member_id,
            group_instance_id=instance,
            protocol_type=protocol_type,
            protocols=[
                JoinGroupRequest.JoinGroupRequestProtocol(name=name, metadata=metadata)
                for name, metadata in protocols
            ],
        )
        self.apply(
            self.shard.join_group(
                request,
                version=version,
                client_id=client_id,
                client_host="/127.0.0.1",
                waiter=waiter,
                now_ms=self.now,
            )
        )
        return waiter

    def join_new(self, group: str = "g", **kwargs: Any) -> int:
        """The v4+ two-step join of a dynamic member: returns the parked second join."""
        first = self.join(group, **kwargs)
        response = self.answer(first)
        assert response.error_code == ErrorCode.MEMBER_ID_REQUIRED
        return self.join(group, response.member_id, **kwargs)

    def sync(
        self,
        group: str,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        *,
        instance: str | None = None,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
    ) -> int:
        waiter = self.waiter()
        request = SyncGroupRequest(
            group_id=group,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=instance,
            protocol_type=protocol_type,
            protocol_name=protocol_name,
            assignments=[
                SyncGroupRequest.SyncGroupRequestAssignment(member_id=m, assignment=a)
                for m, a in (assignments or {}).items()
            ],
        )
        self.apply(self.shard.sync_group(request, waiter=waiter, now_ms=self.now))
        return waiter

    def heartbeat(
        self, group: str, member_id: str, generation: int, instance: str | None = None
    ) -> int:
        waiter = self.waiter()
        request = HeartbeatRequest(
            group_id=group,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=instance,
        )
        self.apply(self.shard.heartbeat(request, waiter=waiter, now_ms=self.now))
        return self.answer(waiter).error_code

    def leave(self, group: str, members: list[tuple[str, str | None]]) -> Any:
        waiter = self.waiter()
        self.apply(self.shard.leave_group(group, members, waiter=waiter, now_ms=self.now))
        return self.answer(waiter)

    def commit(
        self,
        group: str,
        offsets: dict[tuple[str, int], tuple[int, str | None]],
        *,
        generation: int = -1,
        member_id: str = "",
        instance: str | None = None,
        version: int = 8,
        retention_ms: int = -1,
        leader_epoch: int = -1,
    ) -> int:
        topics: dict[str, list[Any]] = {}
        for (topic, partition), (offset, metadata) in offsets.items():
            topics.setdefault(topic, []).append(
                OffsetCommitRequest.OffsetCommitRequestPartition(
                    partition_index=partition,
                    committed_offset=offset,
                    committed_leader_epoch=leader_epoch,
                    committed_metadata=metadata,
                )
            )
        request = OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=generation,
            member_id=member_id,
            group_instance_id=instance,
            retention_time_ms=retention_ms,
            topics=[
                OffsetCommitRequest.OffsetCommitRequestTopic(name=name, partitions=partitions)
                for name, partitions in topics.items()
            ],
        )
        waiter = self.waiter()
        self.apply(
            self.shard.commit_offsets(request, version=version, waiter=waiter, now_ms=self.now)
        )
        return waiter

    def committed(self, group: str, topic: str, partition: int) -> Any:
        code, topics = self.shard.fetch_offsets(group, [(topic, [partition])])
        assert code == ErrorCode.NONE
        return topics[0][1][0][1]

    def stable_group(
        self,
        size: int,
        group: str = "g",
        *,
        protocols: Iterable[tuple[str, bytes]] = (("range", b"r"),),
        **join_kwargs: Any,
    ) -> tuple[list[str], int]:
        """Bring ``size`` dynamic members to Stable; returns (member ids, generation)."""
        protocols = tuple(protocols)
        joins = [self.join_new(group, protocols=protocols, **join_kwargs) for _ in range(size)]
        # Members added during the initial delay extend it once more.
        self.advance(2 * self.config.initial_rebalance_delay_ms)
        responses = [self.answer(w) for w in joins]
        assert all(r.error_code == ErrorCode.NONE for r in responses), responses
        generation = responses[0].generation_id
        leader = responses[0].leader
        members = [r.member_id for r in responses]
        syncs = [
            self.sync(
                group,
                m,
                generation,
                {x: x.encode() for x in members} if m == leader else None,
            )
            for m in members
        ]
        for member, waiter in zip(members, syncs, strict=True):
            answer = self.answer(waiter)
            assert answer.error_code == ErrorCode.NONE
            assert answer.assignment == member.encode()
        return members, generation


class Client:
    """A consumer's side of the protocol: join, sync, then heartbeat; rejoin when told."""

    def __init__(self, group: str, instance: str | None) -> None:
        self.group = group
        self.instance = instance
        self.member_id = ""
        self.generation = -1
        self.leader = ""
        self.members: list[str] = []
        self.phase = "join"  # join -> sync -> heartbeat
        self.pending: tuple[str, int] | None = None
        self.errors: list[int] = []  # every error it was answered

    def act(self, driver: Driver) -> int | None:
        """Send the next request; returns its waiter if it may wait."""
        if self.pending is not None:
            return None
        if self.phase == "join":
            waiter = driver.join(self.group, self.member_id, instance=self.instance, version=5)
        elif self.phase == "sync":
            mine = self.member_id == self.leader
            assignments = {m: m.encode() for m in self.members} if mine else None
            waiter = driver.sync(
                self.group, self.member_id, self.generation, assignments, instance=self.instance
            )
        else:
            code = driver.heartbeat(self.group, self.member_id, self.generation, self.instance)
            self._error(code)
            return None
        self.pending = (self.phase, waiter)
        return waiter

    def absorb(self, driver: Driver) -> None:
        if self.pending is None or driver.waiting(self.pending[1]):
            return
        kind, waiter = self.pending
        self.pending = None
        answer = driver.answer(waiter)
        if kind == "join" and answer.error_code == ErrorCode.MEMBER_ID_REQUIRED:
            self.member_id = answer.member_id
        elif kind == "join" and answer.error_code == ErrorCode.NONE:
            self.member_id, self.generation = answer.member_id, answer.generation_id
            self.leader = answer.leader
            self.members = [m.member_id for m in answer.members]
            self.phase = "sync"
        elif kind == "sync" and answer.error_code == ErrorCode.NONE:
            self.phase = "heartbeat"
        else:
            self._error(answer.error_code)

    def _error(self, code: int) -> None:
        if code == ErrorCode.NONE:
            return
        self.errors.append(code)
        if code in (ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.FENCED_INSTANCE_ID):
            self.member_id = ""
        self.phase = "join"

    def restart(self) -> None:
        self.member_id, self.phase, self.pending = "", "join", None


@pytest.fixture
def driver() -> Driver:
    return Driver()


@pytest.fixture
def make_driver() -> type[Driver]:
    return Driver
