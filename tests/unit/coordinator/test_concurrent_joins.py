"""Consumers joining, syncing and heartbeating in any interleaving never hear that they
are unknown or of an old generation, and always settle in one Stable generation."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klog.coordinator import GroupState
from klog.wire.errors import ErrorCode as E
from tests.unit.coordinator.conftest import Client, Driver

MEMBERS = 4
SESSION_MS = 10_000


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 1_500),  # time passing before the step
            st.lists(st.booleans(), min_size=MEMBERS, max_size=MEMBERS),  # who acts
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(0, 3_000),  # group.initial.rebalance.delay.ms
)
def test_live_consumers_are_never_told_they_are_unknown(steps, initial_delay) -> None:
    driver = Driver(initial_rebalance_delay_ms=initial_delay)
    clients = [Client("g", None) for _ in range(MEMBERS)]
    idle = [0] * MEMBERS
    for advance, acting in steps:
        driver.advance(advance)
        for i, client in enumerate(clients):
            # Every consumer acts at least every 5 steps (7.5s): well inside its session.
            if acting[i] or idle[i] >= 4:
                client.act(driver)
                idle[i] = 0
            else:
                idle[i] += 1
            for each in clients:
                each.absorb(driver)
    for _ in range(40):  # then everybody keeps acting until the group settles
        driver.advance(500)
        for client in clients:
            client.act(driver)
            for each in clients:
                each.absorb(driver)
    group = driver.shard.groups["g"]
    assert group.state is GroupState.STABLE
    assert len(group.members) == MEMBERS
    assert {c.generation for c in clients} == {group.generation_id}
    assert {c.phase for c in clients} == {"heartbeat"}
    for client in clients:
        assert E.UNKNOWN_MEMBER_ID not in client.errors
        assert E.ILLEGAL_GENERATION not in client.errors
