"""Loading is replaying: a coordinator rebuilt from the records it wrote agrees with it.

Also a randomized workload of joins, syncs, heartbeats, leaves, commits, deletions and
time passing, checking after every step that no request is left waiting without the
shard knowing about it, and at the end that every request was answered.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klog.coordinator import (
    GroupCoordinatorShard,
    GroupState,
    build_record_batches,
    iter_log_batches,
)
from klog.wire import HeartbeatRequest
from klog.wire.errors import ErrorCode as E
from klog.wire.records import iter_batches
from tests.unit.coordinator.conftest import Client, Driver

SETTLED = (GroupState.EMPTY, GroupState.STABLE)


def reload(driver: Driver) -> GroupCoordinatorShard:
    """A new shard loaded from the bytes of everything the driver's shard wrote."""
    encoded = _assign_offsets(build_record_batches(driver.log, driver.now, 1 << 20))
    fresh = GroupCoordinatorShard(0, driver.config)
    for _, records in iter_log_batches(encoded):
        for record in records:
            fresh.replay(record, driver.now)
    fresh.on_loaded(driver.now)
    return fresh


def _assign_offsets(buf: bytes) -> bytes:
    out = bytearray()
    offset = 0
    for header, batch in iter_batches(buf):
        patched = bytearray(batch)
        struct.pack_into(">q", patched, 0, offset)
        out += patched
        offset += header.records_count
    return bytes(out)


def persisted_view(shard: GroupCoordinatorShard) -> dict[str, Any]:
    groups = {}
    for group_id, group in shard.groups.items():
        assert group.state in SETTLED, (group_id, group.state)
        groups[group_id] = (
            group.state,
            group.generation_id,
            group.protocol_type,
            group.protocol_name,
            group.leader_id,
            group.state_timestamp_ms if group.state is GroupState.EMPTY else None,
            [
                (
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.session_timeout_ms,
                    m.rebalance_timeout_ms,
                    m.metadata(group.protocol_name),
                    m.assignment,
                )
                for m in group.members.values()
            ],
        )
    return {"groups": groups, "offsets": shard.offsets}


def test_reloaded_coordinator_equals_the_one_that_wrote(driver) -> None:
    (a, _b), generation = driver.stable_group(2, group="stable")
    driver.commit(
        "stable", {("t", 0): (10, "m0"), ("t", 1): (11, None)}, generation=generation, member_id=a
    )
    (c,), gen_c = driver.stable_group(1, group="emptied")
    driver.commit("emptied", {("u", 3): (5, "x")}, generation=gen_c, member_id=c)
    driver.leave("emptied", [(c, None)])
    driver.commit("simple", {("v", 0): (1, "")})
    driver.commit("deleted", {("v", 0): (1, "")})
    waiter = driver.waiter()
    driver.apply(driver.shard.delete_groups(["deleted"], waiter=waiter, now_ms=driver.now))
    waiter = driver.waiter()
    driver.apply(
        driver.shard.delete_offsets("simple", [("v", [0])], waiter=waiter, now_ms=driver.now)
    )
    driver.commit("simple", {("v", 1): (2, "")})
    fresh = reload(driver)
    assert persisted_view(fresh) == persisted_view(driver.shard)
    assert set(fresh.groups) == {"stable", "emptied", "simple"}
    assert fresh.describe_group("stable") == driver.shard.describe_group("stable")
    # Loaded members must heartbeat to stay, with the generation they had.
    assert _heartbeat(fresh, "stable", a, generation, driver.now) == E.NONE


def _heartbeat(shard, group, member, generation, now) -> int:
    result = shard.heartbeat(
        HeartbeatRequest(group_id=group, generation_id=generation, member_id=member),
        waiter=1,
        now_ms=now,
    )
    return result.replies[0][1].error_code


def test_loaded_members_that_stop_heartbeating_are_removed(driver) -> None:
    (a, _b), generation = driver.stable_group(2, session=10_000)
    loaded = Driver()
    loaded.now = driver.now
    loaded.shard = reload(driver)
    loaded.apply(loaded.shard.on_loaded(loaded.now))
    loaded.advance(6_000)
    assert loaded.heartbeat("g", a, generation) == E.NONE
    loaded.advance(4_000)
    group = loaded.shard.groups["g"]
    assert set(group.members) == {a}
    assert group.state is GroupState.PREPARING_REBALANCE


# -- randomized workload -------------------------------------------------------------------

GROUPS = ("g1", "g2")
SLOTS = 3
STATIC_SLOT = 2  # this slot's consumers use group.instance.id

_act = st.tuples(st.just("act"), st.sampled_from(GROUPS), st.integers(0, SLOTS - 1))
# A tick: every consumer of the group takes its next step (as real ones do concurrently).
_tick = st.tuples(st.just("tick"), st.sampled_from(GROUPS), st.just(0))
ops = st.one_of(
    _act,
    _act,
    _tick,
    _tick,
    st.tuples(st.just("advance"), st.just(""), st.integers(0, 3_000)),
    st.tuples(st.just("advance"), st.just(""), st.integers(0, 40_000)),
    st.tuples(st.just("restart"), st.sampled_from(GROUPS), st.integers(0, SLOTS - 1)),
    st.tuples(st.just("leave"), st.sampled_from(GROUPS), st.integers(0, SLOTS - 1)),
    st.tuples(st.just("commit"), st.sampled_from(GROUPS), st.integers(0, SLOTS - 1)),
    st.tuples(st.just("delete"), st.sampled_from(GROUPS), st.just(0)),
)


def _check_invariants(driver: Driver, issued: set[int]) -> None:
    parked = set()
    for group in driver.shard.groups.values():
        joining = [m for m in group.members.values() if m.join_waiter is not None]
        assert group.awaiting_join == len(joining)
        for member in group.members.values():
            parked.update(w for w in (member.join_waiter, member.sync_waiter) if w is not None)
        for instance, member_id in group.static_members.items():
            assert group.members[member_id].group_instance_id == instance
        if group.members:
            assert group.leader_id in group.members
        assert not (group.pending_join & set(group.members))
    waiting = {w for w in issued if driver.waiting(w)}
    assert waiting <= parked, "a request waits with nobody to answer it"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=10, max_size=150))
def test_random_workloads_never_strand_requests_and_replay_equal(workload) -> None:
    driver = Driver(initial_rebalance_delay_ms=1_000)
    clients = {
        (g, s): Client(g, f"{g}-static" if s == STATIC_SLOT else None)
        for g in GROUPS
        for s in range(SLOTS)
    }
    issued: set[int] = set()
    for op, group, arg in workload:
        client = clients.get((group, arg))
        if op == "advance":
            driver.advance(arg)
        elif op == "delete":
            waiter = driver.waiter()
            driver.apply(driver.shard.delete_groups([group], waiter=waiter, now_ms=driver.now))
            issued.add(waiter)
        elif op in ("act", "tick"):
            acting = [client] if op == "act" else [clients[(group, s)] for s in range(SLOTS)]
            for each in acting:
                waiter = each.act(driver)
                if waiter is not None:
                    issued.add(waiter)
        elif op == "restart":
            client.restart()  # the process died; a parked request of it is abandoned
        elif op == "leave" and client.member_id:
            driver.leave(group, [(client.member_id, client.instance)])
            client.restart()
        elif op == "commit":
            member = client.member_id if client.phase == "heartbeat" else ""
            waiter = driver.commit(
                group,
                {("t", arg): (len(driver.log), "m")},
                generation=client.generation if member else -1,
                member_id=member,
                instance=client.instance if member else None,
            )
            issued.add(waiter)
        for each in clients.values():
            each.absorb(driver)
        _check_invariants(driver, issued)
    driver.advance(3_600_000)  # every session, rebalance and sync timeout runs out
    assert not [w for w in issued if driver.waiting(w)]
    assert persisted_view(reload(driver)) == persisted_view(driver.shard)
