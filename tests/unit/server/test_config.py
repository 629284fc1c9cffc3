"""klog.server.config: the config table, loading, precedence, errors, dynamic updates, topics."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klog.server.config import (
    BROKER_CONFIGS,
    NON_CONFIG_ENV_VARS,
    TOPIC_CONFIGS,
    AlterOp,
    BrokerConfig,
    ConfigError,
    ConfigSource,
    ConfigType,
    HostPort,
    InvalidConfigValueError,
    InvalidTopicNameError,
    Listener,
    ReadOnlyConfigError,
    Synonym,
    UnknownConfigError,
    UpdateMode,
    Voter,
    apply_incremental_alter,
    effective_topic_config,
    env_var_name,
    load_broker_config,
    log_config,
    validate_topic_configs,
    validate_topic_name,
)
from klog.server.config_types import LONG_MAX, to_string

DEFAULT = ConfigSource.DEFAULT_CONFIG
STATIC = ConfigSource.STATIC_BROKER_CONFIG
DYN_DEFAULT = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
DYN_BROKER = ConfigSource.DYNAMIC_BROKER_CONFIG
TOPIC = ConfigSource.DYNAMIC_TOPIC_CONFIG

# A multi-listener combined node in the shape of Kafka's sample KRaft server.properties.
KRAFT_SAMPLE = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,\\
  SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
#log.flush.interval.messages=10000
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
"""


def _error(func: Callable[..., object], *args: object, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        func(*args, **kwargs)
    message = str(err.value)
    assert message and "\n" not in message, "config errors are one line"
    return err.value


# --- the table -----------------------------------------------------------------------------------


def test_every_default_is_valid_and_round_trips_through_its_string() -> None:
    for table in (BROKER_CONFIGS, TOPIC_CONFIGS):
        for name, definition in table.items():
            assert definition.name == name
            assert definition.doc and "\n" not in definition.doc, name
            if definition.default is not None:
                text = to_string(definition.type, definition.default)
                assert text is not None
                assert definition.parse(text) == definition.default, name


def test_topic_synonyms_are_broker_configs_and_first_ones_are_cluster_wide_dynamic() -> None:
    numbers = {ConfigType.INT, ConfigType.LONG, ConfigType.SHORT}
    for topic in TOPIC_CONFIGS.values():
        assert topic.update_mode is None
        for position, (name, factor) in enumerate(topic.synonyms):
            broker = BROKER_CONFIGS[name]
            same_kind = broker.type == topic.type or {broker.type, topic.type} <= numbers
            assert same_kind, (topic.name, name)
            assert factor == 1 or broker.type in numbers
            if position == 0:
                # Kafka's DynamicLogConfig.ReconfigurableConfigs
                assert broker.update_mode is UpdateMode.CLUSTER_WIDE, name


def test_topic_defaults_equal_the_broker_defaults_they_derive_from() -> None:
    effective = effective_topic_config(BrokerConfig(), {})
    for name, definition in TOPIC_CONFIGS.items():
        assert effective[name].value == definition.default, name
        assert effective[name].source is DEFAULT


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("listeners", UpdateMode.PER_BROKER),
        ("advertised.listeners", UpdateMode.PER_BROKER),
        ("listener.security.protocol.map", UpdateMode.PER_BROKER),
        ("log.retention.ms", UpdateMode.CLUSTER_WIDE),
        ("log.retention.hours", UpdateMode.READ_ONLY),
        ("log.retention.minutes", UpdateMode.READ_ONLY),
        ("log.roll.ms", UpdateMode.CLUSTER_WIDE),
        ("log.roll.hours", UpdateMode.READ_ONLY),
        ("log.flush.interval.ms", UpdateMode.CLUSTER_WIDE),
        ("log.flush.scheduler.interval.ms", UpdateMode.READ_ONLY),
        ("message.max.bytes", UpdateMode.CLUSTER_WIDE),
        ("min.insync.replicas", UpdateMode.CLUSTER_WIDE),
        ("log.cleaner.threads", UpdateMode.CLUSTER_WIDE),
        ("num.io.threads", UpdateMode.CLUSTER_WIDE),
        ("num.network.threads", UpdateMode.CLUSTER_WIDE),
        ("producer.id.expiration.ms", UpdateMode.CLUSTER_WIDE),
        ("log.dirs", UpdateMode.READ_ONLY),
        ("node.id", UpdateMode.READ_ONLY),
        ("auto.create.topics.enable", UpdateMode.READ_ONLY),
        ("offsets.topic.num.partitions", UpdateMode.READ_ONLY),
    ],
)
def test_update_modes_follow_kafkas_dynamic_sets(name: str, mode: UpdateMode) -> None:
    assert BROKER_CONFIGS[name].update_mode is mode


def test_environment_variable_names_are_unique() -> None:
    names = [env_var_name(name) for name in BROKER_CONFIGS]
    assert len(set(names)) == len(names)
    assert not set(names) & NON_CONFIG_ENV_VARS
    assert env_var_name("log.retention.ms") == "KLOG_LOG_RETENTION_MS"
    assert env_var_name("klog.cluster.id") == "KLOG_CLUSTER_ID"


# --- defaults and typed access -------------------------------------------------------------------


def test_no_configuration_is_a_working_single_node() -> None:
    cfg = BrokerConfig()
    assert cfg.node_id == 1
    assert cfg.process_roles == ("broker", "controller")
    assert cfg.is_broker and cfg.is_controller
    assert cfg.listeners == [Listener("PLAINTEXT", "127.0.0.1", 9092)]
    assert cfg.advertised_listeners == cfg.listeners
    assert cfg.inter_broker_listener_name == "PLAINTEXT"
    assert cfg.log_dirs == ["./klog-data"]
    assert cfg.metadata_log_dir == "./klog-data"
    assert cfg.quorum_voters == []
    assert cfg.retention_ms == 168 * 3_600_000
    assert cfg.roll_ms == 168 * 3_600_000
    assert cfg.roll_jitter_ms == 0
    assert cfg.source("num.partitions") is DEFAULT


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("num.partitions", 1),
        ("default.replication.factor", 1),
        ("min.insync.replicas", 1),
        ("auto.create.topics.enable", True),
        ("delete.topic.enable", True),
        ("message.max.bytes", 1048588),
        ("socket.request.max.bytes", 104857600),
        ("connections.max.idle.ms", 600000),
        ("log.segment.bytes", 1 << 30),
        ("log.index.interval.bytes", 4096),
        ("log.index.size.max.bytes", 10 << 20),
        ("log.flush.interval.messages", LONG_MAX),
        ("log.flush.interval.ms", None),
        ("log.retention.bytes", -1),
        ("log.cleanup.policy", ("delete",)),
        ("log.cleaner.min.cleanable.ratio", 0.5),
        ("log.message.timestamp.type", "CreateTime"),
        ("compression.type", "producer"),
        ("unclean.leader.election.enable", False),
        ("offsets.topic.num.partitions", 50),
        ("offsets.topic.replication.factor", 3),
        ("offsets.retention.minutes", 10080),
        ("group.initial.rebalance.delay.ms", 3000),
        ("group.min.session.timeout.ms", 6000),
        ("group.max.session.timeout.ms", 1800000),
        ("controller.quorum.election.timeout.ms", 1000),
        ("controller.quorum.fetch.timeout.ms", 2000),
        ("broker.heartbeat.interval.ms", 2000),
        ("broker.session.timeout.ms", 9000),
        ("fetch.max.bytes", 57671680),
        ("queued.max.requests", 500),
        ("replica.lag.time.max.ms", 30000),
        ("transactional.id.expiration.ms", 604800000),
        ("producer.id.expiration.ms", 86400000),
    ],
)
def test_kafka_defaults(name: str, value: object) -> None:
    assert BrokerConfig()[name] == value


def test_unknown_name_in_code_is_a_key_error_with_suggestions() -> None:
    with pytest.raises(KeyError, match=r"did you mean num\.partitions"):
        BrokerConfig()["num.partition"]
    with pytest.raises(KeyError):
        BrokerConfig().source("nope")


def test_structured_getters() -> None:
    cfg = BrokerConfig(
        {
            "listeners": "PLAINTEXT://0.0.0.0:9092,controller://:9093,REPL://[::1]:9094",
            "advertised.listeners": "PLAINTEXT://kafka.example:9092,REPL://[::1]:9094",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,REPL:PLAINTEXT",
            "controller.listener.names": "controller",
            "inter.broker.listener.name": "repl",
            "controller.quorum.voters": "1@a:9093,2@b:9093,3@c:9093",
            "log.dirs": "/d1, /d2",
            "log.dir": "/ignored",
            "metadata.log.dir": "/meta",
        }
    )
    assert cfg.controller_listener_names == ("CONTROLLER",)
    assert cfg.security_protocol_map["CONTROLLER"] == "PLAINTEXT"
    assert cfg.advertised_listeners == [
        Listener("PLAINTEXT", "kafka.example", 9092),
        Listener("REPL", "::1", 9094),
    ]
    assert cfg.inter_broker_listener_name == "REPL"
    assert cfg.quorum_voters == [Voter(1, "a", 9093), Voter(2, "b", 9093), Voter(3, "c", 9093)]
    assert cfg.log_dirs == ["/d1", "/d2"]
    assert cfg.metadata_log_dir == "/meta"


def test_inter_broker_listener_defaults_to_the_first_broker_listener_without_plaintext() -> None:
    cfg = BrokerConfig(
        {
            "listeners": "CLIENT://h:1,REPL://h:2",
            "listener.security.protocol.map": "CLIENT:PLAINTEXT,REPL:PLAINTEXT",
        }
    )
    assert cfg.inter_broker_listener_name == "CLIENT"


def test_broker_only_node_with_bootstrap_servers() -> None:
    cfg = BrokerConfig(
        {
            "process.roles": "broker",
            "node.id": "4",
            "controller.quorum.bootstrap.servers": "c1:9093, c2:9093",
            "controller.listener.names": "CONTROLLER",
        }
    )
    assert not cfg.is_controller
    assert cfg.quorum_bootstrap_servers == [HostPort("c1", 9093), HostPort("c2", 9093)]


# --- retention / roll synonyms -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("static", "expected"),
    [
        ({}, 168 * 3_600_000),
        ({"log.retention.hours": "1"}, 3_600_000),
        ({"log.retention.minutes": "30", "log.retention.hours": "1"}, 30 * 60_000),
        ({"log.retention.ms": "1234", "log.retention.minutes": "30"}, 1234),
        ({"log.retention.ms": "-1"}, -1),
        ({"log.retention.ms": "-5"}, -1),
        ({"log.retention.hours": "-1"}, -1),
        ({"log.retention.minutes": "-3", "log.retention.hours": "5"}, -1),
    ],
)
def test_retention_precedence_ms_then_minutes_then_hours(static: dict, expected: int) -> None:
    cfg = BrokerConfig(static)
    assert cfg.retention_ms == expected
    assert effective_topic_config(cfg, {})["retention.ms"].value == expected


def test_retention_of_zero_is_refused() -> None:
    err = _error(BrokerConfig, {"log.retention.ms": "0"})
    assert err.key == "log.retention.ms"


def test_roll_and_jitter_precedence() -> None:
    assert BrokerConfig({"log.roll.hours": "2"}).roll_ms == 7_200_000
    assert BrokerConfig({"log.roll.hours": "2", "log.roll.ms": "500"}).roll_ms == 500
    assert BrokerConfig({"log.roll.jitter.hours": "1"}).roll_jitter_ms == 3_600_000
    assert (
        BrokerConfig({"log.roll.jitter.hours": "1", "log.roll.jitter.ms": "7"}).roll_jitter_ms == 7
    )


def test_flush_ms_falls_back_to_the_scheduler_interval() -> None:
    cfg = BrokerConfig({"log.flush.scheduler.interval.ms": "3000"})
    assert effective_topic_config(cfg, {})["flush.ms"].value == 3000
    cfg = BrokerConfig({"log.flush.scheduler.interval.ms": "3000", "log.flush.interval.ms": "10"})
    assert effective_topic_config(cfg, {})["flush.ms"].value == 10


# --- loading -------------------------------------------------------------------------------------


def test_load_kafka_sample_kraft_properties(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text(KRAFT_SAMPLE)
    cfg = load_broker_config(str(path), [], {})
    assert cfg.listeners == [Listener("PLAINTEXT", "", 9092), Listener("CONTROLLER", "", 9093)]
    assert cfg.advertised_listeners == [Listener("PLAINTEXT", "localhost", 9092)]
    assert cfg.quorum_voters == [Voter(1, "localhost", 9093)]
    assert cfg.log_dirs == ["/tmp/kraft-combined-logs"]
    assert cfg["offsets.topic.replication.factor"] == 1
    assert cfg.source("num.io.threads") is STATIC
    assert cfg.source("log.cleaner.enable") is DEFAULT


def test_precedence_defaults_file_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("num.partitions=2\nlog.segment.bytes=2000000\nlog.retention.ms=100\n")
    environ = {"KLOG_LOG_SEGMENT_BYTES": "3000000", "KLOG_LOG_RETENTION_MS": "200", "HOME": "/x"}
    cfg = load_broker_config(str(path), ["log.retention.ms=300"], environ)
    assert cfg["num.partitions"] == 2
    assert cfg["log.segment.bytes"] == 3000000
    assert cfg["log.retention.ms"] == 300
    assert cfg["num.io.threads"] == 8
    assert cfg.source("num.partitions") is STATIC
    assert cfg.source("num.io.threads") is DEFAULT


_KEYS = ["num.partitions", "num.io.threads", "background.threads"]


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(_KEYS),
        st.lists(
            st.tuples(st.sampled_from(["file", "env", "override"]), st.integers(1, 99)), min_size=1
        ),
    )
)
def test_precedence_property(tmp_path_factory: pytest.TempPathFactory, plan: dict) -> None:
    rank = {"file": 0, "env": 1, "override": 2}
    lines, environ, overrides = [], {}, []
    expected = {}
    for key, settings_ in plan.items():
        for where, value in settings_:
            if where == "file":
                lines.append(f"{key}={value}")
            elif where == "env":
                environ[env_var_name(key)] = str(value)
            else:
                overrides.append(f"{key}={value}")
        # within one origin the last write wins (file lines, overrides); env holds one value
        best = max(rank[where] for where, _ in settings_)
        candidates = [value for where, value in settings_ if rank[where] == best]
        expected[key] = int(environ[env_var_name(key)]) if best == 1 else candidates[-1]
    path = tmp_path_factory.mktemp("props") / "server.properties"
    path.write_text("\n".join(lines))
    cfg = load_broker_config(str(path), overrides, environ)
    for key in _KEYS:
        assert cfg[key] == expected.get(key, BROKER_CONFIGS[key].default)


def test_unknown_key_in_file_names_path_line_and_closest_keys(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("# settings\nnum.partitions=3\nlog.retention.msec=5\n")
    err = _error(load_broker_config, str(path), [], {})
    assert isinstance(err, UnknownConfigError)
    assert str(err).startswith(f"{path}:3: unknown config key 'log.retention.msec'")
    assert "(did you mean log.retention.ms" in str(err)
    assert err.key == "log.retention.msec"


def test_bad_value_in_file_names_path_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("num.partitions=zero\n")
    err = _error(load_broker_config, str(path), [], {})
    assert isinstance(err, InvalidConfigValueError)
    assert (
        str(err)
        == f"{path}:1: invalid value 'zero' for num.partitions: expected a whole number (int)"
    )


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    err = _error(load_broker_config, str(tmp_path / "nope.properties"), [], {})
    assert "cannot read" in str(err) and "nope.properties" in str(err)


def test_unknown_override_key() -> None:
    err = _error(load_broker_config, None, ["log.retention.msec=5"], {})
    assert str(err) == (
        "--override: unknown config key 'log.retention.msec' "
        "(did you mean log.retention.ms, log.retention.minutes, log.retention.hours?)"
    )


def test_unknown_key_with_nothing_close_has_no_suggestion() -> None:
    err = _error(load_broker_config, None, ["qqqqqq=1"], {})
    assert str(err) == "--override: unknown config key 'qqqqqq'"


@pytest.mark.parametrize("item", ["num.partitions", "=5", " =5", ""])
def test_malformed_override(item: str) -> None:
    err = _error(load_broker_config, None, [item], {})
    assert "expected key=value" in str(err)


def test_override_value_may_contain_equals_signs() -> None:
    cfg = load_broker_config(None, ["broker.rack=a=b"], {})
    assert cfg["broker.rack"] == "a=b"


def test_environment_variables() -> None:
    environ = {
        "KLOG_NUM_PARTITIONS": "7",
        "KLOG_CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk",
        "KLOG_NO_NATIVE": "1",
        "KLOG_EXPECT_NATIVE": "1",
        "KLOG_BOOTSTRAP_SERVERS": "x:1",
        "PATH": "/bin",
        "klog_num_partitions": "9",
    }
    cfg = load_broker_config(None, [], environ)
    assert cfg["num.partitions"] == 7
    assert cfg["klog.cluster.id"] == "MkU3OEVBNTcwNTJENDM2Qk"


def test_unknown_environment_variable_suggests_the_right_one() -> None:
    err = _error(load_broker_config, None, [], {"KLOG_LOG_RETENTION_MSEC": "1"})
    assert str(err).startswith("environment variable KLOG_LOG_RETENTION_MSEC is not a klog config")
    assert "did you mean KLOG_LOG_RETENTION_MS" in str(err)


def test_bad_environment_value_names_the_variable() -> None:
    err = _error(load_broker_config, None, [], {"KLOG_NUM_PARTITIONS": "0"})
    assert str(err) == (
        "environment variable KLOG_NUM_PARTITIONS: invalid value '0' for num.partitions: "
        "must be at least 1"
    )


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("num.partitions=abc", "expected a whole number"),
        ("num.partitions=0", "must be at least 1"),
        ("compression.type=lzma", "must be one of uncompressed, zstd, lz4, snappy, gzip, producer"),
        ("auto.create.topics.enable=yes", "expected true or false"),
        ("log.cleanup.policy=delete,archive", "'archive' is not one of compact, delete"),
        ("log.cleaner.min.cleanable.ratio=1.5", "must be between 0 and 1"),
        ("process.roles=", "must not be empty"),
        ("process.roles=broker,worker", "'worker' is not one of broker, controller"),
        ("listeners=localhost:9092", "is not NAME://host:port"),
        ("listeners=A://h:1,a://h:2", "listener name A appears twice"),
        ("controller.quorum.voters=1@h", "is not host:port"),
        ("controller.quorum.voters=1@h:1,1@g:2", "voter id 1 appears twice"),
        ("controller.quorum.bootstrap.servers=h", "is not host:port"),
        ("listener.security.protocol.map=A:TLS", "unknown security protocol"),
        ("log.dirs=/a,/a", "must not repeat an element"),
        ("log.dirs=", "must not be empty"),
        ("klog.cluster.id=abc", "22-character base64url UUID"),
        ("compression.gzip.level=10", "must be -1 or between 1 and 9"),
        ("compression.zstd.level=23", "must be between -131072 and 22"),
        ("offsets.topic.replication.factor=40000", "out of range for short"),
        ("remote.log.storage.system.enable=true", "klog has no tiered storage"),
        ("create.topic.policy.class.name=org.Foo", "klog cannot load Java classes"),
        ("log.segment.bytes=13", "must be at least 14"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(item: str, fragment: str) -> None:
    err = _error(load_broker_config, None, [item], {})
    assert isinstance(err, InvalidConfigValueError)
    assert fragment in str(err)
    assert err.key == item.partition("=")[0]


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("zookeeper.connect", "klog has no ZooKeeper mode"),
        ("zookeeper.connection.timeout.ms", "klog has no ZooKeeper mode"),
        ("ssl.keystore.location", "only PLAINTEXT"),
        ("sasl.enabled.mechanisms", "only PLAINTEXT"),
        ("listener.name.internal.ssl.keystore.location", "per-listener"),
        ("remote.log.manager.thread.pool.size", "tiered storage"),
    ],
)
def test_unsupported_kafka_keys_say_why(key: str, fragment: str) -> None:
    err = _error(load_broker_config, None, [f"{key}=x"], {})
    assert f"unsupported config key {key!r}" in str(err)
    assert fragment in str(err)


def test_topic_config_at_broker_level_names_the_broker_synonym() -> None:
    err = _error(load_broker_config, None, ["retention.ms=5"], {})
    assert "it is a topic config; the broker-wide default is log.retention.ms" in str(err)
    err = _error(load_broker_config, None, ["remote.storage.enable=false"], {})
    assert "it can only be set per topic" in str(err)


# --- cross-key rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("static", "key", "fragment"),
    [
        ({"broker.id": "2"}, "broker.id", "must equal node.id (1)"),
        (
            {"listeners": "SSL://h:1"},
            "listeners",
            "listener SSL uses SSL: klog supports only PLAINTEXT",
        ),
        (
            {"listeners": "CLIENT://h:1"},
            "listener.security.protocol.map",
            "listener CLIENT has no entry in listener.security.protocol.map",
        ),
        (
            {
                "listeners": "PLAINTEXT://a:1,OTHER://b:1",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT",
            },
            "listeners",
            "use the same port 1",
        ),
        (
            {"controller.listener.names": "CONTROLLER"},
            "controller.listener.names",
            "controller listener CONTROLLER (controller.listener.names) is not in listeners",
        ),
        (
            {
                "process.roles": "broker",
                "controller.quorum.voters": "2@c:9093",
                "listeners": "PLAINTEXT://h:9092,CONTROLLER://h:9093",
                "controller.listener.names": "CONTROLLER",
            },
            "controller.listener.names",
            "must not listen on a controller.listener.names listener",
        ),
        (
            {"process.roles": "broker"},
            "controller.quorum.voters",
            "a broker-only node needs controller.quorum.voters",
        ),
        (
            {"controller.quorum.voters": "2@a:9093,3@b:9093"},
            "controller.quorum.voters",
            "node.id 1 is a controller but not in controller.quorum.voters (2, 3)",
        ),
        (
            {
                "advertised.listeners": "OTHER://h:1",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT",
            },
            "advertised.listeners",
            "advertised listener OTHER is not one of listeners",
        ),
        (
            {"listeners": "PLAINTEXT://0.0.0.0:9092"},
            "advertised.listeners",
            "non-routable address 0.0.0.0",
        ),
        (
            {"inter.broker.listener.name": "REPL"},
            "inter.broker.listener.name",
            "inter.broker.listener.name REPL is not an advertised broker listener",
        ),
        (
            {
                "listeners": "CONTROLLER://h:9093",
                "controller.listener.names": "CONTROLLER",
            },
            "listeners",
            "a broker needs a listener that is not a controller listener",
        ),
        (
            {"group.min.session.timeout.ms": "10", "group.max.session.timeout.ms": "5"},
            "group.min.session.timeout.ms",
            "must not exceed group.max.session.timeout.ms",
        ),
        (
            {"replica.fetch.wait.max.ms": "40000"},
            "replica.fetch.wait.max.ms",
            "must not exceed replica.lag.time.max.ms (30000)",
        ),
        (
            {"replica.fetch.wait.max.ms": "2000", "replica.socket.timeout.ms": "1000"},
            "replica.fetch.wait.max.ms",
            "must not exceed replica.socket.timeout.ms (1000)",
        ),
        (
            {"broker.heartbeat.interval.ms": "9000"},
            "broker.heartbeat.interval.ms",
            "must be less than broker.session.timeout.ms (9000)",
        ),
        (
            {"log.cleaner.threads": "4", "log.cleaner.dedupe.buffer.size": "4000000"},
            "log.cleaner.dedupe.buffer.size",
            "at least 1 MiB per log.cleaner.threads",
        ),
    ],
)
def test_cross_key_rules(static: dict, key: str, fragment: str) -> None:
    err = _error(BrokerConfig, static)
    assert fragment in str(err)
    assert err.key == key


def test_cross_key_rules_allow_the_legitimate_cases() -> None:
    # port 0 twice (two ephemeral ports), same port on IPv4 and IPv6, controller-only node,
    # broker.id equal to node.id, 0.0.0.0 listener with a routable advertised address
    BrokerConfig(
        {
            "listeners": "PLAINTEXT://127.0.0.1:0,OTHER://127.0.0.1:0",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT",
        }
    )
    BrokerConfig(
        {
            "listeners": "PLAINTEXT://127.0.0.1:9092,V6://[::1]:9092",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,V6:PLAINTEXT",
        }
    )
    controller = BrokerConfig(
        {
            "process.roles": "controller",
            "listeners": "CONTROLLER://h:9093",
            "controller.listener.names": "CONTROLLER",
        }
    )
    assert controller.advertised_listeners == []
    assert BrokerConfig({"broker.id": "1"}).node_id == 1
    BrokerConfig(
        {"listeners": "PLAINTEXT://0.0.0.0:9092", "advertised.listeners": "PLAINTEXT://h:9092"}
    )
    BrokerConfig({"log.cleaner.threads": "0", "log.cleaner.dedupe.buffer.size": "1"})


# --- DescribeConfigs on a broker -----------------------------------------------------------------


def test_describe_broker_config_sources_and_synonyms() -> None:
    cfg = BrokerConfig(
        {"log.retention.ms": "1000", "log.retention.minutes": "5"},
        dynamic_default={"log.retention.ms": "2000"},
        dynamic_broker={"log.retention.ms": "3000"},
    )
    described = cfg.describe("log.retention.ms")
    assert described.value == 3000
    assert described.text == "3000"
    assert described.source is DYN_BROKER
    assert not described.read_only
    assert described.config_type is ConfigType.LONG
    assert described.synonyms == (
        Synonym("log.retention.ms", "3000", DYN_BROKER),
        Synonym("log.retention.ms", "2000", DYN_DEFAULT),
        Synonym("log.retention.ms", "1000", STATIC),
        Synonym("log.retention.minutes", "5", STATIC),
        Synonym("log.retention.hours", "168", DEFAULT),
    )
    # Describing a lower-precedence synonym drops those listed before it, as Kafka does.
    hours = cfg.describe("log.retention.hours")
    assert hours.synonyms == (Synonym("log.retention.hours", "168", DEFAULT),)
    assert hours.read_only
    minutes = cfg.describe("log.retention.minutes")
    assert minutes.source is STATIC
    assert [s.name for s in minutes.synonyms] == ["log.retention.minutes", "log.retention.hours"]


def test_describe_unset_nullable_broker_config() -> None:
    described = BrokerConfig().describe("log.retention.ms")
    assert described.value is None and described.text is None
    assert described.source is DEFAULT
    assert described.synonyms == ()


def test_describe_cluster_default_level_lists_only_its_own_settings() -> None:
    cfg = BrokerConfig(
        {"message.max.bytes": "2000"},
        dynamic_default={"log.retention.ms": "2000"},
        dynamic_broker={"log.retention.ms": "3000"},
    )
    cluster = cfg.describe_all(per_broker=False)
    assert list(cluster) == ["log.retention.ms"]
    assert cluster["log.retention.ms"].value == 2000
    assert cluster["log.retention.ms"].synonyms == (
        Synonym("log.retention.ms", "2000", DYN_DEFAULT),
    )
    everything = cfg.describe_all()
    assert set(everything) == set(BROKER_CONFIGS)
    assert everything["message.max.bytes"].source is STATIC


def test_describe_hides_sensitive_values() -> None:
    cfg = BrokerConfig({"password.encoder.secret": "hunter2"})
    described = cfg.describe("password.encoder.secret")
    assert described.is_sensitive
    assert described.text is None
    assert described.synonyms == (Synonym("password.encoder.secret", None, STATIC),)
    assert cfg["password.encoder.secret"] == "hunter2"


def test_describe_unknown_broker_config() -> None:
    err = _error(BrokerConfig().describe, "num.partition")
    assert isinstance(err, UnknownConfigError)


# --- dynamic updates -----------------------------------------------------------------------------


def test_dynamic_layers_take_precedence() -> None:
    base = BrokerConfig({"log.retention.ms": "1000"})
    cluster = base.with_dynamic({"log.retention.ms": "2000"}, per_broker=False)
    both = cluster.with_dynamic({"log.retention.ms": "3000"}, per_broker=True)
    assert (base.retention_ms, cluster.retention_ms, both.retention_ms) == (1000, 2000, 3000)
    assert both.source("log.retention.ms") is DYN_BROKER
    assert both.dynamic_configs(per_broker=True) == {"log.retention.ms": "3000"}
    assert both.dynamic_configs(per_broker=False) == {"log.retention.ms": "2000"}
    # deleting a per-broker value falls back to the cluster default
    back = both.with_dynamic({"log.retention.ms": None}, per_broker=True)
    assert back.retention_ms == 2000
    assert back.source("log.retention.ms") is DYN_DEFAULT


def test_dynamic_update_returns_a_new_config_and_leaves_the_old_one() -> None:
    base = BrokerConfig()
    updated = base.with_dynamic({"message.max.bytes": "5000"}, per_broker=True)
    assert base["message.max.bytes"] == 1048588
    assert updated["message.max.bytes"] == 5000


def test_replace_starts_from_an_empty_layer() -> None:
    cfg = BrokerConfig().with_dynamic(
        {"message.max.bytes": "5000", "log.cleaner.threads": "2"}, per_broker=False
    )
    replaced = cfg.with_dynamic({"log.cleaner.threads": "3"}, per_broker=False, replace=True)
    assert replaced.dynamic_configs(per_broker=False) == {"log.cleaner.threads": "3"}
    assert replaced["message.max.bytes"] == 1048588


def test_read_only_configs_cannot_change_dynamically() -> None:
    err = _error(BrokerConfig().with_dynamic, {"log.dirs": "/x"}, per_broker=True)
    assert isinstance(err, ReadOnlyConfigError)
    assert str(err).startswith("config 'log.dirs' is read-only")
    err = _error(BrokerConfig().with_dynamic, {"log.retention.hours": "1"}, per_broker=False)
    assert isinstance(err, ReadOnlyConfigError)


def test_per_broker_configs_cannot_be_cluster_defaults() -> None:
    update = {"listeners": "PLAINTEXT://127.0.0.1:9093"}
    err = _error(BrokerConfig().with_dynamic, update, per_broker=False)
    assert isinstance(err, ReadOnlyConfigError)
    assert "can only be set for one broker" in str(err)
    moved = BrokerConfig().with_dynamic(update, per_broker=True)
    assert moved.listeners == [Listener("PLAINTEXT", "127.0.0.1", 9093)]


def test_dynamic_update_errors() -> None:
    err = _error(BrokerConfig().with_dynamic, {"log.retention.msec": "1"}, per_broker=True)
    assert isinstance(err, UnknownConfigError)
    err = _error(BrokerConfig().with_dynamic, {"message.max.bytes": "-1"}, per_broker=True)
    assert isinstance(err, InvalidConfigValueError)
    # cross-key rules hold after an update too
    err = _error(BrokerConfig().with_dynamic, {"listeners": "SSL://h:1"}, per_broker=True)
    assert "klog supports only PLAINTEXT" in str(err)


def test_constructor_checks_dynamic_layers() -> None:
    err = _error(BrokerConfig, dynamic_default={"node.id": "3"})
    assert isinstance(err, ReadOnlyConfigError)
    err = _error(BrokerConfig, dynamic_default={"advertised.listeners": "PLAINTEXT://h:1"})
    assert isinstance(err, ReadOnlyConfigError)


# --- topic configs -------------------------------------------------------------------------------


def test_validate_topic_configs_types_values() -> None:
    typed = validate_topic_configs(
        {
            "retention.ms": "1000",
            "cleanup.policy": "compact,delete",
            "min.cleanable.dirty.ratio": "0.1",
        }
    )
    assert typed == {
        "retention.ms": 1000,
        "cleanup.policy": ("compact", "delete"),
        "min.cleanable.dirty.ratio": 0.1,
    }


@pytest.mark.parametrize(
    ("configs", "cls", "fragment"),
    [
        ({"retention.msec": "1"}, UnknownConfigError, "(did you mean retention.ms"),
        ({"log.retention.ms": "1"}, UnknownConfigError, "the topic config is retention.ms"),
        ({"log.retention.hours": "1"}, UnknownConfigError, "the topic config is retention.ms"),
        ({"num.partitions": "1"}, UnknownConfigError, "broker config with no per-topic form"),
        ({"retention.ms": None}, InvalidConfigValueError, "needs a value"),
        ({"retention.ms": "-2"}, InvalidConfigValueError, "must be at least -1"),
        ({"segment.bytes": "10"}, InvalidConfigValueError, "must be at least 14"),
        ({"cleanup.policy": "compakt"}, InvalidConfigValueError, "'compakt' is not one of"),
        ({"message.timestamp.type": "logappendtime"}, InvalidConfigValueError, "must be one of"),
        ({"remote.storage.enable": "true"}, InvalidConfigValueError, "no tiered storage"),
        (
            {"leader.replication.throttled.replicas": "0:x"},
            InvalidConfigValueError,
            "partition:broker",
        ),
        (
            {"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"},
            InvalidConfigValueError,
            "min.compaction.lag.ms (10) must not exceed max.compaction.lag.ms (5)",
        ),
    ],
)
def test_validate_topic_configs_errors(configs: dict, cls: type, fragment: str) -> None:
    err = _error(validate_topic_configs, configs)
    assert isinstance(err, cls)
    assert fragment in str(err)


def test_throttled_replica_lists() -> None:
    assert validate_topic_configs({"leader.replication.throttled.replicas": "*"})
    assert validate_topic_configs({"follower.replication.throttled.replicas": "0:1,1:2"})


def test_compaction_lag_check_sees_broker_defaults() -> None:
    broker = BrokerConfig({"log.cleaner.min.compaction.lag.ms": "100"})
    validate_topic_configs({"max.compaction.lag.ms": "50"})
    err = _error(validate_topic_configs, {"max.compaction.lag.ms": "50"}, broker)
    assert err.key == "max.compaction.lag.ms"


def test_effective_topic_config_sources_and_synonym_order() -> None:
    broker = BrokerConfig(
        {"log.retention.minutes": "30"},
        dynamic_default={"log.retention.ms": "200"},
        dynamic_broker={"log.retention.ms": "100"},
    )
    overridden = effective_topic_config(broker, {"retention.ms": "50"})["retention.ms"]
    assert overridden.value == 50 and overridden.text == "50"
    assert overridden.source is TOPIC
    assert overridden.synonyms == (
        Synonym("retention.ms", "50", TOPIC),
        Synonym("log.retention.ms", "100", DYN_BROKER),
        Synonym("log.retention.ms", "200", DYN_DEFAULT),
        Synonym("log.retention.minutes", "30", STATIC),
        Synonym("log.retention.hours", "168", DEFAULT),
    )
    inherited = effective_topic_config(broker, {})["retention.ms"]
    assert inherited.value == 100
    assert inherited.source is DYN_BROKER
    assert inherited.synonyms == overridden.synonyms[1:]
    assert not inherited.read_only and not inherited.is_sensitive


def test_topic_value_from_a_static_hours_setting_says_static() -> None:
    described = effective_topic_config(BrokerConfig({"log.retention.hours": "24"}), {})[
        "retention.ms"
    ]
    assert described.value == 24 * 3_600_000
    assert described.source is STATIC
    assert described.synonyms == (
        Synonym("log.retention.hours", "24", STATIC),
        Synonym("log.retention.hours", "168", DEFAULT),
    )


def test_topic_config_without_broker_synonym() -> None:
    described = effective_topic_config(BrokerConfig(), {})["remote.storage.enable"]
    assert (described.value, described.text, described.source) == (False, "false", DEFAULT)
    assert described.synonyms == ()


@settings(max_examples=30, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "log.retention.ms": st.integers(1, 10**9).map(str),
            "log.retention.minutes": st.integers(1, 10**5).map(str),
            "log.retention.hours": st.integers(1, 10**4).map(str),
            "log.roll.ms": st.integers(1, 10**9).map(str),
            "log.roll.hours": st.integers(1, 10**4).map(str),
            "log.segment.bytes": st.integers(14, 10**9).map(str),
        },
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "log.retention.ms": st.integers(1, 10**9).map(str),
            "log.roll.ms": st.integers(1, 10**9).map(str),
        },
    ),
)
def test_topic_source_is_the_first_synonym(static: dict, dynamic: dict) -> None:
    broker = BrokerConfig(static, dynamic_default=dynamic)
    for cv in effective_topic_config(broker, {}).values():
        if cv.synonyms:
            assert cv.source is cv.synonyms[0].source, cv.name


def test_apply_incremental_alter_on_topic_configs() -> None:
    current = {"retention.ms": "1000", "segment.bytes": "2000000"}
    ops = [
        ("retention.ms", AlterOp.SET, "5000"),
        ("segment.bytes", AlterOp.DELETE, None),
        ("cleanup.policy", AlterOp.APPEND, "compact"),
        ("leader.replication.throttled.replicas", AlterOp.APPEND, "0:1,1:1"),
    ]
    result = apply_incremental_alter(current, ops, TOPIC_CONFIGS)
    assert result == {
        "retention.ms": "5000",
        "cleanup.policy": "delete,compact",
        "leader.replication.throttled.replicas": "0:1,1:1",
    }
    assert current == {"retention.ms": "1000", "segment.bytes": "2000000"}
    again = apply_incremental_alter(
        result, [("cleanup.policy", AlterOp.APPEND, "compact")], TOPIC_CONFIGS
    )
    assert again["cleanup.policy"] == "delete,compact"
    less = apply_incremental_alter(
        result, [("cleanup.policy", AlterOp.SUBTRACT, "delete")], TOPIC_CONFIGS
    )
    assert less["cleanup.policy"] == "compact"
    assert validate_topic_configs(less)["cleanup.policy"] == ("compact",)


def test_apply_incremental_alter_on_a_broker_layer() -> None:
    cfg = BrokerConfig()
    layer = apply_incremental_alter(
        cfg.dynamic_configs(per_broker=False),
        [("log.cleanup.policy", int(AlterOp.APPEND), "compact"), ("log.retention.ms", 0, "9")],
        BROKER_CONFIGS,
    )
    updated = cfg.with_dynamic(layer, per_broker=False, replace=True)
    assert updated["log.cleanup.policy"] == ("delete", "compact")
    assert updated.retention_ms == 9


@pytest.mark.parametrize(
    ("ops", "defs", "cls", "fragment"),
    [
        (
            [("retention.ms", 0, "1"), ("retention.ms", 1, None)],
            TOPIC_CONFIGS,
            ConfigError,
            "appears twice",
        ),
        ([("retention.ms", 7, "1")], TOPIC_CONFIGS, ConfigError, "unknown config operation 7"),
        (
            [("retention.ms", AlterOp.APPEND, "1")],
            TOPIC_CONFIGS,
            InvalidConfigValueError,
            "not a list config",
        ),
        (
            [("retention.ms", AlterOp.SET, None)],
            TOPIC_CONFIGS,
            InvalidConfigValueError,
            "needs a value",
        ),
        (
            [("log.retention.ms", AlterOp.SET, "1")],
            TOPIC_CONFIGS,
            UnknownConfigError,
            "topic config is retention.ms",
        ),
        (
            [("retention.ms", AlterOp.SET, "1")],
            BROKER_CONFIGS,
            UnknownConfigError,
            "it is a topic config",
        ),
    ],
)
def test_apply_incremental_alter_errors(ops: list, defs: dict, cls: type, fragment: str) -> None:
    err = _error(apply_incremental_alter, {}, ops, defs)
    assert isinstance(err, cls)
    assert fragment in str(err)


# --- topic names ---------------------------------------------------------------------------------


@settings(max_examples=100)
@given(st.text(st.sampled_from("abcXYZ019._-"), min_size=1, max_size=249))
def test_valid_topic_names(name: str) -> None:
    if name in (".", ".."):
        with pytest.raises(InvalidTopicNameError):
            validate_topic_name(name)
    else:
        validate_topic_name(name)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        (".", "cannot be '.'"),
        ("..", "cannot be '..'"),
        ("a" * 250, "250 characters long; the limit is 249"),
        ("a b", "has a character other than"),
        ("topic/1", "has a character other than"),
        ("tópico", "has a character other than"),
        ("a\nb", "has a character other than"),
    ],
)
def test_invalid_topic_names(name: str, fragment: str) -> None:
    with pytest.raises(InvalidTopicNameError) as err:
        validate_topic_name(name)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_longest_and_internal_topic_names_are_valid() -> None:
    validate_topic_name("a" * 249)
    validate_topic_name("__consumer_offsets")


# --- storage LogConfig ---------------------------------------------------------------------------


def _segment_log_config() -> type:
    module = pytest.importorskip("klog.segment.config", reason="segment helper's LogConfig")
    return module.LogConfig


def test_log_config_fields_are_all_topic_configs() -> None:
    # Every LogConfig field gets a value from the broker config, none is left at its own default.
    log_config_cls = _segment_log_config()
    topic_fields = {name.replace(".", "_") for name in TOPIC_CONFIGS}
    for field in dataclasses.fields(log_config_cls):
        assert field.name in topic_fields, f"LogConfig.{field.name} is not a topic config"


def test_log_config_carries_overrides_and_broker_defaults() -> None:
    _segment_log_config()
    broker = BrokerConfig(
        {"log.segment.bytes": "2000000", "log.retention.hours": "2", "log.roll.ms": "5000"}
    )
    built = log_config(broker, {"retention.bytes": "12345", "cleanup.policy": "compact,delete"})
    assert built.segment_bytes == 2000000
    assert built.retention_ms == 7_200_000
    assert built.segment_ms == 5000
    assert built.retention_bytes == 12345
    assert built.cleanup_policy == ("compact", "delete")
    assert built.max_message_bytes == 1048588
    assert built.flush_messages is None and built.flush_ms is None


def test_log_config_with_defaults_equals_storage_defaults() -> None:
    log_config_cls = _segment_log_config()
    assert log_config(BrokerConfig(), {}) == log_config_cls()


def test_log_config_flush_and_timestamp_bounds() -> None:
    _segment_log_config()
    broker = BrokerConfig({"log.flush.interval.messages": "1"})
    built = log_config(broker, {"flush.ms": "1000", "message.timestamp.difference.max.ms": "60000"})
    assert built.flush_messages == 1
    assert built.flush_ms == 1000
    # Kafka 3.6-3.9: unset before/after bounds take the deprecated difference
    assert built.message_timestamp_before_max_ms == 60000
    assert built.message_timestamp_after_max_ms == 60000
    explicit = log_config(
        broker,
        {"message.timestamp.difference.max.ms": "60000", "message.timestamp.after.max.ms": "5"},
    )
    assert explicit.message_timestamp_after_max_ms == 5
    assert explicit.message_timestamp_before_max_ms == 60000
