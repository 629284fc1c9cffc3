"""Classic group membership on simulated time: joins, syncs, heartbeats, leaves, timeouts."""

from __future__ import annotations

from klog.coordinator import GroupMetadataRecord, GroupState
from klog.wire import JoinGroupRequest
from klog.wire.errors import ErrorCode as E


def test_two_step_join_then_sync_makes_a_stable_group(driver) -> None:
    first = driver.join("g", version=4)
    response = driver.answer(first)
    assert response.error_code == E.MEMBER_ID_REQUIRED
    member_id = response.member_id
    assert member_id.startswith("client-")
    second = driver.join("g", member_id, version=4)
    assert driver.waiting(second)  # group.initial.rebalance.delay.ms
    driver.advance(3_000)
    answer = driver.answer(second)
    assert (answer.error_code, answer.generation_id, answer.leader) == (E.NONE, 1, member_id)
    assert answer.protocol_name == "range"
    assert [m.member_id for m in answer.members] == [member_id]
    group = driver.shard.groups["g"]
    assert group.state is GroupState.COMPLETING_REBALANCE
    sync = driver.sync("g", member_id, 1, {member_id: b"assignment"})
    assert driver.answer(sync).assignment == b"assignment"
    assert group.state is GroupState.STABLE
    created, assigned = driver.log
    assert (created.value.generation, created.value.members) == (0, [])  # the new group
    assert assigned == GroupMetadataRecord("g", group.to_record_value({member_id: b"assignment"}))


def test_results_carry_the_next_deadline(driver) -> None:
    request = JoinGroupRequest(
        group_id="g",
        session_timeout_ms=10_000,
        rebalance_timeout_ms=30_000,
        member_id="",
        protocol_type="consumer",
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=b"")],
    )
    result = driver.shard.join_group(
        request, version=3, client_id="c", client_host="/h", waiter=1, now_ms=driver.now
    )
    assert result.replies == []  # parked
    assert result.deadline_ms == driver.now + 3_000  # group.initial.rebalance.delay.ms
    assert result.deadline_ms == driver.shard.next_deadline()


def test_join_before_v4_needs_no_member_id_round_trip(driver) -> None:
    waiter = driver.join("g", version=3)
    driver.advance(3_000)
    assert driver.answer(waiter).error_code == E.NONE
    assert driver.answer(waiter).generation_id == 1


def test_followers_get_their_own_assignment_once_the_leaders_is_durable(driver) -> None:
    joins = [driver.join_new("g") for _ in range(3)]
    driver.advance(6_000)  # a member added during the initial delay extends it
    members = [driver.answer(w).member_id for w in joins]
    leader = driver.answer(joins[0]).leader
    assert leader == members[0]
    assert [m.member_id for m in driver.answer(joins[0]).members] == members
    assert driver.answer(joins[1]).members == []  # only the leader gets the member list
    followers = [driver.sync("g", m, 1) for m in members[1:]]
    assert all(driver.waiting(w) for w in followers)
    driver.hold_writes = True
    leader_sync = driver.sync("g", leader, 1, {m: m.encode() for m in members})
    # The assignment is not applied before its record is durable.
    assert driver.shard.groups["g"].state is GroupState.COMPLETING_REBALANCE
    assert all(driver.waiting(w) for w in [leader_sync, *followers])
    driver.release()
    for member, waiter in zip(members, [leader_sync, *followers], strict=True):
        assert driver.answer(waiter).assignment == member.encode()
        assert driver.answer(waiter).protocol_name == "range"
    assert driver.shard.groups["g"].state is GroupState.STABLE


def test_failed_assignment_write_is_not_applied(driver) -> None:
    a, b = driver.join_new("g"), driver.join_new("g")
    driver.advance(6_000)
    leader, follower = driver.answer(a).member_id, driver.answer(b).member_id
    follower_sync = driver.sync("g", follower, 1)
    driver.hold_writes = True
    leader_sync = driver.sync("g", leader, 1, {leader: b"x", follower: b"y"})
    (write,) = driver.held
    driver.fail(write, E.NOT_LEADER_OR_FOLLOWER)
    for waiter in (leader_sync, follower_sync):
        assert driver.answer(waiter).error_code == E.NOT_COORDINATOR
        assert driver.answer(waiter).assignment == b""
    group = driver.shard.groups["g"]
    assert group.state is GroupState.PREPARING_REBALANCE
    assert all(m.assignment == b"" for m in group.members.values())
    assert [r.value.generation for r in driver.log] == [0]  # only the group's creation


def test_sync_checks_generation_member_and_protocol(driver) -> None:
    (member,), generation = driver.stable_group(1)
    assert driver.answer(driver.sync("g", member, generation + 1)).error_code == (
        E.ILLEGAL_GENERATION
    )
    assert driver.answer(driver.sync("g", "nobody", generation)).error_code == (E.UNKNOWN_MEMBER_ID)
    assert driver.answer(driver.sync("nogroup", member, generation)).error_code == (
        E.UNKNOWN_MEMBER_ID
    )
    wrong_type = driver.sync("g", member, generation, protocol_type="connect")
    assert driver.answer(wrong_type).error_code == E.INCONSISTENT_GROUP_PROTOCOL
    wrong_name = driver.sync("g", member, generation, protocol_name="roundrobin")
    assert driver.answer(wrong_name).error_code == E.INCONSISTENT_GROUP_PROTOCOL
    right = driver.sync("g", member, generation, protocol_type="consumer", protocol_name="range")
    assert driver.answer(right).error_code == E.NONE
    assert driver.answer(right).assignment == member.encode()


def test_heartbeat_answers_by_state(driver) -> None:
    assert driver.heartbeat("nogroup", "m", 1) == E.UNKNOWN_MEMBER_ID
    (a, b), generation = driver.stable_group(2)
    assert driver.heartbeat("g", a, generation) == E.NONE
    assert driver.heartbeat("g", a, generation - 1) == E.ILLEGAL_GENERATION
    assert driver.heartbeat("g", "stranger", generation) == E.UNKNOWN_MEMBER_ID
    driver.join("g", a)  # a member rejoining starts a rebalance
    assert driver.shard.groups["g"].state is GroupState.PREPARING_REBALANCE
    assert driver.heartbeat("g", b, generation) == E.REBALANCE_IN_PROGRESS


def test_rebalance_in_progress_tells_a_syncing_member_to_rejoin(driver) -> None:
    (a, b), generation = driver.stable_group(2)
    driver.join("g", a)
    assert driver.answer(driver.sync("g", b, generation)).error_code == E.REBALANCE_IN_PROGRESS


def test_session_timeout_removes_a_silent_member_and_rebalances(driver) -> None:
    (a, _b), generation = driver.stable_group(2, session=10_000)
    driver.advance(6_000)
    assert driver.heartbeat("g", a, generation) == E.NONE
    driver.advance(4_000)  # b never heartbeated: gone 10s after its last sign of life
    group = driver.shard.groups["g"]
    assert set(group.members) == {a}
    assert group.state is GroupState.PREPARING_REBALANCE
    assert driver.heartbeat("g", a, generation) == E.REBALANCE_IN_PROGRESS
    answer = driver.answer(driver.join("g", a))
    assert (answer.generation_id, [m.member_id for m in answer.members]) == (generation + 1, [a])


def test_session_is_measured_from_the_last_heartbeat(driver) -> None:
    (a,), generation = driver.stable_group(1, session=10_000)
    driver.advance(9_000)
    assert driver.heartbeat("g", a, generation) == E.NONE
    driver.advance(9_999)
    assert a in driver.shard.groups["g"].members
    driver.advance(1)
    assert a not in driver.shard.groups["g"].members


def test_rebalance_timeout_drops_members_that_do_not_rejoin(driver) -> None:
    (a, b, c), generation = driver.stable_group(3, session=60_000, rebalance=20_000)
    rejoin_a = driver.join("g", a, session=60_000, rebalance=20_000)
    rejoin_b = driver.join("g", b, session=60_000, rebalance=20_000)
    driver.advance(19_999)
    assert driver.waiting(rejoin_a) and driver.waiting(rejoin_b)
    driver.advance(1)
    answer = driver.answer(rejoin_a)
    assert answer.generation_id == generation + 1
    assert {m.member_id for m in answer.members} == {a, b}
    assert c not in driver.shard.groups["g"].members
    assert driver.heartbeat("g", c, generation) == E.UNKNOWN_MEMBER_ID


def test_members_that_never_sync_are_removed_after_the_rebalance_timeout(driver) -> None:
    kwargs = {"rebalance": 15_000, "session": 60_000}
    a, b = driver.join_new("g", **kwargs), driver.join_new("g", **kwargs)
    driver.advance(6_000)
    leader, follower = driver.answer(a).member_id, driver.answer(b).member_id
    driver.sync("g", leader, 1, {leader: b"1", follower: b"2"})
    driver.advance(15_000)
    group = driver.shard.groups["g"]
    assert follower not in group.members
    assert group.state is GroupState.PREPARING_REBALANCE


def test_initial_rebalance_delay_waits_for_more_members(make_driver) -> None:
    driver = make_driver(initial_rebalance_delay_ms=3_000)
    first = driver.join_new("g", rebalance=60_000)
    driver.advance(2_000)
    second = driver.join_new("g", rebalance=60_000)
    driver.advance(1_000)  # the first delay ends; a member arrived, so it is extended
    assert driver.waiting(first) and driver.waiting(second)
    driver.advance(3_000)
    assert driver.answer(first).generation_id == 1
    assert len(driver.answer(first).members) == 2


def test_initial_rebalance_delay_is_bounded_by_the_rebalance_timeout(make_driver) -> None:
    driver = make_driver(initial_rebalance_delay_ms=3_000)
    first = driver.join_new("g", rebalance=5_000)
    for _ in range(4):  # a member every second would extend the delay forever
        driver.advance(1_000)
        driver.join_new("g", rebalance=5_000)
    driver.advance(999)
    assert driver.waiting(first)
    driver.advance(1)  # 3s delay + the 2s the 5s rebalance timeout leaves
    assert driver.answer(first).generation_id == 1
    assert len(driver.answer(first).members) == 5


def test_protocol_is_chosen_by_the_members_vote(driver) -> None:
    prefs = [
        (("range", b"1"), ("roundrobin", b"1")),
        (("roundrobin", b"2"), ("range", b"2")),
        (("roundrobin", b"3"), ("range", b"3"), ("sticky", b"3")),
    ]
    joins = [driver.join_new("g", protocols=p) for p in prefs]
    driver.advance(6_000)
    for waiter in joins:
        assert driver.answer(waiter).protocol_name == "roundrobin"
    leader = driver.answer(joins[0])
    assert [m.metadata for m in leader.members] == [b"1", b"2", b"3"]


def test_protocol_vote_tie_goes_to_the_earliest_member(driver) -> None:
    joins = [
        driver.join_new("g", protocols=(("a", b""), ("b", b""))),
        driver.join_new("g", protocols=(("b", b""), ("a", b""))),
    ]
    driver.advance(6_000)
    assert driver.answer(joins[1]).protocol_name == "a"


def test_inconsistent_protocols_are_refused(driver) -> None:
    driver.stable_group(1, protocols=(("range", b""),))
    assert driver.answer(driver.join("g", protocols=(("sticky", b""),))).error_code == (
        E.INCONSISTENT_GROUP_PROTOCOL
    )
    assert driver.answer(driver.join("g", protocol_type="connect")).error_code == (
        E.INCONSISTENT_GROUP_PROTOCOL
    )
    assert driver.answer(driver.join("h", protocols=())).error_code == (
        E.INCONSISTENT_GROUP_PROTOCOL
    )


def test_invalid_session_timeout(make_driver) -> None:
    driver = make_driver(min_session_timeout_ms=6_000, max_session_timeout_ms=60_000)
    assert driver.answer(driver.join("g", session=5_999)).error_code == E.INVALID_SESSION_TIMEOUT
    assert driver.answer(driver.join("g", session=60_001)).error_code == (E.INVALID_SESSION_TIMEOUT)
    assert driver.answer(driver.join("g", session=6_000)).error_code == E.MEMBER_ID_REQUIRED


def test_rejoin_with_unknown_member_id_of_an_unknown_group(driver) -> None:
    assert driver.answer(driver.join("g", "ghost")).error_code == E.UNKNOWN_MEMBER_ID


def test_group_max_size(make_driver) -> None:
    driver = make_driver(max_size=2)
    driver.stable_group(2)
    answer = driver.answer(driver.join("g", version=3))
    assert (answer.error_code, answer.member_id) == (E.GROUP_MAX_SIZE_REACHED, "")
    assert len(driver.shard.groups["g"].members) == 2


def test_group_max_size_during_a_rebalance_kicks_out_the_last_to_rejoin(make_driver) -> None:
    driver = make_driver(max_size=2)
    (a, b), generation = driver.stable_group(2)
    rejoin_a = driver.join("g", a)
    newcomer = driver.join("g", version=3)  # 1 of 2 slots taken by a parked join
    late_b = driver.join("g", b)
    assert driver.answer(late_b).error_code == E.GROUP_MAX_SIZE_REACHED
    driver.advance(30_000)  # as in Kafka, the join phase then ends at its timeout
    answer = driver.answer(rejoin_a)
    assert answer.generation_id == generation + 1
    assert {m.member_id for m in answer.members} == {a, driver.answer(newcomer).member_id}


def test_pending_members_are_waited_for_and_never_told_they_are_unknown(driver) -> None:
    (a,), generation = driver.stable_group(1)
    # A new member got its id but has not rejoined yet; the old member rejoins.
    pending_id = driver.answer(driver.join("g")).member_id
    rejoin_a = driver.join("g", a)
    assert driver.waiting(rejoin_a)  # the pending member still counts
    second = driver.join("g", pending_id)
    assert driver.answer(second).error_code == E.NONE
    assert driver.answer(rejoin_a).generation_id == generation + 1
    assert {m.member_id for m in driver.answer(rejoin_a).members} == {a, pending_id}


def test_pending_member_expires_after_its_session(driver) -> None:
    (a,), generation = driver.stable_group(1, session=10_000)
    pending_id = driver.answer(driver.join("g", session=10_000)).member_id
    rejoin = driver.join("g", a, session=10_000)
    driver.advance(10_000)
    assert driver.answer(rejoin).generation_id == generation + 1
    # Its id is forgotten: the client must start over with an empty member id.
    assert driver.answer(driver.join("g", pending_id)).error_code == E.UNKNOWN_MEMBER_ID


def test_concurrent_first_joins_all_land_in_one_generation(make_driver) -> None:
    driver = make_driver(initial_rebalance_delay_ms=3_000)
    firsts = [driver.answer(driver.join("g")) for _ in range(5)]
    seconds = [driver.join("g", r.member_id) for r in firsts]
    driver.advance(6_000)
    answers = [driver.answer(w) for w in seconds]
    assert {a.error_code for a in answers} == {E.NONE}
    assert {a.generation_id for a in answers} == {1}
    assert len(answers[0].members) == 5


def test_a_retried_join_replaces_the_parked_one(driver) -> None:
    (a, b), _ = driver.stable_group(2)
    first = driver.join("g", a)
    retry = driver.join("g", a)  # the client gave up on the first and reconnected
    assert driver.answer(first).error_code == E.REBALANCE_IN_PROGRESS
    driver.join("g", b)
    assert driver.answer(retry).error_code == E.NONE


def test_join_in_completing_rebalance_with_same_metadata_returns_the_generation(driver) -> None:
    a, b = driver.join_new("g"), driver.join_new("g")
    driver.advance(6_000)
    leader, follower = driver.answer(a).member_id, driver.answer(b).member_id
    again = driver.join("g", follower)
    assert driver.answer(again).generation_id == 1
    assert driver.shard.groups["g"].state is GroupState.COMPLETING_REBALANCE
    changed = driver.join("g", follower, protocols=(("range", b"new"),))
    assert driver.waiting(changed)
    assert driver.shard.groups["g"].state is GroupState.PREPARING_REBALANCE
    assert leader in driver.shard.groups["g"].members


def test_stable_follower_rejoining_unchanged_gets_the_current_generation(driver) -> None:
    (_a, b), generation = driver.stable_group(2)
    answer = driver.answer(driver.join("g", b))
    assert (answer.error_code, answer.generation_id, answer.members) == (E.NONE, generation, [])
    assert driver.shard.groups["g"].state is GroupState.STABLE


def test_leave_group_rebalances_the_rest(driver) -> None:
    (a, b), generation = driver.stable_group(2)
    response = driver.leave("g", [(b, None)])
    assert [(m.member_id, m.error_code) for m in response.members] == [(b, E.NONE)]
    group = driver.shard.groups["g"]
    assert set(group.members) == {a}
    assert group.state is GroupState.PREPARING_REBALANCE
    assert driver.answer(driver.join("g", a)).generation_id == generation + 1


def test_batched_leave_reports_each_member(driver) -> None:
    (a, b, c), _ = driver.stable_group(3, instance=None)
    response = driver.leave("g", [(a, None), ("ghost", None), (c, None)])
    assert [m.error_code for m in response.members] == [E.NONE, E.UNKNOWN_MEMBER_ID, E.NONE]
    assert set(driver.shard.groups["g"].members) == {b}
    assert driver.leave("nogroup", [(a, None)]).error_code == E.UNKNOWN_MEMBER_ID


def test_last_member_leaving_empties_the_group_and_persists_it(driver) -> None:
    (a,), generation = driver.stable_group(1)
    driver.leave("g", [(a, None)])
    group = driver.shard.groups["g"]
    assert group.state is GroupState.EMPTY
    assert group.generation_id == generation + 1
    last = driver.log[-1]
    assert isinstance(last, GroupMetadataRecord) and last.value is not None
    assert (last.value.generation, last.value.members) == (generation + 1, [])


def test_parked_join_of_a_leaving_member_is_answered(driver) -> None:
    (a, _b), _ = driver.stable_group(2)
    parked = driver.join("g", a)
    driver.leave("g", [(a, None)])
    assert driver.answer(parked).error_code == E.UNKNOWN_MEMBER_ID


def test_unloading_answers_parked_requests_not_coordinator(driver) -> None:
    (a, _b), _ = driver.stable_group(2)
    parked = driver.join("g", a)
    driver.apply(driver.shard.on_unloaded())
    assert driver.answer(parked).error_code == E.NOT_COORDINATOR
    assert driver.shard.next_deadline() is None
