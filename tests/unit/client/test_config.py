"""Producer settings: Kafka 3's idempotence default and its conflicts."""

import pytest

from klog.client.config import resolve


def test_idempotence_is_on_by_default() -> None:
    assert resolve("Producer", {})["enable_idempotence"] is True


@pytest.mark.parametrize(
    "conflict",
    [{"acks": 1}, {"acks": "0"}, {"retries": 0}, {"max_in_flight_requests_per_connection": 6}],
)
def test_a_conflicting_setting_turns_the_default_off(conflict: dict) -> None:
    assert resolve("Producer", conflict)["enable_idempotence"] is False


@pytest.mark.parametrize(
    ("conflict", "named"),
    [
        ({"acks": 1}, "acks=1"),
        ({"retries": 0}, "retries=0"),
        ({"max_in_flight_requests_per_connection": 6}, "max_in_flight_requests_per_connection=6"),
    ],
)
def test_asking_for_idempotence_with_a_conflict_names_the_setting(
    conflict: dict, named: str
) -> None:
    with pytest.raises(ValueError, match=f"enable_idempotence=True conflicts with {named}"):
        resolve("Producer", {"enable_idempotence": True, **conflict})


def test_idempotence_can_be_turned_off() -> None:
    settings = resolve("Producer", {"enable_idempotence": False, "acks": 1})
    assert settings["enable_idempotence"] is False


def test_acks_all_spellings_keep_idempotence() -> None:
    for acks in ("all", -1, "-1"):
        assert resolve("Producer", {"acks": acks})["enable_idempotence"] is True
