"""Assignors: Java's range/round-robin layouts, cooperative-sticky balance and stickiness,
and the consumer-protocol bytes round trip."""

from hypothesis import given, settings
from hypothesis import strategies as st

from klog.client.assignors import (
    CooperativeStickyAssignor,
    MemberSubscription,
    RangeAssignor,
    RoundRobinAssignor,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from klog.client.types import TopicPartition as TP


def members(*specs):
    return [MemberSubscription(member_id=m, topics=topics) for m, topics in specs]


def test_range_matches_java_layout() -> None:
    # Java RangeAssignorTest.testTwoConsumersTwoTopicsSixPartitions style layout:
    # 3 partitions per topic over 2 consumers -> [0,1] and [2] for each topic.
    result = RangeAssignor().assign(
        {"t1": 3, "t2": 3}, members(("c1", ["t1", "t2"]), ("c2", ["t1", "t2"]))
    )
    assert result == {
        "c1": [TP("t1", 0), TP("t1", 1), TP("t2", 0), TP("t2", 1)],
        "c2": [TP("t1", 2), TP("t2", 2)],
    }


def test_range_only_assigns_subscribed_topics() -> None:
    result = RangeAssignor().assign({"a": 2, "b": 1}, members(("m1", ["a"]), ("m2", ["a", "b"])))
    assert result == {"m1": [TP("a", 0)], "m2": [TP("a", 1), TP("b", 0)]}


def test_roundrobin_matches_java_layout() -> None:
    result = RoundRobinAssignor().assign(
        {"t1": 3, "t2": 3}, members(("c1", ["t1", "t2"]), ("c2", ["t1", "t2"]))
    )
    assert result == {
        "c1": [TP("t1", 0), TP("t1", 2), TP("t2", 1)],
        "c2": [TP("t1", 1), TP("t2", 0), TP("t2", 2)],
    }


def test_static_members_are_ordered_by_instance_id() -> None:
    subs = [
        MemberSubscription("a-member", ["t"], group_instance_id="z"),
        MemberSubscription("b-member", ["t"], group_instance_id="y"),
    ]
    result = RangeAssignor().assign({"t": 2}, subs)
    assert result == {"b-member": [TP("t", 0)], "a-member": [TP("t", 1)]}


@st.composite
def groups(draw):
    topics = {f"t{i}": draw(st.integers(0, 7)) for i in range(draw(st.integers(1, 3)))}
    n = draw(st.integers(1, 5))
    subs = [
        MemberSubscription(
            f"m{i}", sorted(draw(st.sets(st.sampled_from(sorted(topics)), min_size=1)))
        )
        for i in range(n)
    ]
    return topics, subs


@settings(max_examples=150, deadline=None)
@given(groups())
def test_every_assignor_assigns_each_subscribed_partition_once(group) -> None:
    topics, subs = group
    wanted = {TP(t, p) for m in subs for t in m.topics for p in range(topics[t])}
    for assignor in (RangeAssignor(), RoundRobinAssignor(), CooperativeStickyAssignor()):
        result = assignor.assign(topics, subs)
        given_out = [tp for tps in result.values() for tp in tps]
        assert len(given_out) == len(set(given_out)), assignor.name
        assert set(given_out) == wanted, assignor.name
        for m in subs:
            assert all(tp.topic in m.topics for tp in result[m.member_id])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6))
def test_cooperative_sticky_balances_equal_subscriptions(partitions: int, n: int) -> None:
    result = CooperativeStickyAssignor().assign(
        {"t": partitions}, [MemberSubscription(f"m{i}", ["t"]) for i in range(n)]
    )
    loads = [len(v) for v in result.values()]
    assert max(loads) - min(loads) <= 1


def test_cooperative_sticky_keeps_owned_and_withholds_moving_partitions() -> None:
    everything = [TP("t", p) for p in range(6)]
    first = MemberSubscription("m1", ["t"], owned_partitions=everything, generation_id=1)
    joiner = MemberSubscription("m2", ["t"])
    result = CooperativeStickyAssignor().assign({"t": 6}, [first, joiner])
    # m1 keeps three of its partitions; the three that must move are withheld this round.
    assert len(result["m1"]) == 3 and set(result["m1"]) < set(everything)
    assert result["m2"] == []
    # After m1 revoked them, the next rebalance gives them to m2 and moves nothing else.
    kept = MemberSubscription("m1", ["t"], owned_partitions=result["m1"], generation_id=2)
    second = CooperativeStickyAssignor().assign({"t": 6}, [kept, joiner])
    assert second["m1"] == result["m1"]
    assert sorted(second["m2"]) == sorted(set(everything) - set(result["m1"]))


def test_cooperative_sticky_resolves_double_claims_by_generation() -> None:
    stale = MemberSubscription("m1", ["t"], owned_partitions=[TP("t", 0)], generation_id=1)
    fresh = MemberSubscription("m2", ["t"], owned_partitions=[TP("t", 0)], generation_id=2)
    result = CooperativeStickyAssignor().assign({"t": 2}, [stale, fresh])
    assert TP("t", 0) in result["m2"] and TP("t", 0) not in result["m1"]


def test_subscription_and_assignment_bytes_round_trip() -> None:
    data = encode_subscription(["b", "a"], [TP("a", 1), TP("a", 0)], generation_id=4)
    sub = decode_subscription("mid", "inst", data)
    assert sub.topics == ["a", "b"]
    assert sorted(sub.owned_partitions) == [TP("a", 0), TP("a", 1)]
    assert sub.generation_id == 4 and sub.group_instance_id == "inst"
    assert decode_assignment(encode_assignment([TP("x", 2), TP("x", 0)])) == [
        TP("x", 0),
        TP("x", 2),
    ]
    assert decode_assignment(b"") == []


def test_subscription_v0_bytes_from_other_clients_decode() -> None:
    # version 0 | topics ["t"] | user_data null: what older clients send.
    data = b"\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x01t" + b"\xff\xff\xff\xff"
    sub = decode_subscription("m", None, data)
    assert sub.topics == ["t"] and list(sub.owned_partitions) == []
