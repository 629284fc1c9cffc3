"""``klog-configs`` against a real broker."""

from __future__ import annotations


def _overrides(cli, *entity: str) -> dict[str, str]:
    return {c["name"]: c["value"] for c in cli.json("configs", "describe", *entity)}


def test_topic_overrides_set_and_removed(cli, topic_name) -> None:
    name = topic_name()
    cli.ok("topics", "create", name)
    assert cli.ok("configs", "describe", "--topic", name) == (
        f"No overrides for topic {name!r}; --all shows every config.\n"
    )
    assert cli.json("configs", "describe", "--topic", name) == []

    out = cli.ok(
        "configs", "alter", "--topic", name,
        "--add-config", "retention.ms=3600000,cleanup.policy=[compact,delete]",
        "--add-config", "segment.ms=600000",
    )  # fmt: skip
    assert out == (
        f"Updated topic {name!r}: set retention.ms=3600000, set cleanup.policy=compact,delete, "
        "set segment.ms=600000.\n"
    )
    assert _overrides(cli, "--topic", name) == {
        "cleanup.policy": "compact,delete",
        "retention.ms": "3600000",
        "segment.ms": "600000",
    }
    table = cli.ok("configs", "describe", "--topic", name).splitlines()
    assert table[0].split() == ["NAME", "VALUE", "SOURCE"]
    assert table[1].split() == ["cleanup.policy", "compact,delete", "DYNAMIC_TOPIC_CONFIG"]

    changed = cli.json(
        "configs", "alter", "--topic", name, "--delete-config", "retention.ms,segment.ms"
    )
    assert changed == {
        "resource_type": "topic",
        "name": name,
        "set": {},
        "deleted": ["retention.ms", "segment.ms"],
    }
    assert _overrides(cli, "--topic", name) == {"cleanup.policy": "compact,delete"}


def test_describe_all_shows_defaults_with_their_source(cli, topic_name) -> None:
    name = topic_name()
    cli.ok("topics", "create", name, "--config", "retention.ms=1000")
    everything = {c["name"]: c for c in cli.json("configs", "describe", "--topic", name, "--all")}
    assert everything["retention.ms"]["value"] == "1000"
    assert everything["retention.ms"]["source"] == "DYNAMIC_TOPIC_CONFIG"
    assert everything["segment.bytes"]["source"] == "DEFAULT_CONFIG"
    assert everything["segment.bytes"]["value"] == str(1 << 30)
    header = cli.ok("configs", "describe", "--topic", name, "--all").splitlines()[0]
    assert header.split() == ["NAME", "VALUE", "SOURCE", "READ-ONLY"]


def test_broker_configs(cli, klog_node) -> None:
    assert "log.retention.ms" not in _overrides(cli, "--broker", "1")
    cli.ok("configs", "alter", "--broker", "1", "--add-config", "log.retention.ms=86400000")
    assert _overrides(cli, "--broker", "1")["log.retention.ms"] == "86400000"
    everything = {c["name"]: c for c in cli.json("configs", "describe", "--broker", "1", "--all")}
    assert everything["num.partitions"]["value"] == "1"
    cli.ok("configs", "alter", "--broker", "1", "--delete-config", "log.retention.ms")
    assert "log.retention.ms" not in _overrides(cli, "--broker", "1")


def test_errors(cli, topic_name) -> None:
    name = topic_name()
    cli.ok("topics", "create", name)
    error = cli.fails("configs", "alter", "--topic", name, "--add-config", "retention.mss=5")
    assert error.startswith("Error: INVALID_CONFIG") and "retention.mss" in error
    error = cli.fails("configs", "alter", "--topic", name, "--add-config", "retention.ms=soon")
    assert error.startswith("Error: INVALID_CONFIG") and "retention.ms" in error
    assert _overrides(cli, "--topic", name) == {}

    missing = topic_name()
    assert "UNKNOWN_TOPIC_OR_PARTITION" in cli.fails("configs", "describe", "--topic", missing)
    assert "UNKNOWN_TOPIC_OR_PARTITION" in cli.fails(
        "configs", "alter", "--topic", missing, "--add-config", "retention.ms=1"
    )

    usage = [
        (["describe"], "give one of --topic, --broker"),
        (["describe", "--topic", name, "--broker", "1"], "--topic and --broker cannot be used"),
        (["alter", "--topic", name], "give --add-config and/or --delete-config"),
        (["alter", "--topic", name, "--add-config", "retention.ms"], "expected KEY=VALUE"),
        (["alter", "--topic", name, "--add-config", "a=[1,2"], "unbalanced '['"),
        (
            ["alter", "--topic", name, "--add-config", "a=1", "--delete-config", "a"],
            "a: both added and deleted",
        ),
        (["describe", "--broker", "one"], "'one' is not a valid integer"),
    ]
    for args, message in usage:
        assert message in cli.fails("configs", *args, code=2), args
