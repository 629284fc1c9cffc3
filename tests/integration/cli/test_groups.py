"""``klog-groups`` (and ``klog-topics consume --group``) against a real broker."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from klog.client import Consumer


@pytest.fixture
def klog_node(klog_node_factory):
    """A node that starts groups at once, with a small __consumer_offsets."""
    overrides = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "4"}
    return klog_node_factory(overrides).start()


def group_name() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def _fill(cli, topic: str) -> None:
    """Partition 0 gets p0-0..p0-5, partition 1 gets p1-0..p1-3."""
    cli.ok("topics", "create", topic, "--partitions", "2")
    for partition, count in ((0, 6), (1, 4)):
        lines = "".join(f"p{partition}-{i}\n" for i in range(count))
        cli.ok("topics", "produce", topic, "--partition", str(partition), input=lines)


def _offsets(cli, group: str) -> dict[int, tuple[int | None, int, int | None]]:
    """partition -> (current offset, log end offset, lag) from ``describe --output json``."""
    doc = cli.json("groups", "describe", group)
    return {
        o["partition"]: (o["current_offset"], o["log_end_offset"], o["lag"]) for o in doc["offsets"]
    }


def test_consume_as_a_group_then_inspect_and_reset(cli, topic_name) -> None:
    topic, group = topic_name(), group_name()
    _fill(cli, topic)
    printed = cli.ok(
        "topics", "consume", topic, "--group", group, "--from-beginning",
        "--max-messages", "7", "--timeout", "20",
    ).splitlines()  # fmt: skip
    assert len(printed) == 7 and len(set(printed)) == 7

    assert {"group": group, "state": "Empty", "protocol_type": "consumer"} in cli.json(
        "groups", "list"
    )
    table = cli.ok("groups", "list").splitlines()
    assert table[0].split() == ["GROUP", "STATE", "PROTOCOL-TYPE"]
    assert [group, "Empty", "consumer"] in [line.split() for line in table]

    # Only what was printed is committed: 7 of 10 records, so a lag of 3.
    offsets = _offsets(cli, group)
    assert sorted(offsets) == [0, 1]
    assert sum(current for current, _, _ in offsets.values()) == 7
    assert {p: end for p, (_, end, _) in offsets.items()} == {0: 6, 1: 4}
    assert sum(lag for _, _, lag in offsets.values()) == 3
    text = cli.ok("groups", "describe", group)
    assert text.splitlines()[0].startswith(f"Group {group!r}: state Empty, 0 member(s)")
    header = text.splitlines()[2].split()
    assert header == [
        "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
        "CONSUMER-ID", "HOST", "CLIENT-ID",
    ]  # fmt: skip
    assert f"Group {group!r} has no active members." in text

    # A second consumer in the group resumes after what the first printed.
    rest = cli.ok(
        "topics", "consume", topic, "--group", group, "--max-messages", "3", "--timeout", "20"
    ).splitlines()
    assert sorted(printed + rest) == sorted(
        [f"p0-{i}" for i in range(6)] + [f"p1-{i}" for i in range(4)]
    )
    assert _offsets(cli, group) == {0: (6, 6, 0), 1: (4, 4, 0)}

    # Dry run by default: the plan is shown, nothing changes.
    plan = cli.ok("groups", "reset-offsets", group, "--topic", topic, "--to-earliest")
    lines = plan.splitlines()
    assert lines[0].split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]
    assert lines[1].split() == [group, topic, "0", "6", "0"]
    assert lines[2].split() == [group, topic, "1", "4", "0"]
    assert lines[-1] == "Dry run: nothing was committed; add --execute to apply."
    assert _offsets(cli, group) == {0: (6, 6, 0), 1: (4, 4, 0)}

    def reset(*how: str, target: str = topic) -> dict[int, int]:
        doc = cli.json("groups", "reset-offsets", group, "--topic", target, *how, "--execute")
        assert doc["executed"] is True
        return {o["partition"]: o["new_offset"] for o in doc["offsets"]}

    assert reset("--to-earliest") == {0: 0, 1: 0}
    assert _offsets(cli, group) == {0: (0, 6, 6), 1: (0, 4, 4)}
    assert reset("--shift-by", "3") == {0: 3, 1: 3}
    assert reset("--shift-by", "100") == {0: 6, 1: 4}  # kept within the log
    assert reset("--shift-by", "-5") == {0: 1, 1: 0}
    assert reset("--to-offset", "2", target=f"{topic}:1") == {1: 2}
    assert _offsets(cli, group) == {0: (1, 6, 5), 1: (2, 4, 2)}
    assert reset("--to-latest") == {0: 6, 1: 4}
    assert reset("--by-duration", "P1D") == {0: 0, 1: 0}  # every record is younger
    assert reset("--to-datetime", "2999-01-01T00:00:00Z") == {0: 6, 1: 4}  # none that late
    all_topics = cli.json(
        "groups", "reset-offsets", group, "--all-topics", "--to-offset", "1", "--execute"
    )
    assert [(o["partition"], o["new_offset"]) for o in all_topics["offsets"]] == [(0, 1), (1, 1)]

    # After a reset, the group consumes from the new offsets.
    again = cli.ok(
        "topics", "consume", topic, "--group", group, "--max-messages", "8", "--timeout", "20"
    ).splitlines()
    assert sorted(again) == sorted(
        [f"p0-{i}" for i in range(1, 6)] + [f"p1-{i}" for i in (1, 2, 3)]
    )

    out = cli.ok("groups", "delete-offsets", group, "--topic", f"{topic}:1")
    assert out.splitlines()[0] == f"Deleted the committed offsets of group {group!r} for:"
    assert sorted(_offsets(cli, group)) == [0]

    assert cli.ok("groups", "delete", group) == f"Deleted group {group!r}.\n"
    assert group not in [g["group"] for g in cli.json("groups", "list")]
    assert cli.fails("groups", "describe", group) == (
        f"Error: consumer group {group!r} does not exist"
    )


def test_active_group_shows_members_and_refuses_changes(cli, topic_name) -> None:
    topic, group = topic_name(), group_name()
    _fill(cli, topic)
    with Consumer(
        cli.bootstrap, group_id=group, client_id="cli-test-member", auto_offset_reset="earliest"
    ) as consumer:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(consumer.assignment()) < 2:
            assert time.monotonic() < deadline, "the consumer never got its partitions"
            consumer.poll(0.2)
        consumer.commit()

        doc = cli.json("groups", "describe", group)
        assert doc["state"] == "Stable" and doc["protocol_type"] == "consumer"
        [member] = doc["members"]
        assert member["client_id"] == "cli-test-member" and member["partitions"] == 2
        assert member["assignment"] == [
            {"topic": topic, "partition": 0},
            {"topic": topic, "partition": 1},
        ]
        assert {o["consumer_id"] for o in doc["offsets"]} == {member["consumer_id"]}
        assert {o["client_id"] for o in doc["offsets"]} == {"cli-test-member"}
        text = cli.ok("groups", "describe", group)
        assert f"{topic}:0,1" in text and "#PARTITIONS" in text

        # The plan can be looked at; executing it, or deleting the group, cannot.
        assert cli.ok("groups", "reset-offsets", group, "--topic", topic, "--to-earliest")
        error = cli.fails(
            "groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute"
        )
        assert "no active members; it is Stable" in error
        assert "NON_EMPTY_GROUP" in cli.fails("groups", "delete", group)


def test_group_errors(cli, topic_name) -> None:
    topic, group = topic_name(), group_name()
    cli.ok("topics", "create", topic, "--partitions", "2")
    assert (
        cli.fails("groups", "describe", group) == f"Error: consumer group {group!r} does not exist"
    )
    assert "GROUP_ID_NOT_FOUND" in cli.fails("groups", "delete", group)
    assert cli.fails("groups", "reset-offsets", group, "--all-topics", "--to-earliest") == (
        f"Error: group {group!r} has no committed offsets (name the topics with --topic)"
    )
    assert "has no committed offset there" in cli.fails(
        "groups", "reset-offsets", group, "--topic", topic, "--shift-by", "1"
    )
    assert f"topic {topic!r} has no partition 5 (it has 2)" in cli.fails(
        "groups", "reset-offsets", group, "--topic", f"{topic}:0,5", "--to-earliest"
    )
    assert "UNKNOWN_TOPIC_OR_PARTITION" in cli.fails(
        "groups", "reset-offsets", group, "--topic", topic_name(), "--to-earliest"
    )
    usage = [
        (["reset-offsets", group, "--to-earliest"], "give one of --topic, --all-topics"),
        (["reset-offsets", group, "--topic", topic], "give one of --to-earliest"),
        (
            ["reset-offsets", group, "--topic", topic, "--to-earliest", "--shift-by", "1"],
            "--to-earliest and --shift-by cannot be used together",
        ),
        (["reset-offsets", group, "--topic", f"{topic}:x", "--to-earliest"], "must be numbers"),
        (["reset-offsets", group, "--topic", topic, "--by-duration", "1h"], "ISO 8601 duration"),
        (["reset-offsets", group, "--topic", topic, "--to-datetime", "yesterday"], "ISO 8601"),
        (["delete-offsets", group], "Missing option '--topic'"),
    ]
    for args, message in usage:
        assert message in cli.fails("groups", *args, code=2), args


def test_list_filters_by_state(cli, topic_name) -> None:
    topic, group = topic_name(), group_name()
    _fill(cli, topic)
    cli.ok("topics", "consume", topic, "--group", group, "--from-beginning", "--max-messages", "1")
    assert group in [g["group"] for g in cli.json("groups", "list", "--state", "Empty")]
    assert group not in [g["group"] for g in cli.json("groups", "list", "--state", "Stable")]
    assert json.loads(cli.ok("groups", "list", "--output", "json", "--state", "Dead")) == []
