"""The group APIs at their oldest and newest versions, spoken on a raw socket.

Real clients exercise the versions they were built for; these drive a whole group
lifecycle with requests built by ``klog.wire`` at the extremes of each API's range, so
the version-dependent shapes (v0 without generations, per-partition errors before
OffsetFetch v2, single-member LeaveGroup before v3, batched and multi-group requests at
the newest versions) are all answered correctly by a real node.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from klog.wire import (
    ConsumerProtocolAssignment,
    DeleteGroupsRequest,
    DescribeGroupsRequest,
    FindCoordinatorRequest,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    ListGroupsRequest,
    OffsetCommitRequest,
    OffsetDeleteRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
)
from klog.wire.errors import ErrorCode as E
from klog.wire.versioned import encode_versioned
from tests.integration.conftest import wait_for
from tests.integration.groups.conftest import create_topic, subscription_bytes, unique
from tests.integration.wire_client import WireConnection

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0


def protocols() -> list[Any]:
    return [
        JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=subscription_bytes("t"))
    ]


def assignment(topic: str, partitions: list[int]) -> bytes:
    return encode_versioned(
        ConsumerProtocolAssignment(
            assigned_partitions=[
                ConsumerProtocolAssignment.TopicPartition(topic=topic, partitions=partitions)
            ]
        ),
        0,
    )


def test_oldest_versions(group_node) -> None:
    topic = create_topic(group_node.bootstrap, unique("v0"), 2)
    group = unique("g")
    wire = WireConnection(group_node.bootstrap, TIMEOUT_S)
    try:
        found = wire.request(FindCoordinatorRequest(key=group), 0)
        assert found.error_code == E.NONE and found.node_id >= 0

        # JoinGroup v0: no rebalance timeout, no member id round trip.
        join = JoinGroupRequest(
            group_id=group,
            session_timeout_ms=10_000,
            member_id="",
            protocol_type="consumer",
            protocols=protocols(),
        )
        joined = wire.request(join, 0)
        assert (joined.error_code, joined.generation_id) == (E.NONE, 1)
        member = joined.member_id
        assert joined.leader == member and [m.member_id for m in joined.members] == [member]

        synced = wire.request(
            SyncGroupRequest(
                group_id=group,
                generation_id=1,
                member_id=member,
                assignments=[
                    SyncGroupRequest.SyncGroupRequestAssignment(
                        member_id=member, assignment=assignment(topic, [0, 1])
                    )
                ],
            ),
            0,
        )
        assert (synced.error_code, synced.assignment) == (E.NONE, assignment(topic, [0, 1]))
        beat = wire.request(HeartbeatRequest(group_id=group, generation_id=1, member_id=member), 0)
        assert beat.error_code == E.NONE

        def commit(version: int, offset: int, **fields: Any) -> list[int]:
            request = OffsetCommitRequest(
                group_id=group,
                topics=[
                    OffsetCommitRequest.OffsetCommitRequestTopic(
                        name=topic,
                        partitions=[
                            OffsetCommitRequest.OffsetCommitRequestPartition(
                                partition_index=0, committed_offset=offset, committed_metadata="m"
                            )
                        ],
                    ),
                    OffsetCommitRequest.OffsetCommitRequestTopic(
                        name="no-such-topic",
                        partitions=[
                            OffsetCommitRequest.OffsetCommitRequestPartition(
                                partition_index=0, committed_offset=1
                            )
                        ],
                    ),
                ],
                **fields,
            )
            response = wire.request(request, version)
            return [p.error_code for t in response.topics for p in t.partitions]

        # v0 has no member id: refused while the group has members.
        assert commit(0, 5) == [E.UNKNOWN_MEMBER_ID, E.UNKNOWN_TOPIC_OR_PARTITION]
        generation = {"generation_id_or_member_epoch": 1, "member_id": member}
        assert commit(1, 6, **generation) == [E.NONE, E.UNKNOWN_TOPIC_OR_PARTITION]
        assert commit(2, 7, retention_time_ms=60_000, **generation)[0] == E.NONE

        fetch = OffsetFetchRequest(
            group_id=group,
            topics=[
                OffsetFetchRequest.OffsetFetchRequestTopic(name=topic, partition_indexes=[0, 1])
            ],
        )
        fetched = wire.request(fetch, 0)
        [(p0, p1)] = [t.partitions for t in fetched.topics]
        assert (p0.committed_offset, p0.metadata, p0.error_code) == (7, "m", E.NONE)
        assert (p1.committed_offset, p1.error_code) == (-1, E.NONE)
        # Before v2 a group-level error (here: an empty group id) is per partition.
        fetch.group_id = ""
        [[bad, _]] = [t.partitions for t in wire.request(fetch, 1).topics]
        assert bad.error_code == E.INVALID_GROUP_ID

        described = wire.request(DescribeGroupsRequest(groups=[group, "nobody"]), 0)
        assert [(g.group_id, g.group_state) for g in described.groups] == [
            (group, "Stable"),
            ("nobody", "Dead"),
        ]
        listed = wire.request(ListGroupsRequest(), 0)
        assert (group, "consumer") in {(g.group_id, g.protocol_type) for g in listed.groups}

        # LeaveGroup v0: one member, its outcome is the top-level error.
        assert wire.request(LeaveGroupRequest(group_id=group, member_id="ghost"), 0).error_code == (
            E.UNKNOWN_MEMBER_ID
        )
        assert (
            wire.request(LeaveGroupRequest(group_id=group, member_id=member), 0).error_code
            == E.NONE
        )
        deleted = wire.request(DeleteGroupsRequest(groups_names=[group]), 0)
        assert [(r.group_id, r.error_code) for r in deleted.results] == [(group, E.NONE)]
    finally:
        wire.close()


def test_newest_versions(group_node) -> None:
    topic = create_topic(group_node.bootstrap, unique("vmax"), 2)
    group, other = unique("g"), unique("g")
    wire = WireConnection(group_node.bootstrap, TIMEOUT_S)
    try:
        found = wire.request(FindCoordinatorRequest(key_type=0, coordinator_keys=[group, other]), 6)
        assert [(c.key, c.error_code) for c in found.coordinators] == [
            (group, E.NONE),
            (other, E.NONE),
        ]
        assert (
            wire.request(FindCoordinatorRequest(key_type=7, coordinator_keys=[group]), 6)
            .coordinators[0]
            .error_code
            == E.INVALID_REQUEST
        )

        join = JoinGroupRequest(
            group_id=group,
            session_timeout_ms=10_000,
            rebalance_timeout_ms=20_000,
            member_id="",
            group_instance_id=None,
            protocol_type="consumer",
            protocols=protocols(),
            reason="test",
        )
        first = wire.request(join, 9)
        assert first.error_code == E.MEMBER_ID_REQUIRED
        join.member_id = first.member_id
        joined = wire.request(join, 9)
        assert (joined.error_code, joined.protocol_type, joined.protocol_name) == (
            E.NONE,
            "consumer",
            "range",
        )
        member, generation = joined.member_id, joined.generation_id
        sync = SyncGroupRequest(
            group_id=group,
            generation_id=generation,
            member_id=member,
            protocol_type="consumer",
            protocol_name="roundrobin",
            assignments=[],
        )
        assert wire.request(sync, 5).error_code == E.INCONSISTENT_GROUP_PROTOCOL
        sync.protocol_name = "range"
        sync.assignments = [
            SyncGroupRequest.SyncGroupRequestAssignment(
                member_id=member, assignment=assignment(topic, [0, 1])
            )
        ]
        synced = wire.request(sync, 5)
        assert (synced.error_code, synced.protocol_name) == (E.NONE, "range")
        beat = HeartbeatRequest(group_id=group, generation_id=generation, member_id=member)
        assert wire.request(beat, 4).error_code == E.NONE

        commit = OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=generation,
            member_id=member,
            topics=[
                OffsetCommitRequest.OffsetCommitRequestTopic(
                    name=topic,
                    partitions=[
                        OffsetCommitRequest.OffsetCommitRequestPartition(
                            partition_index=p,
                            committed_offset=10 + p,
                            committed_leader_epoch=0,
                            committed_metadata=None,
                        )
                        for p in (0, 1)
                    ],
                )
            ],
        )
        committed = wire.request(commit, 9)
        assert [p.error_code for t in committed.topics for p in t.partitions] == [E.NONE] * 2
        commit.group_id, commit.member_id = other, "nobody"
        stranger = wire.request(commit, 9)
        assert {p.error_code for t in stranger.topics for p in t.partitions} == {
            E.GROUP_ID_NOT_FOUND
        }

        fetched = wire.request(
            OffsetFetchRequest(
                groups=[
                    OffsetFetchRequest.OffsetFetchRequestGroup(group_id=group, topics=None),
                    OffsetFetchRequest.OffsetFetchRequestGroup(group_id=other, topics=None),
                    OffsetFetchRequest.OffsetFetchRequestGroup(group_id="", topics=None),
                ],
                require_stable=True,
            ),
            9,
        )
        by_group = {g.group_id: g for g in fetched.groups}
        assert [
            (p.partition_index, p.committed_offset, p.committed_leader_epoch)
            for t in by_group[group].topics
            for p in t.partitions
        ] == [(0, 10, 0), (1, 11, 0)]
        assert by_group[other].topics == [] and by_group[other].error_code == E.NONE
        assert by_group[""].error_code == E.INVALID_GROUP_ID

        listed = wire.request(
            ListGroupsRequest(states_filter=["stable"], types_filter=["classic"]), 5
        )
        assert [(g.group_id, g.group_state, g.group_type) for g in listed.groups] == [
            (group, "Stable", "classic")
        ]
        described = wire.request(
            DescribeGroupsRequest(groups=[group], include_authorized_operations=False), 5
        )
        [d] = described.groups
        assert (d.group_state, d.protocol_data, len(d.members)) == ("Stable", "range", 1)

        offset_delete = OffsetDeleteRequest(
            group_id=group,
            topics=[
                OffsetDeleteRequest.OffsetDeleteRequestTopic(
                    name=topic,
                    partitions=[
                        OffsetDeleteRequest.OffsetDeleteRequestPartition(partition_index=0)
                    ],
                )
            ],
        )
        # The member subscribes to topic "t" only, so this topic's offsets may go.
        deleted = wire.request(offset_delete, 0)
        assert (deleted.error_code, deleted.topics[0].partitions[0].error_code) == (E.NONE, E.NONE)

        leave = LeaveGroupRequest(
            group_id=group,
            members=[
                LeaveGroupRequest.MemberIdentity(member_id=member, reason="done"),
                LeaveGroupRequest.MemberIdentity(member_id="ghost"),
            ],
        )
        left = wire.request(leave, 5)
        assert [(m.member_id, m.error_code) for m in left.members] == [
            (member, E.NONE),
            ("ghost", E.UNKNOWN_MEMBER_ID),
        ]
        deleted_groups = wire.request(DeleteGroupsRequest(groups_names=[group, other, ""]), 2)
        assert [(r.group_id, r.error_code) for r in deleted_groups.results] == [
            (group, E.NONE),
            (other, E.GROUP_ID_NOT_FOUND),
            ("", E.INVALID_GROUP_ID),
        ]
    finally:
        wire.close()


def test_a_parked_join_does_not_block_other_connections(group_node) -> None:
    """JoinGroup waits on the broker; other connections are served meanwhile."""
    group = unique("g")
    first, second = (
        WireConnection(group_node.bootstrap, TIMEOUT_S),
        WireConnection(group_node.bootstrap, TIMEOUT_S),
    )
    try:
        assert first.request(FindCoordinatorRequest(key=group), 0).error_code == E.NONE
        join = JoinGroupRequest(
            group_id=group,
            session_timeout_ms=10_000,
            rebalance_timeout_ms=20_000,
            member_id="",
            protocol_type="consumer",
            protocols=protocols(),
        )
        joined = first.request(join, 3)
        assert joined.error_code == E.NONE
        generation, member = joined.generation_id, joined.member_id
        synced = first.request(
            SyncGroupRequest(
                group_id=group, generation_id=generation, member_id=member, assignments=[]
            ),
            5,
        )
        assert synced.error_code == E.NONE
        # A second member joins (v3: no member id round trip): its JoinGroup waits on the
        # broker until the first member rejoins, which it learns from a heartbeat.
        answer: list[Any] = []
        waiting = threading.Thread(target=lambda: answer.append(second.request(join, 3)))
        waiting.start()
        beat = HeartbeatRequest(group_id=group, generation_id=generation, member_id=member)
        wait_for(
            lambda: first.request(beat, 4).error_code == E.REBALANCE_IN_PROGRESS,
            TIMEOUT_S,
            what="the first member to hear of the rebalance",
        )
        join.member_id = member
        rejoined = first.request(join, 3)
        waiting.join(TIMEOUT_S)
        assert rejoined.generation_id == generation + 1
        assert answer and answer[0].generation_id == generation + 1
    finally:
        first.close()
        second.close()
