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

from collections.abc import Mapping, Sequence
from typing import Any

from klog.client.errors import KafkaError, error_for, raise_for
from klog.client.types import OffsetAndMetadata, TopicPartition
from klog.wire import OffsetCommitRequest, OffsetFetchRequest


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
