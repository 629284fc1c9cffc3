"""Partition assignors of the classic consumer group protocol, as Kafka's Java client has
them: ``range``, ``roundrobin`` (eager) and ``cooperative-sticky`` (incremental).

The group leader decodes every member's ``ConsumerProtocolSubscription`` (wire bytes:
``version int16 | topics, user_data, owned_partitions (v1+), generation_id (v2+),
rack_id (v3+)``) into a ``MemberSubscription``, runs the assignor chosen by the
coordinator, and encodes each result as a ``ConsumerProtocolAssignment``. Members are
ordered as Java orders them: by ``group_instance_id`` when set (static members keep
their place across restarts), else by member id.

``cooperative-sticky`` keeps every member's still-valid owned partitions, balances the
rest, and, being incremental, never hands a partition to a new owner in the same
rebalance in which its previous owner still holds it: such a partition is left out,
the previous owner revokes it, rejoins, and the next rebalance assigns it.

Pure functions of their inputs; safe to share.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from klog.client.types import TopicPartition
from klog.wire import ConsumerProtocolAssignment, ConsumerProtocolSubscription
from klog.wire.versioned import decode_consumer_protocol, encode_versioned

SUBSCRIPTION_VERSION = 3
ASSIGNMENT_VERSION = 3


@dataclass(frozen=True)
class MemberSubscription:
    member_id: str
    topics: Sequence[str]
    owned_partitions: Sequence[TopicPartition] = ()
    generation_id: int = -1
    group_instance_id: str | None = None
    user_data: bytes | None = None
    rack_id: str | None = None

    @property
    def sort_key(self) -> tuple[int, str]:
        # Java's MemberInfo ordering: static members first by instance id, then member id.
        if self.group_instance_id is not None:
            return (0, self.group_instance_id + "\0" + self.member_id)
        return (1, self.member_id)


class Assignor(Protocol):
    name: str
    cooperative: bool

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
    ) -> dict[str, list[TopicPartition]]: ...


def _empty(members: Sequence[MemberSubscription]) -> dict[str, list[TopicPartition]]:
    return {m.member_id: [] for m in members}


class RangeAssignor:
    """Per topic, consecutive ranges of partitions; the first members get one extra."""

    name = "range"
    cooperative = False

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
    ) -> dict[str, list[TopicPartition]]:
        result = _empty(members)
        by_topic: dict[str, list[MemberSubscription]] = defaultdict(list)
        for member in members:
            for topic in member.topics:
                by_topic[topic].append(member)
        for topic, subscribers in by_topic.items():
            count = partitions_per_topic.get(topic, 0)
            if count <= 0:
                continue
            ordered = sorted(subscribers, key=lambda m: m.sort_key)
            each, extra = divmod(count, len(ordered))
            for i, member in enumerate(ordered):
                start = each * i + min(i, extra)
                length = each + (1 if i < extra else 0)
                result[member.member_id].extend(
                    TopicPartition(topic, p) for p in range(start, start + length)
                )
        return {m: sorted(tps) for m, tps in result.items()}


class RoundRobinAssignor:
    """All partitions in (topic, partition) order dealt to members in turn, skipping
    members not subscribed to the partition's topic."""

    name = "roundrobin"
    cooperative = False

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
    ) -> dict[str, list[TopicPartition]]:
        result = _empty(members)
        ordered = sorted(members, key=lambda m: m.sort_key)
        if not ordered:
            return result
        topics = sorted({t for m in members for t in m.topics if t in partitions_per_topic})
        subscribed = {m.member_id: set(m.topics) for m in ordered}
        index = 0
        for topic in topics:
            for p in range(partitions_per_topic[topic]):
                for _ in range(len(ordered)):
                    member = ordered[index % len(ordered)]
                    index += 1
                    if topic in subscribed[member.member_id]:
                        result[member.member_id].append(TopicPartition(topic, p))
                        break
        return result


class CooperativeStickyAssignor:
    """Balanced and sticky: owned partitions stay put unless balance needs them moved."""

    name = "cooperative-sticky"
    cooperative = True

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
    ) -> dict[str, list[TopicPartition]]:
        ordered = sorted(members, key=lambda m: m.sort_key)
        subscribed = {m.member_id: set(m.topics) for m in ordered}
        all_partitions = sorted(
            TopicPartition(t, p)
            for t in {t for m in ordered for t in m.topics}
            for p in range(partitions_per_topic.get(t, 0))
        )
        eligible: dict[TopicPartition, list[str]] = {
            tp: [m.member_id for m in ordered if tp.topic in subscribed[m.member_id]]
            for tp in all_partitions
        }
        valid = set(all_partitions)
        # An owned partition claimed by two members goes to the newer generation's claim.
        owner: dict[TopicPartition, tuple[int, str]] = {}
        for m in ordered:
            for tp in m.owned_partitions:
                tp = TopicPartition(*tp)
                if tp not in valid or tp.topic not in subscribed[m.member_id]:
                    continue
                if tp not in owner or m.generation_id > owner[tp][0]:
                    owner[tp] = (m.generation_id, m.member_id)
        assignment: dict[str, set[TopicPartition]] = {m.member_id: set() for m in ordered}
        for tp, (_gen, member_id) in owner.items():
            assignment[member_id].add(tp)
        for tp in all_partitions:
            if tp not in owner and eligible[tp]:
                target = min(eligible[tp], key=lambda mid: (len(assignment[mid]), mid))
                assignment[target].add(tp)
        self._balance(assignment, eligible)
        # Incremental: a partition moving away from its current owner is withheld this
        # round; the owner revokes it and the follow-up rebalance assigns it.
        previous = {tp: mid for tp, (_gen, mid) in owner.items()}
        for member_id, tps in assignment.items():
            for tp in list(tps):
                if previous.get(tp, member_id) != member_id:
                    tps.discard(tp)
        return {m: sorted(tps) for m, tps in assignment.items()}

    @staticmethod
    def _balance(
        assignment: dict[str, set[TopicPartition]], eligible: Mapping[TopicPartition, list[str]]
    ) -> None:
        """Move partitions from the most to the least loaded eligible member until no
        move narrows the gap (each move strictly reduces the sum of squared loads)."""
        moved = True
        while moved:
            moved = False
            for member_id in sorted(assignment, key=lambda m: (-len(assignment[m]), m)):
                load = len(assignment[member_id])
                for tp in sorted(assignment[member_id]):
                    target = min(
                        eligible[tp], key=lambda mid: (len(assignment[mid]), mid), default=None
                    )
                    if target is not None and len(assignment[target]) + 1 < load:
                        assignment[member_id].discard(tp)
                        assignment[target].add(tp)
                        moved = True
                        break
                if moved:
                    break


ASSIGNORS: dict[str, type[RangeAssignor | RoundRobinAssignor | CooperativeStickyAssignor]] = {
    "range": RangeAssignor,
    "roundrobin": RoundRobinAssignor,
    "cooperative-sticky": CooperativeStickyAssignor,
}


def _group(partitions: Sequence[TopicPartition]) -> dict[str, list[int]]:
    by_topic: dict[str, list[int]] = defaultdict(list)
    for tp in partitions:
        by_topic[tp.topic].append(tp.partition)
    return by_topic


def encode_subscription(
    topics: Sequence[str],
    owned: Sequence[TopicPartition] = (),
    generation_id: int = -1,
    rack_id: str | None = None,
) -> bytes:
    message = ConsumerProtocolSubscription(
        topics=sorted(topics),
        user_data=None,
        owned_partitions=[
            ConsumerProtocolSubscription.TopicPartition(topic=t, partitions=sorted(ps))
            for t, ps in sorted(_group(owned).items())
        ],
        generation_id=generation_id,
        rack_id=rack_id,
    )
    return encode_versioned(message, SUBSCRIPTION_VERSION)


def decode_subscription(
    member_id: str, group_instance_id: str | None, data: bytes
) -> MemberSubscription:
    message, _version = decode_consumer_protocol(ConsumerProtocolSubscription, data)
    owned = [
        TopicPartition(tp.topic, p)
        for tp in (getattr(message, "owned_partitions", None) or ())
        for p in tp.partitions
    ]
    return MemberSubscription(
        member_id=member_id,
        topics=list(message.topics),
        owned_partitions=owned,
        generation_id=getattr(message, "generation_id", -1),
        group_instance_id=group_instance_id,
        user_data=message.user_data,
        rack_id=getattr(message, "rack_id", None),
    )


def encode_assignment(partitions: Sequence[TopicPartition]) -> bytes:
    message = ConsumerProtocolAssignment(
        assigned_partitions=[
            ConsumerProtocolAssignment.TopicPartition(topic=t, partitions=sorted(ps))
            for t, ps in sorted(_group(partitions).items())
        ],
        user_data=None,
    )
    return encode_versioned(message, ASSIGNMENT_VERSION)


def decode_assignment(data: bytes) -> list[TopicPartition]:
    if not data:
        return []
    message, _version = decode_consumer_protocol(ConsumerProtocolAssignment, data)
    return sorted(
        TopicPartition(tp.topic, p) for tp in message.assigned_partitions for p in tp.partitions
    )
