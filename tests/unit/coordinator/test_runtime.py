"""The trio runtime on trio's MockClock, over a real log, partition and replica manager."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing

from klog.controller.image import PartitionState
from klog.coordinator import (
    OFFSETS_TOPIC,
    GroupConfig,
    GroupCoordinator,
    OffsetAndMetadata,
    iter_log_batches,
    partition_for_group,
)
from klog.replication import ReplicaManager
from klog.segment import LogConfig, LogManager, TopicPartition
from klog.server.router import error_code_for
from klog.wire import (
    HeartbeatRequest,
    JoinGroupRequest,
    OffsetCommitRequest,
    SyncGroupRequest,
)
from klog.wire.errors import ErrorCode as E
from klog.wire.errors import KafkaError

NODE = 1
START_MS = 1_700_000_000_000
TOPIC_ID = uuid.uuid4()


def run(test: Callable[..., object], *args: object) -> None:
    trio.run(test, *args, clock=trio.testing.MockClock(autojump_threshold=0))


def clock_ms() -> int:
    return START_MS + int(trio.current_time() * 1000)


@dataclass
class Node:
    replicas: ReplicaManager
    logs: LogManager
    coordinator: GroupCoordinator
    epoch: int = 0

    def lead(self, partitions: int = 1, leader: int = NODE, isr: tuple[int, ...] = (NODE,)) -> None:
        """Publish a leadership change, as the node does from the metadata image."""
        self.epoch += 1
        for p in range(partitions):
            self.replicas.update_partition(
                TopicPartition(OFFSETS_TOPIC, p),
                TOPIC_ID,
                PartitionState(
                    topic_id=TOPIC_ID,
                    partition=p,
                    replicas=(NODE, 2),
                    isr=isr,
                    leader=leader,
                    leader_epoch=self.epoch,
                    partition_epoch=self.epoch,
                ),
            )

    def log_records(self, partition: int = 0) -> list[object]:
        log = self.logs.get_log(TopicPartition(OFFSETS_TOPIC, partition))
        assert log is not None
        records: list[object] = []
        offset = log.log_start_offset
        while offset < log.log_end_offset:  # one read per segment
            data = log.read(offset, 1 << 20).read_bytes()
            for next_offset, batch in iter_log_batches(data):
                records.extend(batch)
                offset = next_offset
        return records


@asynccontextmanager
async def node(
    data: Path, topic_config: LogConfig | None = None, **config: int
) -> AsyncIterator[Node]:
    logs = LogManager([data], LogConfig(), clock_ms=clock_ms)
    replicas = ReplicaManager(NODE, logs, lambda topic: topic_config or LogConfig(), clock_ms)
    coordinator = GroupCoordinator(
        GroupConfig(**{"num_partitions": 1, **config}),
        replicas,
        error_code_for=error_code_for,
        clock_ms=clock_ms,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(coordinator.run)
        yield Node(replicas, logs, coordinator)
        nursery.cancel_scope.cancel()
    logs.close()


async def wait_active(coordinator: GroupCoordinator, group_id: str = "g") -> None:
    with trio.fail_after(5):
        while True:
            try:
                coordinator.shard_for(group_id)
                return
            except KafkaError as exc:
                assert exc.code == E.COORDINATOR_LOAD_IN_PROGRESS
                await trio.sleep(0.001)


async def first_write(coordinator: GroupCoordinator) -> None:
    """The first append of a leader epoch fsyncs in a worker thread, during which the
    MockClock jumps ahead; get it over with before timing anything."""
    request = commit_request("", -1, 0, "")
    request.group_id = "warm-up"
    response = await coordinator.commit_offsets(request, version=8)
    assert response.topics[0].partitions[0].error_code == E.NONE


def join_request(member_id: str = "", session: int = 10_000, rebalance: int = 30_000):
    return JoinGroupRequest(
        group_id="g",
        session_timeout_ms=session,
        rebalance_timeout_ms=rebalance,
        member_id=member_id,
        protocol_type="consumer",
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=b"m")],
    )


async def join(coordinator: GroupCoordinator, **kwargs: int) -> object:
    first = await coordinator.join_group(
        join_request(**kwargs), version=9, client_id="c", client_host="/127.0.0.1"
    )
    assert first.error_code == E.MEMBER_ID_REQUIRED
    return await coordinator.join_group(
        join_request(first.member_id, **kwargs), version=9, client_id="c", client_host="/h"
    )


async def stable_pair(coordinator: GroupCoordinator) -> tuple[list[str], int]:
    answers: list[object] = []

    async def member() -> None:
        answers.append(await join(coordinator))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(member)
        nursery.start_soon(member)
    generation = answers[0].generation_id
    assert {a.generation_id for a in answers} == {generation}
    leader = answers[0].leader
    members = sorted(a.member_id for a in answers)
    syncs: dict[str, object] = {}

    async def sync(member_id: str) -> None:
        syncs[member_id] = await coordinator.sync_group(
            SyncGroupRequest(
                group_id="g",
                generation_id=generation,
                member_id=member_id,
                assignments=[
                    SyncGroupRequest.SyncGroupRequestAssignment(member_id=m, assignment=m.encode())
                    for m in members
                ]
                if member_id == leader
                else [],
            )
        )

    async with trio.open_nursery() as nursery:
        for m in members:
            nursery.start_soon(sync, m)
    assert {m: s.assignment for m, s in syncs.items()} == {m: m.encode() for m in members}
    return members, generation


def commit_request(member_id: str, generation: int, offset: int, metadata: str):
    return OffsetCommitRequest(
        group_id="g",
        generation_id_or_member_epoch=generation,
        member_id=member_id,
        topics=[
            OffsetCommitRequest.OffsetCommitRequestTopic(
                name="t",
                partitions=[
                    OffsetCommitRequest.OffsetCommitRequestPartition(
                        partition_index=0, committed_offset=offset, committed_metadata=metadata
                    )
                ],
            )
        ],
    )


def test_group_lifecycle_and_offsets_survive_a_restart(tmp_path: Path) -> None:
    async def main() -> None:
        async with node(tmp_path) as n:
            n.lead()
            await wait_active(n.coordinator)
            await first_write(n.coordinator)
            started = trio.current_time()
            members, generation = await stable_pair(n.coordinator)
            # The initial delay ran (3s), extended once for the second member.
            assert trio.current_time() - started == pytest.approx(6.0, abs=0.01)
            response = await n.coordinator.commit_offsets(
                commit_request(members[0], generation, 42, "meta ✓"), version=8
            )
            assert response.topics[0].partitions[0].error_code == E.NONE
            committed_at = clock_ms()
            described = n.coordinator.describe_group("g")
            assert described.group_state == "Stable"
            assert len(n.log_records()) == 4  # warm-up, new group, assignment, commit
        async with node(tmp_path) as n:
            n.lead()
            await wait_active(n.coordinator)
            assert n.coordinator.fetch_offsets("g", [("t", [0])]) == (
                E.NONE,
                [("t", [(0, OffsetAndMetadata(42, -1, "meta ✓", committed_at))])],
            )
            reloaded = n.coordinator.describe_group("g")
            assert reloaded == described

    run(main)


def test_session_timeout_runs_on_the_runtimes_timers(tmp_path: Path) -> None:
    async def main() -> None:
        async with node(tmp_path) as n:
            n.lead()
            await wait_active(n.coordinator)
            await first_write(n.coordinator)
            (a, _b), generation = await stable_pair(n.coordinator)
            heartbeats = []
            while True:  # a heartbeats every 3s; b is silent
                await trio.sleep(3)
                response = await n.coordinator.heartbeat(
                    HeartbeatRequest(group_id="g", generation_id=generation, member_id=a)
                )
                heartbeats.append(response.error_code)
                if response.error_code != E.NONE:
                    break
            assert heartbeats == [E.NONE, E.NONE, E.NONE, E.REBALANCE_IN_PROGRESS]
            rejoin = await n.coordinator.join_group(
                join_request(a), version=9, client_id="c", client_host="/h"
            )
            assert (rejoin.generation_id, [m.member_id for m in rejoin.members]) == (
                generation + 1,
                [a],
            )

    run(main)


def test_loading_and_not_coordinator(tmp_path: Path) -> None:
    async def main() -> None:
        async with node(tmp_path, num_partitions=2) as n:
            mine = next(g for g in ("a", "b", "c", "d") if partition_for_group(g, 2) == 0)
            theirs = next(g for g in ("a", "b", "c", "d") if partition_for_group(g, 2) == 1)
            with pytest.raises(KafkaError) as not_yet:
                n.coordinator.shard_for(mine)
            assert not_yet.value.code == E.NOT_COORDINATOR
            n.lead(partitions=1)
            with pytest.raises(KafkaError) as loading:
                n.coordinator.shard_for(mine)
            assert loading.value.code == E.COORDINATOR_LOAD_IN_PROGRESS
            await wait_active(n.coordinator, mine)
            with pytest.raises(KafkaError) as other:
                n.coordinator.shard_for(theirs)
            assert other.value.code == E.NOT_COORDINATOR
            with pytest.raises(KafkaError) as empty:
                n.coordinator.shard_for("")
            assert empty.value.code == E.INVALID_GROUP_ID

    run(main)


def test_resigning_answers_parked_joins_not_coordinator(tmp_path: Path) -> None:
    async def main() -> None:
        async with node(tmp_path) as n:
            n.lead()
            await wait_active(n.coordinator)
            answers = []

            async def member() -> None:
                answers.append(await join(n.coordinator))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(member)
                await trio.sleep(1)  # parked in the initial rebalance delay
                n.lead(leader=2)
            assert [a.error_code for a in answers] == [E.NOT_COORDINATOR]
            with pytest.raises(KafkaError) as gone:
                await n.coordinator.heartbeat(
                    HeartbeatRequest(group_id="g", generation_id=1, member_id="x")
                )
            assert gone.value.code == E.NOT_COORDINATOR

    run(main)


def test_closing_answers_parked_joins(tmp_path: Path) -> None:
    async def main() -> None:
        async with node(tmp_path) as n:
            n.lead()
            await wait_active(n.coordinator)
            answers = []

            async def member() -> None:
                answers.append(await join(n.coordinator))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(member)
                await trio.sleep(1)
                n.coordinator.close()
            assert [a.error_code for a in answers] == [E.NOT_COORDINATOR]

    run(main)


def test_a_commit_that_cannot_be_made_durable_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        async with node(tmp_path, topic_config=LogConfig(min_insync_replicas=2)) as n:
            n.lead()
            await wait_active(n.coordinator)
            response = await n.coordinator.commit_offsets(commit_request("", -1, 7, ""), version=8)
            assert response.topics[0].partitions[0].error_code == E.COORDINATOR_NOT_AVAILABLE
            assert n.coordinator.fetch_offsets("g", [("t", [0])]) == (E.NONE, [("t", [(0, None)])])
            assert n.log_records() == []

    run(main)


def test_concurrent_commits_are_all_durable_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        async with node(tmp_path) as n:
            n.lead()
            await wait_active(n.coordinator)
            codes = []

            async def commit(offset: int) -> None:
                response = await n.coordinator.commit_offsets(
                    commit_request("", -1, offset, str(offset)), version=8
                )
                codes.append(response.topics[0].partitions[0].error_code)

            async with trio.open_nursery() as nursery:
                for offset in range(50):
                    nursery.start_soon(commit, offset)
            assert codes == [E.NONE] * 50
            written = [r.value.offset for r in n.log_records()]
            assert sorted(written) == list(range(50))
            # The offset the coordinator serves is the last one in the log.
            _, [(_, [(_, served)])] = n.coordinator.fetch_offsets("g", [("t", [0])])
            assert served.offset == written[-1]

    run(main)


def test_a_repeated_leadership_notice_keeps_the_loaded_state(tmp_path: Path) -> None:
    async def main() -> None:
        async with node(tmp_path) as n:
            n.lead()
            await wait_active(n.coordinator)
            await first_write(n.coordinator)
            partition = n.replicas.get_partition(OFFSETS_TOPIC, 0)
            n.coordinator.on_become_leader(partition)
            shard = n.coordinator.shard_for("warm-up")  # still active, not reloading
            assert shard.fetch_offsets("warm-up", None)[1][0][0] == "t"

    run(main)


def test_a_commit_in_flight_when_the_node_stops_is_answered_truthfully(tmp_path: Path) -> None:
    async def main() -> None:
        answers = []

        async def commit(coordinator: GroupCoordinator) -> None:
            request = commit_request("", -1, 2, "")
            answers.append(await coordinator.commit_offsets(request, version=8))

        # flush.messages=1: every append waits for an fsync in a worker thread.
        async with (
            trio.open_nursery() as outer,
            node(tmp_path, topic_config=LogConfig(flush_messages=1)) as n,
        ):
            n.lead()
            await wait_active(n.coordinator)
            outer.start_soon(commit, n.coordinator)
            await trio.sleep(0.001)  # the commit's append is in its fsync; the node stops
            assert answers == []
        # The fsync finished, so the commit is durable and is acknowledged as such.
        assert answers[0].topics[0].partitions[0].error_code == E.NONE
        async with node(tmp_path) as n:
            n.lead()
            await wait_active(n.coordinator)
            _, [(_, [(_, committed)])] = n.coordinator.fetch_offsets("g", [("t", [0])])
            assert committed.offset == 2

    run(main)


@pytest.mark.parametrize("how", ["resign", "stop"])
def test_losing_the_partition_answers_the_commit_in_flight_and_the_queued_ones(
    tmp_path: Path, how: str
) -> None:
    async def main() -> None:
        answers: dict[int, int] = {}

        async def commit(coordinator: GroupCoordinator, offset: int) -> None:
            response = await coordinator.commit_offsets(
                commit_request("", -1, offset, ""), version=8
            )
            answers[offset] = response.topics[0].partitions[0].error_code

        # Holding every worker-thread token parks the first append (its fsync needs a
        # thread) at a checkpoint, deterministically, even on the MockClock.
        limiter = trio.to_thread.current_default_thread_limiter()
        borrowers = [object() for _ in range(int(limiter.total_tokens))]
        for borrower in borrowers:
            limiter.acquire_on_behalf_of_nowait(borrower)
        try:
            async with trio.open_nursery() as outer, node(tmp_path) as n:
                n.lead()
                await wait_active(n.coordinator)
                outer.start_soon(commit, n.coordinator, 1)
                await trio.sleep(0.001)  # commit 1's append waits for a thread...
                outer.start_soon(commit, n.coordinator, 2)
                await trio.sleep(0.001)  # ...and commit 2 is queued behind it
                assert answers == {}
                if how == "resign":
                    n.lead(leader=2)
                    await trio.testing.wait_all_tasks_blocked()
                    assert answers == {2: E.NOT_COORDINATOR}  # at once, not after commit 1
                    for borrower in borrowers:
                        limiter.release_on_behalf_of(borrower)
                    borrowers.clear()
                # (otherwise leaving the block stops the coordinator)
        finally:
            for borrower in borrowers:
                limiter.release_on_behalf_of(borrower)
        # A resigned leader still finishes the append it had started (and it is durable);
        # a stopped node cannot tell, so it says the coordinator moved.
        first = E.NONE if how == "resign" else E.NOT_COORDINATOR
        assert answers == {1: first, 2: E.NOT_COORDINATOR}

    run(main)
