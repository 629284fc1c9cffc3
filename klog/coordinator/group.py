"""A classic consumer group in memory: members, generation, state and protocol.

This mirrors Kafka's ``ClassicGroup``/``ClassicGroupMember``. The fields persisted in a
``GroupMetadataValue`` (generation, protocol type and name, leader, members with their
subscription and assignment, the state timestamp) are what a coordinator rebuilds when it
loads the group; the rest (who is awaiting a JoinGroup or SyncGroup answer, pending
members, pending syncs) is the rebalance in progress, which Kafka never persists either.

Invariants: ``members`` keeps join order (the first member becomes leader);
``static_members`` maps each group.instance.id to the member id holding it;
``awaiting_join`` counts members with a parked JoinGroup; ``protocol_votes`` counts, per
protocol name, the members supporting it. Owned by one coordinator shard; not shared.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

from klog.wire import ConsumerProtocolSubscription, GroupMetadataValue
from klog.wire.exceptions import DecodeError
from klog.wire.versioned import decode_consumer_protocol

CONSUMER_PROTOCOL_TYPE = "consumer"


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_VALID_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY}
    ),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    GroupState.DEAD: frozenset(GroupState),
}


class IllegalTransition(Exception):
    """A state change Kafka's group state machine does not allow: a coordinator bug."""


Protocols = tuple[tuple[str, bytes], ...]


@dataclass
class Member:
    """One member; ``join_waiter`` / ``sync_waiter`` name its parked request, if any."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    assignment: bytes = b""
    join_waiter: int | None = None
    sync_waiter: int | None = None
    # A member added in the current rebalance: its session expiry is not satisfied by
    # a parked JoinGroup (it never heartbeated).
    is_new: bool = False

    @property
    def awaiting_join(self) -> bool:
        return self.join_waiter is not None

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_waiter is not None

    def has_satisfied_heartbeat(self) -> bool:
        """When its session timer fires: is the member still considered alive?"""
        if self.is_new:
            return False
        return self.awaiting_join or self.awaiting_sync

    def vote(self, candidates: set[str]) -> str:
        """Its most preferred protocol among ``candidates``."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError(f"member {self.member_id} supports none of {sorted(candidates)}")

    def metadata(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def matches(self, protocols: Protocols) -> bool:
        return self.protocols == protocols


@dataclass
class ClassicGroup:
    """See the module docstring."""

    group_id: str
    state: GroupState = GroupState.EMPTY
    previous_state: GroupState = GroupState.DEAD
    state_timestamp_ms: int | None = None
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    pending_join: set[str] = field(default_factory=set)
    pending_sync: set[str] = field(default_factory=set)
    awaiting_join: int = 0
    protocol_votes: Counter[str] = field(default_factory=Counter)
    new_member_added: bool = False
    # Topics the members subscribe to (consumer protocol only); None when unknown.
    subscribed_topics: frozenset[str] | None = None

    # -- queries --------------------------------------------------------------------------

    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    @property
    def is_empty(self) -> bool:
        return self.state is GroupState.EMPTY

    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id is not None and self.leader_id == member_id

    def is_pending_member(self, member_id: str) -> bool:
        return member_id in self.pending_join

    def can_rebalance(self) -> bool:
        return self.state in _VALID_PREVIOUS[GroupState.PREPARING_REBALANCE]

    def has_all_members_joined(self) -> bool:
        return len(self.members) == self.awaiting_join and not self.pending_join

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def uses_consumer_protocol(self) -> bool:
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    def is_subscribed_to(self, topic: str) -> bool:
        if self.subscribed_topics is None:
            return self.uses_consumer_protocol()
        return topic in self.subscribed_topics

    def supports_protocols(self, protocol_type: str, names: set[str]) -> bool:
        """Could a member with these protocols join? (Kafka: an empty group takes any
        non-empty type and list; otherwise the type must match and one protocol must be
        supported by every current member.)"""
        if self.is_empty:
            return bool(protocol_type) and bool(names)
        return self.protocol_type == protocol_type and any(
            self.protocol_votes[name] == len(self.members) for name in names
        )

    def select_protocol(self) -> str:
        """Kafka's vote: each member votes for its most preferred protocol among those all
        members support; most votes wins (ties: the earliest joined member's vote)."""
        candidates = {n for n, c in self.protocol_votes.items() if c == len(self.members)}
        votes = Counter(member.vote(candidates) for member in self.members.values())
        best = max(votes.values())
        return next(name for name, count in votes.items() if count == best)

    def not_yet_rejoined(self) -> list[Member]:
        return [m for m in self.members.values() if not m.awaiting_join]

    # -- changes --------------------------------------------------------------------------

    def transition_to(self, state: GroupState, now_ms: int) -> None:
        if self.state not in _VALID_PREVIOUS[state]:
            raise IllegalTransition(
                f"group {self.group_id!r} cannot go from {self.state.value} to {state.value}"
            )
        self.previous_state = self.state
        self.state = state
        self.state_timestamp_ms = now_ms

    def add(self, member: Member) -> None:
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.protocol_votes.update(name for name, _ in member.protocols)
        if member.awaiting_join:
            self.awaiting_join += 1
        self.pending_join.discard(member.member_id)

    def remove(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        if member is not None:
            self.protocol_votes.subtract(name for name, _ in member.protocols)
            if member.awaiting_join:
                self.awaiting_join -= 1
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.is_leader(member_id):
            self.leader_id = next(iter(self.members), None)
        self.pending_join.discard(member_id)
        self.pending_sync.discard(member_id)

    def update_member(
        self,
        member: Member,
        protocols: Protocols,
        rebalance_timeout_ms: int,
        session_timeout_ms: int,
        join_waiter: int | None,
    ) -> None:
        self.protocol_votes.subtract(name for name, _ in member.protocols)
        member.protocols = protocols
        self.protocol_votes.update(name for name, _ in protocols)
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        self.set_join_waiter(member, join_waiter)

    def set_join_waiter(self, member: Member, waiter: int | None) -> None:
        if waiter is not None and not member.awaiting_join:
            self.awaiting_join += 1
        elif waiter is None and member.awaiting_join:
            self.awaiting_join -= 1
        member.join_waiter = waiter

    def replace_static_member(self, instance_id: str, old_id: str, new_id: str) -> Member:
        """Give a static member's identity to a new member id (assignment kept). The
        caller answers the old member's parked requests with FENCED_INSTANCE_ID first."""
        old = self.members.pop(old_id)
        if old.awaiting_join:
            self.awaiting_join -= 1
        new = Member(
            member_id=new_id,
            group_instance_id=old.group_instance_id,
            client_id=old.client_id,
            client_host=old.client_host,
            rebalance_timeout_ms=old.rebalance_timeout_ms,
            session_timeout_ms=old.session_timeout_ms,
            protocol_type=old.protocol_type,
            protocols=old.protocols,
            assignment=old.assignment,
        )
        self.members[new_id] = new
        if self.is_leader(old_id):
            self.leader_id = new_id
        self.static_members[instance_id] = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        return new

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep the leader if it rejoined, else pick a member that did; False if none did."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].awaiting_join:
            return True
        for member in self.members.values():
            if member.awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    def init_next_generation(self, now_ms: int) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed_topics = self.compute_subscribed_topics()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.subscribed_topics = self.compute_subscribed_topics()
            self.transition_to(GroupState.EMPTY, now_ms)
        self.pending_sync.clear()

    def compute_subscribed_topics(self) -> frozenset[str] | None:
        """The union of the members' subscriptions (consumer protocol), or None when the
        group does not use the consumer protocol or a subscription cannot be parsed."""
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        if not self.members:
            return frozenset()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        try:
            for member in self.members.values():
                subscription, _ = decode_consumer_protocol(
                    ConsumerProtocolSubscription, member.metadata(self.protocol_name)
                )
                topics.update(subscription.topics)
        except DecodeError:
            return None
        return frozenset(topics)

    # -- persistence ----------------------------------------------------------------------

    def to_record_value(self, assignments: dict[str, bytes]) -> GroupMetadataValue:
        """The ``GroupMetadataValue`` of this generation with the given assignments."""
        return GroupMetadataValue(
            protocol_type=self.protocol_type or "",
            generation=self.generation_id,
            protocol=self.protocol_name,
            leader=self.leader_id,
            current_state_timestamp=(
                -1 if self.state_timestamp_ms is None else self.state_timestamp_ms
            ),
            members=[
                GroupMetadataValue.MemberMetadata(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout=m.rebalance_timeout_ms,
                    session_timeout=m.session_timeout_ms,
                    subscription=m.metadata(self.protocol_name),
                    assignment=assignments.get(m.member_id, b""),
                )
                for m in self.members.values()
            ],
        )

    @classmethod
    def from_record_value(cls, group_id: str, value: GroupMetadataValue) -> ClassicGroup:
        """Rebuild a group as Kafka loads it: Stable with its members, or Empty."""
        group = cls(
            group_id=group_id,
            state=GroupState.STABLE if value.members else GroupState.EMPTY,
            state_timestamp_ms=(
                None if value.current_state_timestamp == -1 else value.current_state_timestamp
            ),
            generation_id=value.generation,
            protocol_type=value.protocol_type or None,
            protocol_name=value.protocol,
            leader_id=value.leader,
        )
        for m in value.members:
            group.add(
                Member(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout_ms=(
                        m.session_timeout if m.rebalance_timeout == -1 else m.rebalance_timeout
                    ),
                    session_timeout_ms=m.session_timeout,
                    protocol_type=value.protocol_type,
                    protocols=((value.protocol or "", m.subscription),),
                    assignment=m.assignment,
                )
            )
        # add() makes the first member leader; the record says who leads.
        group.leader_id = value.leader
        group.subscribed_topics = group.compute_subscribed_topics()
        return group
