"""``klog-topics`` against a real broker: what a user types and what they see."""

from __future__ import annotations

import json
from datetime import UTC, datetime


def test_create_list_describe_delete(cli, topic_name) -> None:
    name = topic_name()
    assert cli.ok("topics", "create", name, "--partitions", "3") == f"Created topic {name!r}.\n"

    table = cli.ok("topics", "list").splitlines()
    assert table[0].split() == ["TOPIC", "PARTITIONS", "REPLICAS"]
    assert [name, "3", "1"] in [line.split() for line in table[1:]]
    listed = cli.json("topics", "list")
    assert {"topic": name, "partitions": 3, "replication_factor": 1, "internal": False} in listed

    described = cli.ok("topics", "describe", name).splitlines()
    assert described[0].split() == [
        "TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START-OFFSET", "LOG-END-OFFSET"
    ]  # fmt: skip
    assert [line.split() for line in described[1:]] == [
        [name, str(p), "1", "1", "1", "0", "0"] for p in range(3)
    ]
    [doc] = cli.json("topics", "describe", name)
    assert doc["topic"] == name and doc["internal"] is False and doc["topic_id"]
    assert doc["partitions"][2] == {
        "partition": 2,
        "leader": 1,
        "replicas": [1],
        "isr": [1],
        "offline_replicas": [],
        "log_start_offset": 0,
        "log_end_offset": 0,
    }
    # Everything in sync on one node: the filter leaves nothing.
    assert cli.json("topics", "describe", "--under-replicated") == []
    assert cli.ok("topics", "describe", name, "--under-replicated").splitlines()[1:] == []

    assert cli.ok("topics", "delete", name) == f"Deleted topic {name!r}.\n"
    assert name not in [t["topic"] for t in cli.json("topics", "list")]


def test_create_twice_and_delete_missing(cli, topic_name) -> None:
    name = topic_name()
    cli.ok("topics", "create", name)
    error = cli.fails("topics", "create", name)
    assert "TOPIC_ALREADY_EXISTS" in error and name in error
    assert cli.json("topics", "create", name, "--if-not-exists") == {
        "topic": name,
        "created": False,
    }

    missing = topic_name()
    assert "UNKNOWN_TOPIC_OR_PARTITION" in cli.fails("topics", "delete", missing)
    assert (
        cli.ok("topics", "delete", missing, "--if-exists") == f"Topic {missing!r} does not exist.\n"
    )
    assert "UNKNOWN_TOPIC_OR_PARTITION" in cli.fails("topics", "describe", missing)


def test_create_with_configs_and_bad_config(cli, topic_name) -> None:
    name = topic_name()
    cli.ok(
        "topics", "create", name, "--config", "retention.ms=3600000",
        "--config", "cleanup.policy=compact,delete",
    )  # fmt: skip
    overrides = {c["name"]: c["value"] for c in cli.json("configs", "describe", "--topic", name)}
    assert overrides == {"retention.ms": "3600000", "cleanup.policy": "compact,delete"}

    bad = topic_name()
    error = cli.fails("topics", "create", bad, "--config", "retention.mss=1")
    assert error.startswith("Error: INVALID_CONFIG") and "retention.mss" in error
    assert "--config" in cli.fails("topics", "create", bad, "--config", "novalue", code=2)
    assert bad not in [t["topic"] for t in cli.json("topics", "list")]


def test_alter_partitions(cli, topic_name) -> None:
    name = topic_name()
    cli.ok("topics", "create", name, "--partitions", "2")
    assert cli.ok("topics", "alter", name, "--partitions", "5") == (
        f"Topic {name!r} now has 5 partitions.\n"
    )
    [doc] = cli.json("topics", "describe", name)
    assert [p["partition"] for p in doc["partitions"]] == [0, 1, 2, 3, 4]
    assert "INVALID_PARTITIONS" in cli.fails("topics", "alter", name, "--partitions", "3")
    assert "UNKNOWN_TOPIC_OR_PARTITION" in cli.fails(
        "topics", "alter", topic_name(), "--partitions", "3"
    )


def test_produce_lines_then_consume_with_format(cli, topic_name) -> None:
    name = topic_name()
    cli.ok("topics", "create", name)
    out = cli.ok(
        "topics", "produce", name, "--key-separator", ":", "--header", "src=cli",
        "--header", "v=2", input="k1:one\nk2:two:with:colons\n:no-key-text\r\n",
    )  # fmt: skip
    assert out.splitlines()[0] == f"Produced 3 records to {name!r}."
    assert out.splitlines()[2].split() == ["0", "3", "0", "2"]

    lines = cli.ok(
        "topics", "consume", name, "--from-beginning", "--max-messages", "3",
        "--format", r"{topic}|{partition}|{offset}|{key}|{value}|{headers}|{timestamp}",
    ).splitlines()  # fmt: skip
    fields = [line.split("|") for line in lines]
    assert [f[:6] for f in fields] == [
        [name, "0", "0", "k1", "one", "src:cli,v:2"],
        [name, "0", "1", "k2", "two:with:colons", "src:cli,v:2"],
        [name, "0", "2", "", "no-key-text", "src:cli,v:2"],
    ]
    assert all(f[6].isdigit() for f in fields)

    # \t in --format is a tab; JSON output is one object per line.
    tabbed = cli.ok(
        "topics", "consume", name, "--offset", "earliest", "--max-messages", "1",
        "--format", r"{offset}\t{value}",
    )  # fmt: skip
    assert tabbed == "0\tone\n"
    result = cli("topics", "consume", name, "--from-beginning", "--max-messages", "2", "-o", "json")
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["key"] == "k1" and first["value"] == "one" and first["offset"] == 0
    assert first["headers"] == [["src", "cli"], ["v", "2"]]
    assert second["offset"] == 1
    assert result.stderr == "Processed a total of 2 messages\n"


def test_produce_without_key_separator_on_a_line_fails_after_sending_the_earlier_ones(
    cli, topic_name
) -> None:
    name = topic_name()
    cli.ok("topics", "create", name)
    result = cli("topics", "produce", name, "--key-separator", "=", input="a=1\nb=2\nplain\nc=3\n")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: line 3 has no key separator '=' (the 2 records before it were sent)"
    )
    [doc] = cli.json("topics", "describe", name)
    assert doc["partitions"][0]["log_end_offset"] == 2


def test_produce_file_compressed_to_chosen_partition(cli, topic_name, tmp_path) -> None:
    name = topic_name()
    cli.ok("topics", "create", name, "--partitions", "2")
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"record number {i}\n" for i in range(500)))
    report = cli.json(
        "topics", "produce", name, "--file", str(path), "--compression", "zstd",
        "--acks", "1", "--partition", "1",
    )  # fmt: skip
    assert report == {
        "topic": name,
        "records": 500,
        "partitions": [{"partition": 1, "records": 500, "first_offset": 0, "last_offset": 499}],
    }
    tail = cli.ok(
        "topics", "consume", name, "--partition", "1", "--offset", "-2", "--max-messages", "2"
    )
    assert tail == "record number 498\nrecord number 499\n"
    assert "does not exist" in cli.fails(
        "topics", "produce", name, "--file", "/nonexistent", code=2
    )


def test_consume_start_offsets(cli, topic_name) -> None:
    name = topic_name()
    cli.ok("topics", "create", name)
    cli.ok("topics", "produce", name, input="a\nb\n")
    cli.ok("topics", "produce", name, input="c\nd\n")
    records = [
        json.loads(line)
        for line in cli.ok(
            "topics", "consume", name, "--from-beginning", "--max-messages", "4", "-o", "json"
        ).splitlines()
    ]
    assert [r["value"] for r in records] == ["a", "b", "c", "d"]

    def values(*args: str) -> list[str]:
        return cli.ok("topics", "consume", name, "--timeout", "1", *args).splitlines()

    assert values("--offset", "2") == ["c", "d"]
    assert values("--offset", "-1") == ["d"]
    assert values("--offset", "-10") == ["a", "b", "c", "d"]  # clamped to the log start
    assert values("--offset", "latest") == []
    ts_c = records[2]["timestamp"]
    assert values("--offset", f"@{ts_c}") == ["c", "d"]
    iso = datetime.fromtimestamp(ts_c / 1000, tz=UTC).isoformat(timespec="milliseconds")
    assert values("--offset", f"@{iso}") == ["c", "d"]
    assert values("--offset", f"@{records[3]['timestamp'] + 60_000}") == []


def test_consume_usage_errors(cli, topic_name) -> None:
    name = topic_name()
    cli.ok("topics", "create", name, "--partitions", "2")
    assert "unknown placeholder {val}" in cli.fails(
        "topics", "consume", name, "--format", "{val}", code=2
    )
    assert "--offset" in cli.fails("topics", "consume", name, "--offset", "soon", code=2)
    assert "cannot be used together" in cli.fails(
        "topics", "consume", name, "--from-beginning", "--offset", "3", code=2
    )
    assert "cannot be used with --group" in cli.fails(
        "topics", "consume", name, "--group", "g", "--partition", "0", code=2
    )
    assert cli.fails("topics", "consume", name, "--partition", "7") == (
        f"Error: topic {name!r} has no partition 7 (it has 2)"
    )
    assert "UNKNOWN_TOPIC_OR_PARTITION" in cli.fails(
        "topics", "consume", "no-such-topic", "--timeout", "1"
    )


def test_options_on_the_group_or_the_subcommand(cli, topic_name, klog_node) -> None:
    name = topic_name()
    cli.ok("topics", "create", name)
    # cli() puts --bootstrap-server before the subcommand; -o may go on either side.
    as_json = cli.ok("topics", "-o", "json", "list")
    assert name in [t["topic"] for t in json.loads(as_json)]
    assert cli.ok("topics", "-o", "json", "list", "-o", "table").startswith("TOPIC")
    # A subcommand's --bootstrap-server wins over the group's.
    result = cli("topics", "list", "--bootstrap-server", "127.0.0.1:1")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no broker reachable at 127.0.0.1:1")


def test_produce_to_a_missing_partition_or_topic(cli, topic_name, klog_node_factory) -> None:
    name = topic_name()
    cli.ok("topics", "create", name)
    assert cli.fails("topics", "produce", name, "--partition", "3", input="x\n") == (
        f"Error: UNKNOWN_TOPIC_OR_PARTITION: partition 3 of {name!r} does not exist (it has 1)"
    )
    # With auto-creation off, an unknown topic fails after the producer's wait (10 s).
    strict = klog_node_factory({"auto.create.topics.enable": "false"}, name="strict").start()
    assert cli.on(strict).fails("topics", "produce", "nope", input="x\n") == (
        "Error: topic 'nope' does not exist and the broker did not create it within 10 s "
        "(create it with: klog-topics create nope)"
    )
