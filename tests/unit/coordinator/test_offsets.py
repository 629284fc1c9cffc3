"""Offset commits, fetches, deletions and expiry; group deletion; describe and list."""

from __future__ import annotations

from klog.coordinator import GroupMetadataRecord, GroupState, OffsetAndMetadata, OffsetCommitRecord
from klog.wire.errors import ErrorCode as E
from tests.unit.coordinator.conftest import START_MS, subscription

DAY_MS = 24 * 3600 * 1000


def _codes(response) -> list[int]:
    return [p.error_code for t in response.topics for p in t.partitions]


def test_simple_commit_creates_a_group_without_members(driver) -> None:
    waiter = driver.commit("simple", {("t", 0): (42, "meta"), ("t", 1): (7, None)})
    assert _codes(driver.answer(waiter)) == [E.NONE, E.NONE]
    assert driver.committed("simple", "t", 0) == OffsetAndMetadata(42, -1, "meta", START_MS)
    assert driver.committed("simple", "t", 1).metadata == ""  # null metadata is stored as ""
    group = driver.shard.groups["simple"]
    assert (group.state, group.protocol_type) == (GroupState.EMPTY, None)


def test_commit_is_visible_and_answered_only_once_durable(driver) -> None:
    driver.commit("g", {("t", 0): (1, "first")})
    driver.hold_writes = True
    waiter = driver.commit("g", {("t", 0): (2, "second")})
    assert driver.waiting(waiter)
    assert driver.committed("g", "t", 0).offset == 1
    driver.release()
    assert _codes(driver.answer(waiter)) == [E.NONE]
    assert driver.committed("g", "t", 0).offset == 2


def test_failed_commit_is_not_applied(driver) -> None:
    driver.commit("g", {("t", 0): (1, "")})
    driver.hold_writes = True
    waiter = driver.commit("g", {("t", 0): (2, ""), ("t", 1): (3, "")})
    (write,) = driver.held
    driver.fail(write, E.REQUEST_TIMED_OUT)
    assert _codes(driver.answer(waiter)) == [E.COORDINATOR_NOT_AVAILABLE] * 2
    assert driver.committed("g", "t", 0).offset == 1
    assert driver.committed("g", "t", 1) is None


def test_commit_errors_for_oversized_appends(driver) -> None:
    driver.hold_writes = True
    waiter = driver.commit("g", {("t", 0): (2, "")})
    driver.fail(driver.held.pop(), E.MESSAGE_TOO_LARGE)
    assert _codes(driver.answer(waiter)) == [E.INVALID_COMMIT_OFFSET_SIZE]


def test_member_commits_are_fenced_by_generation(driver) -> None:
    (a, _b), generation = driver.stable_group(2)
    ok = driver.commit("g", {("t", 0): (5, "")}, generation=generation, member_id=a)
    assert _codes(driver.answer(ok)) == [E.NONE]
    stale = driver.commit("g", {("t", 0): (6, "")}, generation=generation - 1, member_id=a)
    assert _codes(driver.answer(stale)) == [E.ILLEGAL_GENERATION]
    stranger = driver.commit("g", {("t", 0): (6, "")}, generation=generation, member_id="x")
    assert _codes(driver.answer(stranger)) == [E.UNKNOWN_MEMBER_ID]
    # Without member id and generation, commits to a live group are refused.
    anonymous = driver.commit("g", {("t", 0): (6, "")})
    assert _codes(driver.answer(anonymous)) == [E.UNKNOWN_MEMBER_ID]
    assert driver.committed("g", "t", 0).offset == 5


def test_commit_during_completing_rebalance_is_rebalance_in_progress(driver) -> None:
    a, _b = driver.join_new("g"), driver.join_new("g")
    driver.advance(6_000)
    member = driver.answer(a).member_id
    waiter = driver.commit("g", {("t", 0): (1, "")}, generation=1, member_id=member)
    assert _codes(driver.answer(waiter)) == [E.REBALANCE_IN_PROGRESS]


def test_commit_to_an_unknown_group_with_a_generation(driver) -> None:
    v9 = driver.commit("nope", {("t", 0): (1, "")}, generation=3, member_id="m", version=9)
    assert _codes(driver.answer(v9)) == [E.GROUP_ID_NOT_FOUND]
    v8 = driver.commit("nope", {("t", 0): (1, "")}, generation=3, member_id="m", version=8)
    assert _codes(driver.answer(v8)) == [E.ILLEGAL_GENERATION]


def test_metadata_too_large_fails_only_that_partition(make_driver) -> None:
    driver = make_driver(offset_metadata_max_bytes=10)
    waiter = driver.commit("g", {("t", 0): (1, "x" * 11), ("t", 1): (2, "x" * 10)})
    assert _codes(driver.answer(waiter)) == [E.OFFSET_METADATA_TOO_LARGE, E.NONE]
    assert driver.committed("g", "t", 0) is None
    assert driver.committed("g", "t", 1).metadata == "x" * 10


def test_commit_keeps_leader_epoch_and_unicode_metadata(driver) -> None:
    driver.commit("g", {("t", 0): (9, "héllo ✓")}, leader_epoch=4)
    stored = driver.committed("g", "t", 0)
    assert (stored.offset, stored.leader_epoch, stored.metadata) == (9, 4, "héllo ✓")
    old = driver.commit("g", {("t", 1): (9, "")}, leader_epoch=4, version=5)
    assert driver.answer(old) is not None
    assert driver.committed("g", "t", 1).leader_epoch == -1  # v5 carries no epoch


def test_fetch_all_and_some_offsets(driver) -> None:
    driver.commit("g", {("b", 1): (11, ""), ("a", 0): (10, ""), ("b", 0): (12, "")})
    code, topics = driver.shard.fetch_offsets("g", None)
    assert code == E.NONE
    assert [(t, [(p, o.offset) for p, o in parts]) for t, parts in topics] == [
        ("a", [(0, 10)]),
        ("b", [(0, 12), (1, 11)]),
    ]
    code, topics = driver.shard.fetch_offsets("g", [("a", [0, 5]), ("zzz", [1])])
    assert [(t, [(p, o and o.offset) for p, o in parts]) for t, parts in topics] == [
        ("a", [(0, 10), (5, None)]),
        ("zzz", [(1, None)]),
    ]
    assert driver.shard.fetch_offsets("unknown", None) == (E.NONE, [])


def test_offset_delete(driver) -> None:
    driver.stable_group(1, protocols=(("range", subscription("subscribed")),))
    group = driver.shard.groups["g"]
    member = next(iter(group.members))
    driver.commit(
        "g",
        {("subscribed", 0): (1, ""), ("other", 0): (2, "")},
        generation=group.generation_id,
        member_id=member,
    )
    waiter = driver.waiter()
    driver.apply(
        driver.shard.delete_offsets(
            "g", [("subscribed", [0]), ("other", [0, 9])], waiter=waiter, now_ms=driver.now
        )
    )
    response = driver.answer(waiter)
    assert response.error_code == E.NONE
    assert _codes(response) == [E.GROUP_SUBSCRIBED_TO_TOPIC, E.NONE, E.NONE]
    assert driver.committed("g", "other", 0) is None
    assert driver.committed("g", "subscribed", 0).offset == 1
    assert driver.log[-1] == OffsetCommitRecord("g", "other", 0, None)


def test_offset_delete_group_errors(driver) -> None:
    def delete(group: str) -> int:
        waiter = driver.waiter()
        driver.apply(
            driver.shard.delete_offsets(group, [("t", [0])], waiter=waiter, now_ms=driver.now)
        )
        return driver.answer(waiter).error_code

    assert delete("missing") == E.GROUP_ID_NOT_FOUND
    driver.stable_group(1, protocol_type="connect")
    assert delete("g") == E.NON_EMPTY_GROUP


def _delete_groups(driver, *group_ids: str):
    waiter = driver.waiter()
    driver.apply(driver.shard.delete_groups(group_ids, waiter=waiter, now_ms=driver.now))
    return waiter


def test_delete_groups(driver) -> None:
    driver.commit("empty", {("t", 0): (1, ""), ("t", 1): (2, "")})
    driver.stable_group(1, group="busy")
    waiter = _delete_groups(driver, "empty", "busy", "missing")
    assert [(r.group_id, r.error_code) for r in driver.answer(waiter)] == [
        ("empty", E.NONE),
        ("busy", E.NON_EMPTY_GROUP),
        ("missing", E.GROUP_ID_NOT_FOUND),
    ]
    assert driver.log[-3:] == [
        OffsetCommitRecord("empty", "t", 0, None),
        OffsetCommitRecord("empty", "t", 1, None),
        GroupMetadataRecord("empty", None),
    ]
    assert "empty" not in driver.shard.groups
    assert driver.shard.fetch_offsets("empty", None) == (E.NONE, [])


def test_a_group_being_deleted_is_dead_until_the_tombstones_replay(driver) -> None:
    driver.commit("g", {("t", 0): (1, "")})
    driver.hold_writes = True
    waiter = _delete_groups(driver, "g")
    assert driver.shard.describe_group("g").group_state == "Dead"
    assert driver.answer(driver.join("g")).error_code == E.COORDINATOR_NOT_AVAILABLE
    commit = driver.commit("g", {("t", 0): (5, "")})
    assert _codes(driver.answer(commit)) == [E.COORDINATOR_NOT_AVAILABLE]
    driver.release()
    assert driver.answer(waiter)[0].error_code == E.NONE
    assert driver.answer(driver.join("g")).error_code == E.MEMBER_ID_REQUIRED  # a new group


def test_failed_group_deletion_leaves_the_group(driver) -> None:
    driver.commit("g", {("t", 0): (1, "")})
    driver.hold_writes = True
    waiter = _delete_groups(driver, "g")
    driver.fail(driver.held.pop(), E.NOT_LEADER_OR_FOLLOWER)
    assert driver.answer(waiter)[0].error_code == E.NOT_COORDINATOR
    assert driver.shard.groups["g"].state is GroupState.EMPTY
    assert driver.committed("g", "t", 0).offset == 1


def test_describe_and_list_groups(driver) -> None:
    (member,), _ = driver.stable_group(1, group="a")
    driver.commit("b", {("t", 0): (1, "")})
    described = driver.shard.describe_group("a")
    assert (described.group_state, described.protocol_type, described.protocol_data) == (
        "Stable",
        "consumer",
        "range",
    )
    (m,) = described.members
    assert (m.member_id, m.client_id, m.client_host) == (member, "client", "/127.0.0.1")
    assert (m.member_metadata, m.member_assignment) == (b"r", member.encode())
    unknown = driver.shard.describe_group("nope")
    assert (unknown.error_code, unknown.group_state) == (E.NONE, "Dead")
    listed = {g.group_id: g for g in driver.shard.list_groups()}
    assert {k: (g.group_state, g.protocol_type) for k, g in listed.items()} == {
        "a": ("Stable", "consumer"),
        "b": ("Empty", ""),
    }
    assert [g.group_id for g in driver.shard.list_groups({"empty"})] == ["b"]
    assert driver.shard.list_groups(types={"consumer"}) == []
    assert len(driver.shard.list_groups(types={"classic"})) == 2


def test_describe_hides_metadata_while_rebalancing(driver) -> None:
    (a, _b), _ = driver.stable_group(2)
    driver.join("g", a)
    described = driver.shard.describe_group("g")
    assert (described.group_state, described.protocol_data) == ("PreparingRebalance", "")
    assert described.members[0].member_assignment == b""


def test_offsets_of_an_empty_group_expire_after_the_retention(make_driver) -> None:
    driver = make_driver(offsets_retention_ms=DAY_MS, offsets_retention_check_interval_ms=60_000)
    session = 30 * 60_000
    (member,), generation = driver.stable_group(1, session=session)
    driver.commit("g", {("t", 0): (1, "")}, generation=generation, member_id=member)
    for _ in range(2 * 24 * 60 // 25):  # two days Stable and subscribed: nothing expires
        driver.advance(25 * 60_000)
        assert driver.heartbeat("g", member, generation) == E.NONE
    assert driver.committed("g", "t", 0).offset == 1
    driver.advance(session)  # the member goes silent: the group empties
    group = driver.shard.groups["g"]
    assert group.state is GroupState.EMPTY
    emptied_at = group.state_timestamp_ms
    driver.advance(emptied_at + DAY_MS - driver.now - 60_000)
    assert driver.committed("g", "t", 0) is not None
    driver.advance(120_000)
    assert "g" not in driver.shard.groups
    assert driver.shard.fetch_offsets("g", None) == (E.NONE, [])
    assert driver.log[-2:] == [
        OffsetCommitRecord("g", "t", 0, None),
        GroupMetadataRecord("g", None),
    ]


def test_simple_group_offsets_expire_by_commit_time(make_driver) -> None:
    driver = make_driver(offsets_retention_ms=DAY_MS, offsets_retention_check_interval_ms=60_000)
    driver.commit("s", {("t", 0): (1, "")})
    driver.advance(DAY_MS // 2)
    driver.commit("s", {("t", 1): (1, "")})
    driver.advance(DAY_MS // 2 + 60_000)
    assert driver.committed("s", "t", 0) is None
    assert driver.committed("s", "t", 1) is not None
    driver.advance(DAY_MS // 2)
    assert "s" not in driver.shard.groups


def test_explicit_retention_time_wins(make_driver) -> None:
    driver = make_driver(offsets_retention_ms=DAY_MS, offsets_retention_check_interval_ms=60_000)
    driver.commit("s", {("t", 0): (1, "")}, retention_ms=120_000, version=2)
    assert driver.committed("s", "t", 0).expire_timestamp_ms == START_MS + 120_000
    driver.advance(180_000)
    assert driver.committed("s", "t", 0) is None


def test_expiry_spares_commits_in_flight(make_driver) -> None:
    driver = make_driver(offsets_retention_ms=DAY_MS, offsets_retention_check_interval_ms=60_000)
    driver.commit("s", {("t", 0): (1, "")})
    driver.advance(DAY_MS - 30_000)
    driver.hold_writes = True
    driver.commit("s", {("t", 0): (2, "")})
    driver.advance(60_000)
    assert driver.held and len(driver.held) == 1  # no tombstone write was produced
    driver.release()
    assert driver.committed("s", "t", 0).offset == 2
