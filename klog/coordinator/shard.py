"""The group coordinator state machine for one ``__consumer_offsets`` partition.

Shaped after Kafka's newer coordinator (``GroupMetadataManager`` + ``OffsetMetadataManager``
behind a ``GroupCoordinatorShard``): no I/O and no clock. Every operation takes the
request and ``now_ms`` and returns a ``Result``:

* ``replies``: ``(waiter, response)`` pairs. The runtime gives every request a waiter id;
  a request that must wait (JoinGroup during a rebalance, SyncGroup before the leader's
  assignment, anything that writes) is answered later, by the result of another request,
  a timer, or a write's outcome;
* ``writes``: records for ``__consumer_offsets``, each with what to do if the write fails;
* ``deadline_ms``: the earliest timer now pending (session, join, sync, expiry).

State and replay. The durable state (committed offsets, which groups exist, their
persisted generation/protocol/leader/members/assignments) changes only in ``replay``:
a commit is visible to OffsetFetch only once its record is written and replayed, a group
becomes Stable only when the record carrying its assignment is replayed, deletions take
effect when their tombstones are replayed, and a write that fails is never applied.
Loading a partition is replaying its records (``loading=True``) then ``on_loaded``. The
rebalance in progress (members awaiting JoinGroup/SyncGroup answers, pending members,
timers) is soft state Kafka never persists; it changes as requests arrive, exactly as in
Kafka's classic-group code, and a freshly loaded group is Stable or Empty.

Not shared: one shard belongs to the runtime task set of its partition.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from klog.coordinator.config import GroupConfig
from klog.coordinator.group import ClassicGroup, GroupState, Member, Protocols
from klog.coordinator.records import (
    CoordinatorRecord,
    GroupMetadataRecord,
    OffsetAndMetadata,
    OffsetCommitRecord,
)
from klog.wire import (
    DeleteGroupsResponse,
    DescribeGroupsResponse,
    HeartbeatResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    ListGroupsResponse,
    OffsetCommitResponse,
    OffsetDeleteResponse,
    SyncGroupResponse,
)
from klog.wire.errors import ErrorCode

log = logging.getLogger(__name__)

CLASSIC_GROUP_TYPE = "classic"
# OffsetCommit v2-v4 ``retention_time_ms`` meaning "use the broker's retention".
DEFAULT_RETENTION_TIME = -1

TimerKey = tuple[str, ...]
TopicPartitions = list[tuple[str, list[int]]]


@dataclass
class Write:
    """Records to append. Once they are durable the runtime replays them, then calls
    ``on_written(now_ms)``; if the append fails it calls ``on_failed(error_code, now_ms)``
    instead (and replays nothing)."""

    records: list[CoordinatorRecord]
    on_written: Callable[[int], Result] | None = None
    on_failed: Callable[[int, int], Result] | None = None


@dataclass
class Result:
    """What an operation asks of the runtime (see the module docstring)."""

    replies: list[tuple[int, Any]] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    deadline_ms: int | None = None

    def reply(self, waiter: int | None, response: Any) -> None:
        if waiter is not None:
            self.replies.append((waiter, response))

    def write(
        self,
        records: list[CoordinatorRecord],
        *,
        on_written: Callable[[int], Result] | None = None,
        on_failed: Callable[[int, int], Result] | None = None,
    ) -> None:
        self.writes.append(Write(records, on_written, on_failed))


def append_error_to_response_error(code: int) -> int:
    """Kafka's mapping of a failed ``__consumer_offsets`` append to what clients get."""
    if code in (
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode.REQUEST_TIMED_OUT,
    ):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if code in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.KAFKA_STORAGE_ERROR):
        return ErrorCode.NOT_COORDINATOR
    if code in (
        ErrorCode.MESSAGE_TOO_LARGE,
        ErrorCode.RECORD_LIST_TOO_LARGE,
        ErrorCode.INVALID_FETCH_SIZE,
    ):
        return ErrorCode.UNKNOWN_SERVER_ERROR
    return code


def _commit_error(code: int) -> int:
    mapped = append_error_to_response_error(code)
    if mapped == ErrorCode.UNKNOWN_SERVER_ERROR and code != ErrorCode.UNKNOWN_SERVER_ERROR:
        return ErrorCode.INVALID_COMMIT_OFFSET_SIZE
    return mapped


class _Timers:
    """Keyed one-shot timers; scheduling a key again replaces it (as Kafka's timer)."""

    def __init__(self) -> None:
        self._entries: dict[TimerKey, tuple[int, int, Callable[[int, Result], None]]] = {}
        self._heap: list[tuple[int, int, TimerKey]] = []
        self._seq = itertools.count()

    def schedule(
        self, key: TimerKey, deadline_ms: int, action: Callable[[int, Result], None]
    ) -> None:
        seq = next(self._seq)
        self._entries[key] = (deadline_ms, seq, action)
        heapq.heappush(self._heap, (deadline_ms, seq, key))

    def cancel(self, key: TimerKey) -> None:
        self._entries.pop(key, None)

    def next_deadline(self) -> int | None:
        while self._heap:
            deadline, seq, key = self._heap[0]
            entry = self._entries.get(key)
            if entry is not None and entry[1] == seq:
                return deadline
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now_ms: int) -> Callable[[int, Result], None] | None:
        deadline = self.next_deadline()
        if deadline is None or deadline > now_ms:
            return None
        _, _, key = heapq.heappop(self._heap)
        return self._entries.pop(key)[2]

    def clear(self) -> None:
        self._entries.clear()
        self._heap.clear()


class GroupCoordinatorShard:
    """Classic groups and committed offsets of one ``__consumer_offsets`` partition."""

    def __init__(self, partition: int, config: GroupConfig, *, loading: bool = True) -> None:
        self.partition = partition
        self.config = config
        self.loading = loading
        self.groups: dict[str, ClassicGroup] = {}
        self.offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = {}
        self._timers = _Timers()
        # Commits written but not yet replayed: never expired under their feet.
        self._pending_commits: Counter[tuple[str, str, int]] = Counter()

    # -- runtime hooks ---------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        return self._timers.next_deadline()

    def fire_timers(self, now_ms: int) -> Result:
        """Run every timer due at ``now_ms``, earliest first."""
        out = Result()
        while (action := self._timers.pop_due(now_ms)) is not None:
            action(now_ms, out)
        return self._done(out)

    def on_loaded(self, now_ms: int) -> Result:
        """After replaying the partition: start session timers for the loaded members
        (they must heartbeat to stay) and the offsets-expiry schedule."""
        self.loading = False
        out = Result()
        for group in self.groups.values():
            for member in group.members.values():
                self._schedule_heartbeat(group, member, member.session_timeout_ms, now_ms)
            if len(group.members) > self.config.max_size:
                self._prepare_rebalance(group, now_ms, out)
        self._schedule_offsets_expiry(now_ms)
        return self._done(out)

    def on_unloaded(self) -> Result:
        """Leadership moved: every parked request learns NOT_COORDINATOR."""
        out = Result()
        for group in self.groups.values():
            for member in group.members.values():
                self._complete_join(
                    group,
                    member,
                    JoinGroupResponse(
                        member_id=member.member_id, error_code=ErrorCode.NOT_COORDINATOR
                    ),
                    out,
                )
                self._complete_sync(
                    member, SyncGroupResponse(error_code=ErrorCode.NOT_COORDINATOR), out
                )
            group.state = GroupState.DEAD
        self._timers.clear()
        return out

    # -- replay ----------------------------------------------------------------------------

    def replay(self, record: CoordinatorRecord, now_ms: int) -> Result:
        """Apply one record read from, or durably written to, ``__consumer_offsets``."""
        out = Result()
        if isinstance(record, OffsetCommitRecord):
            self._replay_offset(record)
        elif record.value is None:
            self._replay_group_tombstone(record.group_id)
        else:
            self._replay_group(record, now_ms, out)
        return self._done(out)

    def _replay_offset(self, record: OffsetCommitRecord) -> None:
        tp = (record.topic, record.partition)
        if record.value is None:
            group_offsets = self.offsets.get(record.group_id)
            if group_offsets is not None:
                group_offsets.pop(tp, None)
                if not group_offsets:
                    del self.offsets[record.group_id]
            return
        self.offsets.setdefault(record.group_id, {})[tp] = record.value
        if record.group_id not in self.groups:
            # Kafka's "simple" group: offsets committed without group membership.
            self.groups[record.group_id] = ClassicGroup(record.group_id)

    def _replay_group_tombstone(self, group_id: str) -> None:
        group = self.groups.pop(group_id, None)
        if group is None:
            return
        self._timers.cancel(("join", group_id))
        self._timers.cancel(("sync", group_id))
        for member_id in itertools.chain(group.members, group.pending_join):
            self._timers.cancel(("heartbeat", group_id, member_id))

    def _replay_group(self, record: GroupMetadataRecord, now_ms: int, out: Result) -> None:
        value = record.value
        assert value is not None
        group = self.groups.get(record.group_id)
        if self.loading or group is None:
            self.groups[record.group_id] = ClassicGroup.from_record_value(record.group_id, value)
            return
        if group.is_in(GroupState.COMPLETING_REBALANCE) and value.generation == group.generation_id:
            # The leader's assignment for this generation is durable: the group is Stable.
            assignments = {m.member_id: m.assignment for m in value.members}
            for member in group.members.values():
                member.assignment = assignments.get(member.member_id, b"")
            self._propagate_assignment(group, ErrorCode.NONE, now_ms, out)
            group.transition_to(GroupState.STABLE, now_ms)
        # Otherwise the live group is already ahead of this record (Kafka does not replay
        # its own classic-group records either); a reload would start from it.

    # -- JoinGroup -------------------------------------------------------------------------

    def join_group(
        self,
        request: Any,
        *,
        version: int,
        client_id: str,
        client_host: str,
        waiter: int,
        now_ms: int,
    ) -> Result:
        """JoinGroup (all versions; v4+ asks new members to rejoin with an id)."""
        out = Result()
        group_id, member_id = request.group_id, request.member_id
        session_timeout = request.session_timeout_ms
        if not (
            self.config.min_session_timeout_ms
            <= session_timeout
            <= self.config.max_session_timeout_ms
        ):
            out.reply(waiter, _join_error(ErrorCode.INVALID_SESSION_TIMEOUT, member_id))
            return self._done(out)
        join = _Join(
            request=request,
            version=version,
            client_id=client_id,
            client_host=client_host,
            waiter=waiter,
            rebalance_timeout_ms=(
                request.rebalance_timeout_ms
                if version >= 1 and request.rebalance_timeout_ms != -1
                else session_timeout
            ),
            protocols=tuple((p.name, bytes(p.metadata)) for p in request.protocols),
        )
        is_unknown = member_id == ""
        group = self.groups.get(group_id)
        created = group is None
        if group is None:
            if not is_unknown:
                out.reply(waiter, _join_error(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
                return self._done(out)
            group = ClassicGroup(group_id, state_timestamp_ms=now_ms)
            self.groups[group_id] = group
        if not self._accept_joining_member(group, member_id):
            self._drop_member(group, member_id, out)
            out.reply(waiter, _join_error(ErrorCode.GROUP_MAX_SIZE_REACHED, ""))
        elif is_unknown:
            self._join_new_member(group, join, now_ms, out)
        else:
            self._join_existing_member(group, join, now_ms, out)
        if created:
            # As Kafka's coordinator does, a new group is persisted at once (generation 0,
            # no members), so a reloaded coordinator knows every group this one did.
            empty = group.to_record_value({})
            empty.members = []
            record = GroupMetadataRecord(group_id, empty)
            out.writes.insert(
                0, Write([record], on_failed=partial(self._log_failed_write, group_id))
            )
        return self._done(out)

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        if group.is_in(GroupState.EMPTY, GroupState.DEAD):
            return True
        if group.is_in(GroupState.PREPARING_REBALANCE):
            # Counting parked joins (not members) lets a shrunk group.max.size kick out
            # the last members to rejoin.
            member = group.members.get(member_id)
            return (
                member is not None and member.awaiting_join
            ) or group.awaiting_join < self.config.max_size
        return group.has_member(member_id) or len(group.members) < self.config.max_size

    def _join_new_member(self, group: ClassicGroup, join: _Join, now_ms: int, out: Result) -> None:
        request = join.request
        if group.is_in(GroupState.DEAD):
            out.reply(join.waiter, _join_error(ErrorCode.COORDINATOR_NOT_AVAILABLE, ""))
            return
        if not group.supports_protocols(request.protocol_type, {n for n, _ in join.protocols}):
            out.reply(join.waiter, _join_error(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, ""))
            return
        instance_id = request.group_instance_id
        new_member_id = f"{instance_id or join.client_id}-{uuid.uuid4()}"
        if instance_id is not None:
            existing = group.static_members.get(instance_id)
            if existing is not None:
                self._replace_static_member(group, join, existing, new_member_id, now_ms, out)
            else:
                self._add_member(group, join, new_member_id, now_ms, out)
        elif join.version >= 4:
            # Two-step join: the member learns its id, then rejoins with it. Until then
            # it is pending and counts against completing the join phase.
            group.pending_join.add(new_member_id)
            self._timers.schedule(
                ("heartbeat", group.group_id, new_member_id),
                now_ms + request.session_timeout_ms,
                partial(self._expire_heartbeat, group.group_id, new_member_id),
            )
            out.reply(join.waiter, _join_error(ErrorCode.MEMBER_ID_REQUIRED, new_member_id))
        else:
            self._add_member(group, join, new_member_id, now_ms, out)

    def _join_existing_member(
        self, group: ClassicGroup, join: _Join, now_ms: int, out: Result
    ) -> None:
        request = join.request
        member_id = request.member_id
        if group.is_in(GroupState.DEAD):
            out.reply(join.waiter, _join_error(ErrorCode.COORDINATOR_NOT_AVAILABLE, member_id))
            return
        if not group.supports_protocols(request.protocol_type, {n for n, _ in join.protocols}):
            out.reply(join.waiter, _join_error(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
            return
        if group.is_pending_member(member_id):
            if request.group_instance_id is not None:
                out.reply(join.waiter, _join_error(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
                return
            self._add_member(group, join, member_id, now_ms, out)
            return
        error = _validate_member(group, member_id, request.group_instance_id)
        if error:
            out.reply(join.waiter, _join_error(error, member_id))
            return
        member = group.members[member_id]
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._update_member_then_rebalance(group, member, join, now_ms, out)
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            if member.matches(join.protocols):
                # A retry of a JoinGroup whose answer was lost: answer it again.
                out.reply(join.waiter, self._join_response(group, member))
            else:
                self._update_member_then_rebalance(group, member, join, now_ms, out)
        elif group.is_in(GroupState.STABLE):
            if group.is_leader(member_id) or not member.matches(join.protocols):
                # A rejoining leader forces a rebalance (e.g. topic metadata changed).
                self._update_member_then_rebalance(group, member, join, now_ms, out)
            else:
                out.reply(join.waiter, self._join_response(group, member, with_members=False))
        else:
            out.reply(join.waiter, _join_error(ErrorCode.UNKNOWN_MEMBER_ID, member_id))

    def _add_member(
        self, group: ClassicGroup, join: _Join, member_id: str, now_ms: int, out: Result
    ) -> None:
        request = join.request
        member = Member(
            member_id=member_id,
            group_instance_id=request.group_instance_id,
            client_id=join.client_id,
            client_host=join.client_host,
            rebalance_timeout_ms=join.rebalance_timeout_ms,
            session_timeout_ms=request.session_timeout_ms,
            protocol_type=request.protocol_type,
            protocols=join.protocols,
            join_waiter=join.waiter,
            is_new=True,
        )
        if group.is_in(GroupState.PREPARING_REBALANCE) and group.previous_state is GroupState.EMPTY:
            group.new_member_added = True
        group.add(member)
        # A new member cannot heartbeat while its JoinGroup is parked; if its client gave
        # up and retried, the defunct member must not stall the rebalance forever.
        self._schedule_heartbeat(group, member, self.config.new_member_join_timeout_ms, now_ms)
        self._maybe_prepare_rebalance_or_complete_join(group, now_ms, out)

    def _update_member_then_rebalance(
        self, group: ClassicGroup, member: Member, join: _Join, now_ms: int, out: Result
    ) -> None:
        self._park_join(group, member, join.waiter, out)
        group.update_member(
            member,
            join.protocols,
            join.rebalance_timeout_ms,
            join.request.session_timeout_ms,
            join.waiter,
        )
        self._maybe_prepare_rebalance_or_complete_join(group, now_ms, out)

    def _park_join(self, group: ClassicGroup, member: Member, waiter: int, out: Result) -> None:
        """A member's new JoinGroup replaces one still parked (its client gave up on it
        and reconnected): answer the old one so its connection is not held forever."""
        if member.join_waiter is not None and member.join_waiter != waiter:
            self._complete_join(
                group,
                member,
                _join_error(ErrorCode.REBALANCE_IN_PROGRESS, member.member_id),
                out,
            )

    def _replace_static_member(
        self,
        group: ClassicGroup,
        join: _Join,
        old_member_id: str,
        new_member_id: str,
        now_ms: int,
        out: Result,
    ) -> None:
        """A static member restarted (same group.instance.id, no member id): it takes the
        old member's place. In a Stable group whose protocol does not change that needs no
        rebalance: the new member id is persisted and the member keeps its assignment."""
        request = join.request
        current_leader = group.leader_id
        self._fence(group, group.members[old_member_id], out)
        new = group.replace_static_member(request.group_instance_id, old_member_id, new_member_id)
        self._timers.cancel(("heartbeat", group.group_id, old_member_id))
        self._schedule_heartbeat(group, new, new.session_timeout_ms, now_ms)
        previous = (new.protocols, new.rebalance_timeout_ms, new.session_timeout_ms)
        group.update_member(
            new, join.protocols, join.rebalance_timeout_ms, request.session_timeout_ms, join.waiter
        )
        if group.is_in(GroupState.STABLE):
            if group.protocol_name != group.select_protocol():
                self._maybe_prepare_rebalance_or_complete_join(group, now_ms, out)
                return
            assignments = {m.member_id: m.assignment for m in group.members.values()}
            out.write(
                [GroupMetadataRecord(group.group_id, group.to_record_value(assignments))],
                on_written=partial(
                    self._static_member_written,
                    group.group_id,
                    new_member_id,
                    join.version,
                    current_leader,
                ),
                on_failed=partial(
                    self._static_member_failed,
                    group.group_id,
                    old_member_id,
                    new_member_id,
                    previous,
                    current_leader,
                ),
            )
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            # The leader may be computing an assignment that names the old member id.
            self._prepare_rebalance(group, now_ms, out)
        else:
            self._maybe_complete_join_phase(group, now_ms, out)

    def _static_member_written(
        self,
        group_id: str,
        member_id: str,
        version: int,
        previous_leader: str | None,
        now_ms: int,
    ) -> Result:
        out = Result()
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if group is None or member is None or member.join_waiter is None:
            return out
        is_leader = group.is_leader(member_id)
        if version >= 9:
            # The leader keeps the current assignment: it must not compute a new one.
            response = self._join_response(group, member, with_members=is_leader)
            response.skip_assignment = is_leader
        else:
            response = self._join_response(group, member, with_members=False)
            response.leader = previous_leader or ""
        self._complete_join(group, member, response, out)
        return out

    def _static_member_failed(
        self,
        group_id: str,
        old_member_id: str,
        new_member_id: str,
        previous: tuple[Protocols, int, int],
        previous_leader: str | None,
        error: int,
        now_ms: int,
    ) -> Result:
        """The new member id could not be persisted: the old member id stands again."""
        out = Result()
        group = self.groups.get(group_id)
        member = group.members.get(new_member_id) if group is not None else None
        if group is None or member is None or member.group_instance_id is None:
            return out
        waiter = member.join_waiter
        group.update_member(member, *previous, None)
        old = group.replace_static_member(member.group_instance_id, new_member_id, old_member_id)
        self._timers.cancel(("heartbeat", group_id, new_member_id))
        self._schedule_heartbeat(group, old, old.session_timeout_ms, now_ms)
        out.reply(
            waiter,
            JoinGroupResponse(
                error_code=append_error_to_response_error(error),
                member_id="",
                generation_id=group.generation_id,
                protocol_type=group.protocol_type,
                protocol_name=group.protocol_name or "",
                leader=previous_leader or "",
            ),
        )
        return out

    def _fence(self, group: ClassicGroup, member: Member, out: Result) -> None:
        """Answer a replaced static member's parked requests with FENCED_INSTANCE_ID."""
        self._complete_join(
            group,
            member,
            _join_error(ErrorCode.FENCED_INSTANCE_ID, member.member_id),
            out,
        )
        self._complete_sync(member, SyncGroupResponse(error_code=ErrorCode.FENCED_INSTANCE_ID), out)

    def _join_response(
        self, group: ClassicGroup, member: Member, *, with_members: bool | None = None
    ) -> Any:
        """The current generation as a JoinGroup answer; the member list goes to the
        leader only (unless ``with_members`` says otherwise)."""
        if with_members is None:
            with_members = group.is_leader(member.member_id)
        return JoinGroupResponse(
            error_code=ErrorCode.NONE,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name or "",
            leader=group.leader_id or "",
            skip_assignment=False,
            member_id=member.member_id,
            members=self._member_list(group) if with_members else [],
        )

    @staticmethod
    def _member_list(group: ClassicGroup) -> list[Any]:
        return [
            JoinGroupResponse.JoinGroupResponseMember(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                metadata=m.metadata(group.protocol_name),
            )
            for m in group.members.values()
        ]

    # -- the rebalance ---------------------------------------------------------------------

    def _maybe_prepare_rebalance_or_complete_join(
        self, group: ClassicGroup, now_ms: int, out: Result
    ) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, now_ms, out)
        else:
            self._maybe_complete_join_phase(group, now_ms, out)

    def _prepare_rebalance(self, group: ClassicGroup, now_ms: int, out: Result) -> None:
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            self._reset_and_propagate_assignment_error(
                group, ErrorCode.REBALANCE_IN_PROGRESS, now_ms, out
            )
        group.pending_sync.clear()
        self._timers.cancel(("sync", group.group_id))
        initial = group.is_empty
        if initial:
            # A new group waits group.initial.rebalance.delay.ms for more members,
            # extended while members keep arriving, up to the rebalance timeout.
            delay = self.config.initial_rebalance_delay_ms
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            self._timers.schedule(
                ("join", group.group_id),
                now_ms + delay,
                partial(self._initial_rebalance_timer, group.group_id, delay, remaining),
            )
        group.transition_to(GroupState.PREPARING_REBALANCE, now_ms)
        if initial:
            return
        if group.has_all_members_joined():
            self._complete_join_phase(group, now_ms, out)
        else:
            self._timers.schedule(
                ("join", group.group_id),
                now_ms + group.rebalance_timeout_ms(),
                partial(self._join_timer, group.group_id),
            )

    def _maybe_complete_join_phase(self, group: ClassicGroup, now_ms: int, out: Result) -> None:
        if (
            group.is_in(GroupState.PREPARING_REBALANCE)
            and group.previous_state is not GroupState.EMPTY
            and group.has_all_members_joined()
        ):
            self._complete_join_phase(group, now_ms, out)

    def _initial_rebalance_timer(
        self, group_id: str, delay_ms: int, remaining_ms: int, now_ms: int, out: Result
    ) -> None:
        group = self.groups.get(group_id)
        if group is None:
            return
        if group.new_member_added and remaining_ms != 0:
            group.new_member_added = False
            new_delay = min(self.config.initial_rebalance_delay_ms, remaining_ms)
            new_remaining = max(remaining_ms - delay_ms, 0)
            self._timers.schedule(
                ("join", group_id),
                now_ms + new_delay,
                partial(self._initial_rebalance_timer, group_id, new_delay, new_remaining),
            )
        else:
            self._complete_join_phase(group, now_ms, out)

    def _join_timer(self, group_id: str, now_ms: int, out: Result) -> None:
        group = self.groups.get(group_id)
        if group is not None:
            self._complete_join_phase(group, now_ms, out)

    def _complete_join_phase(self, group: ClassicGroup, now_ms: int, out: Result) -> None:
        """End the join phase: drop dynamic members that did not rejoin, start the next
        generation and answer every parked JoinGroup (the leader gets the members)."""
        group_id = group.group_id
        self._timers.cancel(("join", group_id))
        for member in group.not_yet_rejoined():
            if member.group_instance_id is None:
                self._drop_member(group, member.member_id, out)
        if group.is_in(GroupState.DEAD):
            return
        if group.members and not group.maybe_elect_new_joined_leader():
            # Nobody rejoined: wait for the session timeouts to remove the silent members.
            self._timers.schedule(
                ("join", group_id),
                now_ms + group.rebalance_timeout_ms(),
                partial(self._join_timer, group_id),
            )
            return
        group.init_next_generation(now_ms)
        if group.is_empty:
            out.write(
                [GroupMetadataRecord(group_id, group.to_record_value({}))],
                on_failed=partial(self._log_failed_write, group_id),
            )
            return
        for member in group.members.values():
            self._complete_join(group, member, self._join_response(group, member), out)
            self._schedule_heartbeat(group, member, member.session_timeout_ms, now_ms)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        self._timers.schedule(
            ("sync", group_id),
            now_ms + group.rebalance_timeout_ms(),
            partial(self._sync_timer, group_id, group.generation_id),
        )

    def _sync_timer(self, group_id: str, generation: int, now_ms: int, out: Result) -> None:
        """Members that got this generation but never sent SyncGroup are removed."""
        group = self.groups.get(group_id)
        if group is None or group.generation_id != generation:
            return
        if group.is_in(GroupState.COMPLETING_REBALANCE, GroupState.STABLE) and group.pending_sync:
            for member_id in list(group.pending_sync):
                self._drop_member(group, member_id, out)
            self._prepare_rebalance(group, now_ms, out)

    def _log_failed_write(self, group_id: str, error: int, now_ms: int) -> Result:
        log.warning("could not persist the empty generation of group %r: error %s", group_id, error)
        return Result()

    # -- members leaving -------------------------------------------------------------------

    def _schedule_heartbeat(
        self, group: ClassicGroup, member: Member, timeout_ms: int, now_ms: int
    ) -> None:
        self._timers.schedule(
            ("heartbeat", group.group_id, member.member_id),
            now_ms + timeout_ms,
            partial(self._expire_heartbeat, group.group_id, member.member_id),
        )

    def _expire_heartbeat(self, group_id: str, member_id: str, now_ms: int, out: Result) -> None:
        group = self.groups.get(group_id)
        if group is None or group.is_in(GroupState.DEAD):
            return
        if group.is_pending_member(member_id):
            group.remove(member_id)
            if group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
                self._complete_join_phase(group, now_ms, out)
            return
        member = group.members.get(member_id)
        if member is not None and not member.has_satisfied_heartbeat():
            log.info("member %s of group %r failed (session timeout)", member_id, group_id)
            self._remove_member_and_update_group(group, member_id, now_ms, out)

    def _remove_member_and_update_group(
        self, group: ClassicGroup, member_id: str, now_ms: int, out: Result
    ) -> None:
        self._drop_member(group, member_id, out)
        if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(group, now_ms, out)
        elif group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
            self._complete_join_phase(group, now_ms, out)

    def _drop_member(self, group: ClassicGroup, member_id: str, out: Result) -> None:
        """Remove a member (or pending member); its parked requests learn it is gone, so
        a live client rejoins from scratch."""
        member = group.members.get(member_id)
        if member is not None:
            self._complete_join(group, member, _join_error(ErrorCode.UNKNOWN_MEMBER_ID, ""), out)
            self._complete_sync(
                member, SyncGroupResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID), out
            )
        group.remove(member_id)
        self._timers.cancel(("heartbeat", group.group_id, member_id))

    def _complete_join(
        self, group: ClassicGroup, member: Member, response: Any, out: Result
    ) -> None:
        if member.join_waiter is not None:
            out.reply(member.join_waiter, response)
            group.set_join_waiter(member, None)

    @staticmethod
    def _complete_sync(member: Member, response: Any, out: Result) -> None:
        if member.sync_waiter is not None:
            out.reply(member.sync_waiter, response)
            member.sync_waiter = None

    # -- SyncGroup -------------------------------------------------------------------------

    def sync_group(self, request: Any, *, waiter: int, now_ms: int) -> Result:
        """SyncGroup: the leader's assignment is persisted; once that record is replayed
        every member gets its own assignment."""
        out = Result()
        group = self.groups.get(request.group_id)
        member_id = request.member_id
        if group is None or group.is_empty:
            out.reply(waiter, SyncGroupResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID))
            return self._done(out)
        error = self._validate_sync(group, request)
        if error:
            out.reply(waiter, SyncGroupResponse(error_code=error))
        elif group.is_in(GroupState.PREPARING_REBALANCE):
            out.reply(waiter, SyncGroupResponse(error_code=ErrorCode.REBALANCE_IN_PROGRESS))
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            member = group.members[member_id]
            self._complete_sync(
                member, SyncGroupResponse(error_code=ErrorCode.REBALANCE_IN_PROGRESS), out
            )
            member.sync_waiter = waiter
            self._remove_pending_sync(group, member_id)
            if group.is_leader(member_id):
                assignments = {a.member_id: bytes(a.assignment) for a in request.assignments}
                out.write(
                    [GroupMetadataRecord(group.group_id, group.to_record_value(assignments))],
                    on_failed=partial(self._assignment_failed, group.group_id, group.generation_id),
                )
        else:
            self._remove_pending_sync(group, member_id)
            out.reply(
                waiter,
                SyncGroupResponse(
                    error_code=ErrorCode.NONE,
                    protocol_type=group.protocol_type,
                    protocol_name=group.protocol_name,
                    assignment=group.members[member_id].assignment,
                ),
            )
        return self._done(out)

    @staticmethod
    def _validate_sync(group: ClassicGroup, request: Any) -> int:
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = _validate_member(group, request.member_id, request.group_instance_id)
        if error:
            return error
        if request.generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if _inconsistent(request.protocol_type, group.protocol_type) or _inconsistent(
            request.protocol_name, group.protocol_name
        ):
            return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        return ErrorCode.NONE

    def _remove_pending_sync(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            self._timers.cancel(("sync", group.group_id))

    def _assignment_failed(self, group_id: str, generation: int, error: int, now_ms: int) -> Result:
        out = Result()
        group = self.groups.get(group_id)
        if (
            group is not None
            and group.is_in(GroupState.COMPLETING_REBALANCE)
            and group.generation_id == generation
        ):
            self._reset_and_propagate_assignment_error(
                group, append_error_to_response_error(error), now_ms, out
            )
            self._maybe_prepare_rebalance_or_complete_join(group, now_ms, out)
        return out

    def _reset_and_propagate_assignment_error(
        self, group: ClassicGroup, error: int, now_ms: int, out: Result
    ) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error, now_ms, out)

    def _propagate_assignment(
        self, group: ClassicGroup, error: int, now_ms: int, out: Result
    ) -> None:
        ok = error == ErrorCode.NONE
        for member in group.members.values():
            if member.sync_waiter is None:
                continue
            self._complete_sync(
                member,
                SyncGroupResponse(
                    error_code=error,
                    protocol_type=group.protocol_type if ok else None,
                    protocol_name=group.protocol_name if ok else None,
                    assignment=member.assignment,
                ),
                out,
            )
            # Its session may have lapsed while it waited for the assignment.
            self._schedule_heartbeat(group, member, member.session_timeout_ms, now_ms)

    # -- Heartbeat and LeaveGroup ----------------------------------------------------------

    def heartbeat(self, request: Any, *, waiter: int, now_ms: int) -> Result:
        out = Result()
        out.reply(waiter, HeartbeatResponse(error_code=self._heartbeat(request, now_ms)))
        return self._done(out)

    def _heartbeat(self, request: Any, now_ms: int) -> int:
        group = self.groups.get(request.group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = _validate_member(group, request.member_id, request.group_instance_id)
        if error:
            return error
        if request.generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if group.is_empty:
            return ErrorCode.UNKNOWN_MEMBER_ID
        member = group.members[request.member_id]
        self._schedule_heartbeat(group, member, member.session_timeout_ms, now_ms)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def leave_group(
        self, group_id: str, members: Iterable[tuple[str, str | None]], *, waiter: int, now_ms: int
    ) -> Result:
        """LeaveGroup for ``(member_id, group_instance_id)`` pairs (v3+ batches them; an
        empty member id removes a static member by instance id, as admin tools do).
        Answers the v3+ shape: per-member codes, top-level code for the group."""
        out = Result()
        group = self.groups.get(group_id)
        if group is None:
            out.reply(waiter, LeaveGroupResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID))
            return self._done(out)
        if group.is_in(GroupState.DEAD):
            out.reply(waiter, LeaveGroupResponse(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE))
            return self._done(out)
        responses = []
        left = False
        for member_id, instance_id in members:
            code = self._leave(group, member_id, instance_id)
            left = left or code == ErrorCode.NONE
            responses.append(
                LeaveGroupResponse.MemberResponse(
                    member_id=member_id, group_instance_id=instance_id, error_code=code
                )
            )
            if code == ErrorCode.NONE:
                removed = (
                    group.static_members.get(instance_id)
                    if member_id == "" and instance_id is not None
                    else member_id
                )
                if removed is not None:
                    self._drop_member(group, removed, out)
        if left:
            if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group, now_ms, out)
            elif group.is_in(GroupState.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(group, now_ms, out)
        out.reply(waiter, LeaveGroupResponse(error_code=ErrorCode.NONE, members=responses))
        return self._done(out)

    @staticmethod
    def _leave(group: ClassicGroup, member_id: str, instance_id: str | None) -> int:
        if member_id == "":
            if instance_id is not None and instance_id in group.static_members:
                return ErrorCode.NONE
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_pending_member(member_id):
            return ErrorCode.NONE
        return _validate_member(group, member_id, instance_id)

    # -- offsets ---------------------------------------------------------------------------

    def commit_offsets(self, request: Any, *, version: int, waiter: int, now_ms: int) -> Result:
        """OffsetCommit: answered once the commit records are durable (acks=all)."""
        out = Result()
        group_id = request.group_id
        generation = request.generation_id_or_member_epoch if version >= 1 else -1
        member_id = request.member_id if version >= 1 else ""
        instance_id = request.group_instance_id if version >= 7 else None
        error = self._validate_commit(group_id, member_id, instance_id, generation, version)
        expire_ms = (
            now_ms + request.retention_time_ms
            if 2 <= version <= 4 and request.retention_time_ms != DEFAULT_RETENTION_TIME
            else None
        )
        records: list[CoordinatorRecord] = []
        response = OffsetCommitResponse()
        for topic in request.topics:
            result_topic = OffsetCommitResponse.OffsetCommitResponseTopic(name=topic.name)
            response.topics.append(result_topic)
            for p in topic.partitions:
                code = error
                metadata = p.committed_metadata or ""
                if not code and len(metadata) > self.config.offset_metadata_max_bytes:
                    code = ErrorCode.OFFSET_METADATA_TOO_LARGE
                if not code:
                    records.append(
                        OffsetCommitRecord(
                            group_id,
                            topic.name,
                            p.partition_index,
                            OffsetAndMetadata(
                                offset=p.committed_offset,
                                leader_epoch=p.committed_leader_epoch if version >= 6 else -1,
                                metadata=metadata,
                                commit_timestamp_ms=(
                                    p.commit_timestamp
                                    if version == 1 and p.commit_timestamp != -1
                                    else now_ms
                                ),
                                expire_timestamp_ms=expire_ms,
                            ),
                        )
                    )
                result_topic.partitions.append(
                    OffsetCommitResponse.OffsetCommitResponsePartition(
                        partition_index=p.partition_index, error_code=code
                    )
                )
        keys = [(group_id, r.topic, r.partition) for r in records]
        self._pending_commits.update(keys)

        def settle(written: bool) -> None:
            self._pending_commits.subtract(keys)
            self._pending_commits = +self._pending_commits  # drop the zero counts

        self._reply_after(out, records, waiter, response, _set_commit_error, settle)
        return self._done(out)

    def _validate_commit(
        self,
        group_id: str,
        member_id: str,
        instance_id: str | None,
        generation: int,
        version: int,
    ) -> int:
        group = self.groups.get(group_id)
        if group is None:
            if generation < 0:
                return ErrorCode.NONE  # a "simple" group, created when the record replays
            return ErrorCode.GROUP_ID_NOT_FOUND if version >= 9 else ErrorCode.ILLEGAL_GENERATION
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if generation < 0 and group.is_empty:
            return ErrorCode.NONE
        if generation >= 0 or member_id or instance_id is not None:
            error = _validate_member(group, member_id, instance_id)
            if error:
                return error
            if generation != group.generation_id:
                return ErrorCode.ILLEGAL_GENERATION
        elif not group.is_empty:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def fetch_offsets(
        self, group_id: str, topics: TopicPartitions | None
    ) -> tuple[int, list[tuple[str, list[tuple[int, OffsetAndMetadata | None]]]]]:
        """Committed (replayed) offsets: every one the group has when ``topics`` is None,
        else the requested partitions (None where nothing is committed)."""
        group = self.groups.get(group_id)
        if group is not None and group.is_in(GroupState.DEAD):
            return ErrorCode.GROUP_ID_NOT_FOUND, []
        committed = self.offsets.get(group_id, {})
        if topics is None:
            by_topic: dict[str, list[tuple[int, OffsetAndMetadata | None]]] = {}
            for (topic, partition), offset in sorted(committed.items()):
                by_topic.setdefault(topic, []).append((partition, offset))
            return ErrorCode.NONE, list(by_topic.items())
        return ErrorCode.NONE, [
            (topic, [(p, committed.get((topic, p))) for p in partitions])
            for topic, partitions in topics
        ]

    def delete_offsets(
        self, group_id: str, topics: TopicPartitions, *, waiter: int, now_ms: int
    ) -> Result:
        """OffsetDelete: only for partitions of topics the group does not subscribe to."""
        out = Result()
        group = self.groups.get(group_id)
        if group is None or group.is_in(GroupState.DEAD):
            out.reply(waiter, OffsetDeleteResponse(error_code=ErrorCode.GROUP_ID_NOT_FOUND))
            return self._done(out)
        if not group.is_empty and not group.uses_consumer_protocol():
            out.reply(waiter, OffsetDeleteResponse(error_code=ErrorCode.NON_EMPTY_GROUP))
            return self._done(out)
        committed = self.offsets.get(group_id, {})
        records: list[CoordinatorRecord] = []
        response = OffsetDeleteResponse(error_code=ErrorCode.NONE)
        for topic, partitions in topics:
            subscribed = group.is_subscribed_to(topic)
            result_topic = OffsetDeleteResponse.OffsetDeleteResponseTopic(name=topic)
            response.topics.append(result_topic)
            for partition in partitions:
                if subscribed:
                    code = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
                else:
                    code = ErrorCode.NONE
                    if (topic, partition) in committed:
                        records.append(OffsetCommitRecord(group_id, topic, partition, None))
                result_topic.partitions.append(
                    OffsetDeleteResponse.OffsetDeleteResponsePartition(
                        partition_index=partition, error_code=code
                    )
                )
        self._reply_after(out, records, waiter, response, _set_offset_delete_error)
        return self._done(out)

    @staticmethod
    def _reply_after(
        out: Result,
        records: list[CoordinatorRecord],
        waiter: int,
        response: Any,
        mark_error: Callable[[Any, int], None],
        settle: Callable[[bool], None] | None = None,
    ) -> None:
        """Answer ``response`` once ``records`` are durable (at once if there are none).
        If the write fails, ``mark_error(response, append error)`` marks the answer.
        ``settle(written)`` runs either way, before the answer."""
        if not records:
            out.reply(waiter, response)
            return

        def written(now_ms: int) -> Result:
            if settle is not None:
                settle(True)
            done = Result()
            done.reply(waiter, response)
            return done

        def failed(error: int, now_ms: int) -> Result:
            if settle is not None:
                settle(False)
            mark_error(response, error)
            done = Result()
            done.reply(waiter, response)
            return done

        out.write(records, on_written=written, on_failed=failed)

    # -- groups as a whole -----------------------------------------------------------------

    def describe_group(self, group_id: str) -> Any:
        """DescribeGroups' entry for one group (Dead when unknown, as Kafka answers)."""
        group = self.groups.get(group_id)
        if group is None or group.is_in(GroupState.DEAD):
            return DescribeGroupsResponse.DescribedGroup(
                error_code=ErrorCode.NONE,
                group_id=group_id,
                group_state=GroupState.DEAD.value,
                protocol_type="",
                protocol_data="",
            )
        stable = group.is_in(GroupState.STABLE)
        return DescribeGroupsResponse.DescribedGroup(
            error_code=ErrorCode.NONE,
            group_id=group_id,
            group_state=group.state.value,
            protocol_type=group.protocol_type or "",
            protocol_data=(group.protocol_name or "") if stable else "",
            members=[
                DescribeGroupsResponse.DescribedGroupMember(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    member_metadata=m.metadata(group.protocol_name) if stable else b"",
                    member_assignment=m.assignment if stable else b"",
                )
                for m in group.members.values()
            ],
        )

    def list_groups(
        self, states: set[str] | None = None, types: set[str] | None = None
    ) -> list[Any]:
        """ListGroups' entries; filters compare lower-case, as Kafka does."""
        if types is not None and CLASSIC_GROUP_TYPE not in types:
            return []
        return [
            ListGroupsResponse.ListedGroup(
                group_id=group.group_id,
                protocol_type=group.protocol_type or "",
                group_state=group.state.value,
                group_type=CLASSIC_GROUP_TYPE,
            )
            for group in self.groups.values()
            if not group.is_in(GroupState.DEAD)
            and (states is None or group.state.value.lower() in states)
        ]

    def delete_groups(self, group_ids: Iterable[str], *, waiter: int, now_ms: int) -> Result:
        """DeleteGroups: an Empty group and all its offsets are tombstoned. The groups are
        Dead (no joins, no commits) until the tombstones replay or the write fails."""
        out = Result()
        records: list[CoordinatorRecord] = []
        results = []
        doomed: list[tuple[ClassicGroup, GroupState, GroupState, int | None]] = []
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if group is None or group.is_in(GroupState.DEAD):
                code = ErrorCode.GROUP_ID_NOT_FOUND
            elif not group.is_empty:
                code = ErrorCode.NON_EMPTY_GROUP
            else:
                code = ErrorCode.NONE
                doomed.append((group, group.state, group.previous_state, group.state_timestamp_ms))
                records.extend(self._group_tombstones(group_id))
                group.transition_to(GroupState.DEAD, now_ms)
            results.append(
                DeleteGroupsResponse.DeletableGroupResult(group_id=group_id, error_code=code)
            )

        def revive(written: bool) -> None:
            if written:
                return  # the tombstones replayed: the groups are gone
            for group, state, previous, timestamp in doomed:
                if self.groups.get(group.group_id) is group:
                    group.state, group.previous_state = state, previous
                    group.state_timestamp_ms = timestamp

        def mark_failed(response: list[Any], error: int) -> None:
            doomed_ids = {group.group_id for group, *_ in doomed}
            for result in response:
                if result.group_id in doomed_ids:
                    result.error_code = append_error_to_response_error(error)

        self._reply_after(out, records, waiter, results, mark_failed, revive)
        return self._done(out)

    def _group_tombstones(self, group_id: str) -> list[CoordinatorRecord]:
        """Kafka's order: the offsets' tombstones, then the group's."""
        records: list[CoordinatorRecord] = [
            OffsetCommitRecord(group_id, topic, partition, None)
            for topic, partition in self.offsets.get(group_id, {})
        ]
        records.append(GroupMetadataRecord(group_id, None))
        return records

    # -- offsets expiry --------------------------------------------------------------------

    def _schedule_offsets_expiry(self, now_ms: int) -> None:
        self._timers.schedule(
            ("expire-offsets",),
            now_ms + self.config.offsets_retention_check_interval_ms,
            self._expire_offsets,
        )

    def _expire_offsets(self, now_ms: int, out: Result) -> None:
        """Every offsets.retention.check.interval.ms: tombstone offsets older than
        offsets.retention.minutes (counted from when the group became Empty, or from the
        commit for groups without members), then Empty groups left with no offsets."""
        self._schedule_offsets_expiry(now_ms)
        records: list[CoordinatorRecord] = []
        doomed: list[ClassicGroup] = []
        for group_id, group in self.groups.items():
            all_expired = True
            base = self._expiry_base(group)
            for (topic, partition), offset in self.offsets.get(group_id, {}).items():
                if (
                    base is not None
                    and not group.is_subscribed_to(topic)
                    and (group_id, topic, partition) not in self._pending_commits
                    and self._expired(offset, base(offset), now_ms)
                ):
                    records.append(OffsetCommitRecord(group_id, topic, partition, None))
                else:
                    all_expired = False
            if (
                all_expired
                and group.is_empty
                and not group.pending_join
                and not any(key[0] == group_id for key in self._pending_commits)
            ):
                records.append(GroupMetadataRecord(group_id, None))
                doomed.append(group)
        for group in doomed:
            group.transition_to(GroupState.DEAD, now_ms)
        if records:
            out.write(records, on_failed=partial(self._expiry_failed, doomed))

    def _expiry_failed(self, doomed: list[ClassicGroup], error: int, now_ms: int) -> Result:
        for group in doomed:
            if self.groups.get(group.group_id) is group and group.is_in(GroupState.DEAD):
                group.state, group.previous_state = GroupState.EMPTY, GroupState.DEAD
        log.warning("offsets expiry of partition %d failed: error %s", self.partition, error)
        return Result()

    @staticmethod
    def _expiry_base(group: ClassicGroup) -> Callable[[OffsetAndMetadata], int] | None:
        if group.protocol_type is None:
            return lambda offset: offset.commit_timestamp_ms
        if group.is_empty:
            since = group.state_timestamp_ms
            return lambda offset: offset.commit_timestamp_ms if since is None else since
        if (
            group.uses_consumer_protocol()
            and group.subscribed_topics is not None
            and group.is_in(GroupState.STABLE)
        ):
            return lambda offset: offset.commit_timestamp_ms
        return None

    def _expired(self, offset: OffsetAndMetadata, base_ms: int, now_ms: int) -> bool:
        if offset.expire_timestamp_ms is not None:
            return now_ms >= offset.expire_timestamp_ms
        return now_ms - base_ms >= self.config.offsets_retention_ms

    def _done(self, out: Result) -> Result:
        out.deadline_ms = self._timers.next_deadline()
        return out


@dataclass(frozen=True)
class _Join:
    """One JoinGroup request with its derived values."""

    request: Any
    version: int
    client_id: str
    client_host: str
    waiter: int
    rebalance_timeout_ms: int
    protocols: Protocols


def _join_error(code: int, member_id: str) -> Any:
    return JoinGroupResponse(error_code=code, member_id=member_id)


def _validate_member(group: ClassicGroup, member_id: str, instance_id: str | None) -> int:
    """Kafka's check that a (static) member is who it says it is."""
    if instance_id is not None:
        holder = group.static_members.get(instance_id)
        if holder is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if holder != member_id:
            return ErrorCode.FENCED_INSTANCE_ID
    if member_id not in group.members:
        return ErrorCode.UNKNOWN_MEMBER_ID
    return ErrorCode.NONE


def _inconsistent(requested: str | None, current: str | None) -> bool:
    return requested is not None and current is not None and requested != current


def _set_offset_delete_error(response: Any, error: int) -> None:
    response.error_code = append_error_to_response_error(error)


def _set_commit_error(response: Any, error: int) -> None:
    code = _commit_error(error)
    for topic in response.topics:
        for partition in topic.partitions:
            if partition.error_code == ErrorCode.NONE:
                partition.error_code = code
