"""The consumer-group protocol as a client speaks it (classic protocol).

``GroupMember`` runs on the client's trio loop: FindCoordinator, JoinGroup (with the
MEMBER_ID_REQUIRED second round of v4+), the leader's assignment (``klog.client.
assignors``), SyncGroup, background heartbeats, LeaveGroup, and the offset
commit/fetch calls that also serve the Admin client (``commit_offsets``,
``fetch_committed``). The consumer facade drives rebalances from its ``poll()`` so
that rebalance listeners run in the application's thread, as in Kafka's Java client;
the heartbeat task only reports that a rejoin is needed (or leaves the group when
``max_poll_interval_ms`` passes without a poll).

Not thread-safe: used from the loop thread only, except the plain attribute reads the
facade makes (``rejoin_needed``, ``generation``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from klog.client._cluster import Cluster
from klog.client._conn import seconds
from klog.client.assignors import (
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from klog.client.errors import (
    AdminOperationError,
    CommitFailedError,
    KafkaError,
    error_for,
    raise_for,
)
from klog.client.types import OffsetAndMetadata, TopicPartition
from klog.wire import (
    ErrorCode,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
)

log = logging.getLogger("klog.client")


async def fetch_committed(
    conn: Any, group_id: str, partitions: Sequence[TopicPartition] | None
) -> dict[TopicPartition, OffsetAndMetadata]:
    """OffsetFetch (v1-v9) of ``group_id`` on its coordinator connection; partitions
    without a committed offset are left out."""
    version = conn.version_for(OffsetFetchRequest.API_KEY)
    topics: dict[str, list[int]] | None = None
    if partitions is not None:
        topics = {}
        for tp in partitions:
            topics.setdefault(tp.topic, []).append(tp.partition)
    if version >= 8:
        request = OffsetFetchRequest(
            groups=[
                OffsetFetchRequest.OffsetFetchRequestGroup(
                    group_id=group_id,
                    topics=None
                    if topics is None
                    else [
                        OffsetFetchRequest.OffsetFetchRequestTopics(name=t, partition_indexes=ps)
                        for t, ps in topics.items()
                    ],
                )
            ],
            require_stable=False,
        )
    else:
        request = OffsetFetchRequest(
            group_id=group_id,
            topics=None
            if topics is None
            else [
                OffsetFetchRequest.OffsetFetchRequestTopic(name=t, partition_indexes=ps)
                for t, ps in topics.items()
            ],
        )
    response = await conn.request(request, version=version)
    if version >= 8:
        [group] = response.groups
        raise_for(group.error_code, f"OffsetFetch of group {group_id!r}")
        found = group.topics
    else:
        raise_for(getattr(response, "error_code", 0), f"OffsetFetch of group {group_id!r}")
        found = response.topics
    out = {}
    for t in found:
        for p in t.partitions:
            raise_for(p.error_code, f"OffsetFetch {group_id!r} {t.name}-{p.partition_index}")
            if p.committed_offset >= 0:
                out[TopicPartition(t.name, p.partition_index)] = OffsetAndMetadata(
                    p.committed_offset, p.metadata or "", p.committed_leader_epoch
                )
    return out


async def commit_offsets(
    conn: Any,
    group_id: str,
    generation_id: int,
    member_id: str,
    group_instance_id: str | None,
    offsets: Mapping[TopicPartition, OffsetAndMetadata],
) -> dict[TopicPartition, KafkaError]:
    """OffsetCommit on the coordinator connection; returns the per-partition errors."""
    topics: dict[str, list[Any]] = {}
    for tp, om in offsets.items():
        topics.setdefault(tp.topic, []).append(
            OffsetCommitRequest.OffsetCommitRequestPartition(
                partition_index=tp.partition,
                committed_offset=om.offset,
                committed_leader_epoch=om.leader_epoch,
                committed_metadata=om.metadata,
            )
        )
    request = OffsetCommitRequest(
        group_id=group_id,
        generation_id_or_member_epoch=generation_id,
        member_id=member_id,
        group_instance_id=group_instance_id,
        topics=[
            OffsetCommitRequest.OffsetCommitRequestTopic(name=t, partitions=ps)
            for t, ps in topics.items()
        ],
    )
    response = await conn.request(request)
    return {
        TopicPartition(t.name, p.partition_index): error_for(
            p.error_code, f"commit {group_id!r} {t.name}-{p.partition_index}"
        )
        for t in response.topics
        for p in t.partitions
        if p.error_code
    }


_COORDINATOR_ERRORS = {
    ErrorCode.NOT_COORDINATOR,
    ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
}


@dataclass(frozen=True)
class JoinResult:
    generation_id: int
    protocol: str
    assignment: list[TopicPartition]


class GroupMember:
    """This consumer's membership of one classic consumer group."""

    def __init__(
        self,
        cluster: Cluster,
        group_id: str,
        settings: dict[str, Any],
        assignors: Sequence[Any],
        last_poll: Callable[[], float],
    ) -> None:
        self.cluster = cluster
        self.group_id = group_id
        self.group_instance_id: str | None = settings["group_instance_id"]
        self.session_timeout_ms: int = settings["session_timeout_ms"]
        self.rebalance_timeout_ms: int = settings["max_poll_interval_ms"]
        self.heartbeat_interval = seconds(settings["heartbeat_interval_ms"])
        self.max_poll_interval = seconds(settings["max_poll_interval_ms"])
        self.rack_id: str | None = settings["client_rack"]
        self.assignors = list(assignors)
        self._last_poll = last_poll
        self.member_id = ""
        self.generation_id = -1
        self.protocol: str | None = None
        self.coordinator: int | None = None
        self.stable = False
        self.rejoin_needed = True
        # Set when the coordinator says this member's partitions were handed on without
        # it (session expiry, fencing): the facade must treat them as revoked.
        self.partitions_lost = False
        self.fatal: KafkaError | None = None
        self.rejoin_event = trio.Event()
        self._subscribed_counts: dict[str, int] = {}

    @property
    def cooperative(self) -> bool:
        return any(a.name == self.protocol and a.cooperative for a in self.assignors)

    def request_rejoin(self) -> None:
        self.rejoin_needed = True
        self.rejoin_event.set()

    async def coordinator_connection(self) -> Any:
        while True:
            if self.coordinator is None:
                try:
                    self.coordinator = await self.cluster.find_coordinator(self.group_id)
                except KafkaError as exc:
                    if not exc.retriable:
                        raise
                    await trio.sleep(self.cluster.retry_backoff)
                    continue
            try:
                return await self.cluster.connection(self.coordinator)
            except KafkaError:
                self.coordinator = None
                await trio.sleep(self.cluster.retry_backoff)

    def _coordinator_lost(self) -> None:
        self.coordinator = None

    async def join(self, topics: Sequence[str], owned: Sequence[TopicPartition]) -> JoinResult:
        """JoinGroup + SyncGroup until this member has an assignment."""
        self.stable = False
        join_timeout = self.rebalance_timeout_ms / 1000 + 5
        while True:
            conn = await self.coordinator_connection()
            metadata = encode_subscription(topics, owned, self.generation_id, self.rack_id)
            request = JoinGroupRequest(
                group_id=self.group_id,
                session_timeout_ms=self.session_timeout_ms,
                rebalance_timeout_ms=self.rebalance_timeout_ms,
                member_id=self.member_id,
                group_instance_id=self.group_instance_id,
                protocol_type="consumer",
                protocols=[
                    JoinGroupRequest.JoinGroupRequestProtocol(name=a.name, metadata=metadata)
                    for a in self.assignors
                ],
                reason=None,
            )
            try:
                response = await conn.request(request, timeout=join_timeout)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                self._coordinator_lost()
                continue
            code = response.error_code
            if code == ErrorCode.MEMBER_ID_REQUIRED:
                self.member_id = response.member_id
                continue
            if code == ErrorCode.UNKNOWN_MEMBER_ID:
                self.member_id = ""
                self.generation_id = -1
                continue
            if code in _COORDINATOR_ERRORS:
                self._coordinator_lost()
                await trio.sleep(self.cluster.retry_backoff)
                continue
            if code == ErrorCode.REBALANCE_IN_PROGRESS:
                await trio.sleep(self.cluster.retry_backoff)
                continue
            raise_for(code, f"JoinGroup of group {self.group_id!r}")
            self.member_id = response.member_id
            generation, protocol = response.generation_id, response.protocol_name
            assignments: dict[str, list[TopicPartition]] = {}
            if response.leader == self.member_id and not getattr(
                response, "skip_assignment", False
            ):
                assignments = await self._lead(protocol, response.members)
            sync = SyncGroupRequest(
                group_id=self.group_id,
                generation_id=generation,
                member_id=self.member_id,
                group_instance_id=self.group_instance_id,
                protocol_type="consumer",
                protocol_name=protocol,
                assignments=[
                    SyncGroupRequest.SyncGroupRequestAssignment(
                        member_id=m, assignment=encode_assignment(tps)
                    )
                    for m, tps in assignments.items()
                ],
            )
            try:
                synced = await conn.request(sync, timeout=join_timeout)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                self._coordinator_lost()
                continue
            code = synced.error_code
            if code in (ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION):
                continue
            if code == ErrorCode.UNKNOWN_MEMBER_ID:
                self.member_id = ""
                continue
            if code in _COORDINATOR_ERRORS:
                self._coordinator_lost()
                continue
            raise_for(code, f"SyncGroup of group {self.group_id!r}")
            self.generation_id = generation
            self.protocol = protocol
            self.rejoin_needed = False
            self.rejoin_event = trio.Event()
            self.stable = True
            return JoinResult(generation, protocol, decode_assignment(bytes(synced.assignment)))

    async def _lead(self, protocol: str, members: Sequence[Any]) -> dict[str, list[TopicPartition]]:
        assignor = next((a for a in self.assignors if a.name == protocol), None)
        if assignor is None:
            raise error_for(
                ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
                f"the coordinator chose assignor {protocol!r}, which this client lacks",
            )
        subscriptions = [
            decode_subscription(m.member_id, m.group_instance_id, bytes(m.metadata))
            for m in members
        ]
        topics = {t for s in subscriptions for t in s.topics}
        self.cluster.add_interest(topics)
        await self.cluster.refresh_metadata(topics)
        counts = {t: meta.num_partitions for t in topics if (meta := self.cluster.topics.get(t))}
        self._subscribed_counts = counts
        return assignor.assign(counts, subscriptions)

    def metadata_changed(self, topics: Sequence[str]) -> bool:
        """Whether the leader's view of partition counts moved since it assigned."""
        if not self._subscribed_counts:
            return False
        now = {t: m.num_partitions for t in topics if (m := self.cluster.topics.get(t))}
        return any(now.get(t, c) != c for t, c in self._subscribed_counts.items())

    async def heartbeat_loop(self) -> None:
        """Background task: heartbeats while stable; leaves when polls stop."""
        while True:
            await trio.sleep(self.heartbeat_interval)
            if not self.stable:
                continue
            if time.monotonic() - self._last_poll() > self.max_poll_interval:
                log.warning(
                    "group %s: no poll() for more than max_poll_interval_ms; leaving the "
                    "group so its partitions go to other members",
                    self.group_id,
                )
                await self.leave("consumer poll timeout has expired")
                continue
            request = HeartbeatRequest(
                group_id=self.group_id,
                generation_id=self.generation_id,
                member_id=self.member_id,
                group_instance_id=self.group_instance_id,
            )
            try:
                conn = await self.coordinator_connection()
                response = await conn.request(request)
            except KafkaError as exc:
                log.debug("group %s: heartbeat failed: %s", self.group_id, exc)
                self._coordinator_lost()
                continue
            self._on_heartbeat(response.error_code)

    def _on_heartbeat(self, code: int) -> None:
        if code == ErrorCode.NONE or not self.stable:
            return
        if code == ErrorCode.REBALANCE_IN_PROGRESS:
            self.request_rejoin()
        elif code in (ErrorCode.ILLEGAL_GENERATION, ErrorCode.UNKNOWN_MEMBER_ID):
            self._lose_membership(reset_member=code == ErrorCode.UNKNOWN_MEMBER_ID)
        elif code == ErrorCode.FENCED_INSTANCE_ID:
            self.fatal = error_for(
                code,
                f"group {self.group_id!r}: group_instance_id "
                f"{self.group_instance_id!r} is used by another consumer",
            )
            self._lose_membership(reset_member=True)
        elif code in _COORDINATOR_ERRORS:
            self._coordinator_lost()
        else:
            self.fatal = error_for(code, f"heartbeat of group {self.group_id!r}")

    def _lose_membership(self, reset_member: bool) -> None:
        self.stable = False
        self.generation_id = -1
        if reset_member:
            self.member_id = ""
        self.partitions_lost = True
        self.request_rejoin()

    async def leave(self, reason: str) -> None:
        """LeaveGroup (dynamic members only: a static member keeps its slot until its
        session times out, so a restart does not rebalance)."""
        was_member = self.member_id and self.generation_id >= 0
        self.stable = False
        self.generation_id = -1
        self.partitions_lost = bool(was_member)
        self.rejoin_needed = True
        if not was_member or self.group_instance_id is not None:
            return
        member_id, self.member_id = self.member_id, ""
        request = LeaveGroupRequest(
            group_id=self.group_id,
            member_id=member_id,
            members=[
                LeaveGroupRequest.MemberIdentity(
                    member_id=member_id, group_instance_id=None, reason=reason
                )
            ],
        )
        try:
            conn = await self.coordinator_connection()
            response = await conn.request(request)
        except KafkaError as exc:
            log.warning("group %s: LeaveGroup failed: %s", self.group_id, exc)
            return
        if response.error_code not in (ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID):
            log.warning(
                "group %s: LeaveGroup answered %s", self.group_id, error_for(response.error_code)
            )

    async def commit(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata], use_generation: bool
    ) -> None:
        """Commit ``offsets``; as the current generation's member when ``use_generation``
        (subscribe mode), else as a standalone consumer (assign mode)."""
        if not offsets:
            return
        while True:
            conn = await self.coordinator_connection()
            generation = self.generation_id if use_generation else -1
            member = self.member_id if use_generation else ""
            instance = self.group_instance_id if use_generation else None
            try:
                errors = await commit_offsets(
                    conn, self.group_id, generation, member, instance, offsets
                )
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                self._coordinator_lost()
                await trio.sleep(self.cluster.retry_backoff)
                continue
            if not errors:
                return
            first = next(iter(errors.values()))
            if first.code in _COORDINATOR_ERRORS:
                self._coordinator_lost()
                await trio.sleep(self.cluster.retry_backoff)
                continue
            if first.code in (
                ErrorCode.REBALANCE_IN_PROGRESS,
                ErrorCode.ILLEGAL_GENERATION,
                ErrorCode.UNKNOWN_MEMBER_ID,
                ErrorCode.FENCED_INSTANCE_ID,
            ):
                if first.code != ErrorCode.REBALANCE_IN_PROGRESS:
                    self._lose_membership(reset_member=first.code == ErrorCode.UNKNOWN_MEMBER_ID)
                else:
                    self.request_rejoin()
                raise CommitFailedError(
                    first.code,
                    f"commit of group {self.group_id!r} failed: the group rebalanced "
                    f"({first.name}); the partitions may now belong to another member",
                )
            if len(errors) == 1:
                raise first
            raise AdminOperationError(errors)

    async def committed(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        while True:
            conn = await self.coordinator_connection()
            try:
                return await fetch_committed(conn, self.group_id, partitions)
            except KafkaError as exc:
                if not exc.retriable and exc.code not in _COORDINATOR_ERRORS:
                    raise
                self._coordinator_lost()
                await trio.sleep(self.cluster.retry_backoff)
