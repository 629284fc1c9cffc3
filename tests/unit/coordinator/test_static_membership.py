"""Static membership (group.instance.id): restarts without rebalances, and fencing."""

from __future__ import annotations

from klog.coordinator import GroupMetadataRecord, GroupState
from klog.wire.errors import ErrorCode as E


def _static_group(driver, instances=("i1", "i2"), session=30_000):
    joins = [driver.join("g", instance=i, session=session) for i in instances]
    driver.advance(6_000)
    answers = [driver.answer(w) for w in joins]
    members = [a.member_id for a in answers]
    generation = answers[0].generation_id
    leader = answers[0].leader
    syncs = [
        driver.sync(
            "g",
            m,
            generation,
            {x: x.encode() for x in members} if m == leader else None,
            instance=i,
        )
        for m, i in zip(members, instances, strict=True)
    ]
    assert [driver.answer(s).error_code for s in syncs] == [E.NONE] * len(instances)
    return members, generation


def test_static_members_join_without_the_member_id_round_trip(driver) -> None:
    waiter = driver.join("g", instance="i1", version=5)
    driver.advance(3_000)
    answer = driver.answer(waiter)
    assert answer.error_code == E.NONE
    assert answer.member_id.startswith("i1-")
    assert [(m.member_id, m.group_instance_id) for m in answer.members] == [
        (answer.member_id, "i1")
    ]


def test_restarted_static_member_keeps_its_assignment_without_a_rebalance(driver) -> None:
    (m1, m2), generation = _static_group(driver)
    records_before = len(driver.log)
    restarted = driver.join("g", instance="i2", version=5)
    answer = driver.answer(restarted)
    assert answer.error_code == E.NONE
    assert answer.generation_id == generation
    new_id = answer.member_id
    assert new_id != m2 and new_id.startswith("i2-")
    group = driver.shard.groups["g"]
    assert group.state is GroupState.STABLE
    assert group.generation_id == generation
    sync = driver.sync("g", new_id, generation, instance="i2")
    assert driver.answer(sync).assignment == m2.encode()  # the old member's partitions
    # The new member id was persisted before the member was answered.
    (record,) = driver.log[records_before:]
    assert isinstance(record, GroupMetadataRecord) and record.value is not None
    assert {m.member_id for m in record.value.members} == {m1, new_id}
    assert driver.heartbeat("g", m1, generation, "i1") == E.NONE


def test_the_replaced_static_member_is_fenced(driver) -> None:
    (_m1, m2), generation = _static_group(driver)
    new_id = driver.answer(driver.join("g", instance="i2", version=5)).member_id
    assert driver.heartbeat("g", m2, generation, "i2") == E.FENCED_INSTANCE_ID
    assert driver.answer(driver.sync("g", m2, generation, instance="i2")).error_code == (
        E.FENCED_INSTANCE_ID
    )
    assert driver.answer(driver.join("g", m2, instance="i2")).error_code == E.FENCED_INSTANCE_ID
    assert driver.heartbeat("g", new_id, generation, "i2") == E.NONE
    assert driver.heartbeat("g", new_id, generation, "i9") == E.UNKNOWN_MEMBER_ID


def test_parked_requests_of_a_replaced_static_member_are_fenced(driver) -> None:
    (m1, _m2), _generation = _static_group(driver)
    parked = driver.join("g", m1, instance="i1")  # the leader rejoins: a rebalance starts
    assert driver.waiting(parked)
    driver.join("g", instance="i1")  # ...and meanwhile a second i1 process starts
    assert driver.answer(parked).error_code == E.FENCED_INSTANCE_ID


def test_failed_persistence_of_a_static_replacement_restores_the_old_member(driver) -> None:
    (m1, m2), generation = _static_group(driver)
    driver.hold_writes = True
    restarted = driver.join("g", instance="i2", version=5)
    assert driver.waiting(restarted)
    (write,) = driver.held
    driver.fail(write, E.NOT_ENOUGH_REPLICAS)
    answer = driver.answer(restarted)
    assert (answer.error_code, answer.member_id) == (E.COORDINATOR_NOT_AVAILABLE, "")
    group = driver.shard.groups["g"]
    assert group.static_members["i2"] == m2
    assert set(group.members) == {m1, m2}
    assert driver.heartbeat("g", m2, generation, "i2") == E.NONE


def test_static_leader_restart_skips_assignment_from_v9(driver) -> None:
    (_m1, m2), _generation = _static_group(driver)
    answer = driver.answer(driver.join("g", instance="i1", version=9))
    assert answer.skip_assignment is True
    assert answer.leader == answer.member_id
    assert {m.member_id for m in answer.members} == {answer.member_id, m2}
    assert driver.shard.groups["g"].state is GroupState.STABLE


def test_static_leader_restart_before_v9_is_told_the_old_leader(driver) -> None:
    (m1, _m2), _generation = _static_group(driver)
    answer = driver.answer(driver.join("g", instance="i1", version=5))
    assert (answer.leader, answer.members, answer.skip_assignment) == (m1, [], False)


def test_static_member_with_a_new_protocol_triggers_a_rebalance(driver) -> None:
    (_m1, _m2), generation = _static_group(driver)
    restarted = driver.join(
        "g", instance="i2", protocols=(("roundrobin", b""), ("range", b"")), version=5
    )
    assert driver.shard.groups["g"].state is GroupState.STABLE  # range still wins the vote
    assert driver.answer(restarted).generation_id == generation
    changed = driver.join("g", instance="i1", protocols=(("sticky", b""),), version=5)
    assert driver.answer(changed).error_code == E.INCONSISTENT_GROUP_PROTOCOL


def test_silent_static_member_is_kept_through_the_join_phase_only(driver) -> None:
    (m1, m2), _generation = _static_group(driver, session=60_000)
    rejoin = driver.join("g", m1, instance="i1", session=60_000)
    driver.advance(30_000)  # the rebalance timeout
    answer = driver.answer(rejoin)
    # A static member that did not rejoin stays in the next generation (dynamic ones
    # are dropped)...
    assert {m.member_id for m in answer.members} == {m1, m2}
    sync = driver.sync("g", m1, answer.generation_id, {m1: b"a", m2: b"b"}, instance="i1")
    assert driver.answer(sync).assignment == b"a"
    driver.advance(29_999)
    assert m2 in driver.shard.groups["g"].members
    driver.advance(1)  # ...but one that never syncs is removed with the sync timeout
    assert set(driver.shard.groups["g"].members) == {m1}


def test_leave_by_instance_id_removes_a_static_member(driver) -> None:
    (m1, _m2), _ = _static_group(driver)
    response = driver.leave("g", [("", "i2"), ("", "nope")])
    assert [m.error_code for m in response.members] == [E.NONE, E.UNKNOWN_MEMBER_ID]
    assert set(driver.shard.groups["g"].members) == {m1}
    fenced = driver.leave("g", [("someone-else", "i1")])
    assert fenced.members[0].error_code == E.FENCED_INSTANCE_ID
