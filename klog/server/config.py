"""Broker and topic configuration: loading, typed access, dynamic updates, DescribeConfigs views.

Formats handled:
- ``server.properties`` (Java properties syntax, see ``config_properties``), ``--override
  key=value`` strings and ``KLOG_*`` environment variables (``KLOG_LOG_RETENTION_MS`` sets
  ``log.retention.ms``; ``klog.``-prefixed keys drop the prefix: ``KLOG_CLUSTER_ID`` sets
  ``klog.cluster.id``). Precedence: defaults < file < environment < overrides. All three
  are Kafka's STATIC_BROKER_CONFIG source.
- Dynamic broker configs (AlterConfigs / IncrementalAlterConfigs on a BROKER resource,
  persisted as ConfigRecords by the caller): a cluster-wide default layer (resource name "")
  and a per-broker layer. Effective value: per-broker > cluster default > static > default.
- Topic overrides (CreateTopics configs, AlterConfigs on a TOPIC resource): Kafka's topic
  config names; a topic config without an override takes its broker synonym's value
  (``retention.ms`` <- ``log.retention.ms`` > ``log.retention.minutes`` > ``log.retention.hours``).

DescribeConfigs: ``ConfigValue`` carries Kafka's value string, source, sensitivity,
read-only flag and synonyms. Synonyms are listed as Kafka lists them: the topic override,
then for each layer (dynamic per-broker, dynamic default, static, default) the broker
synonyms in order of precedence; the source is the first synonym's. One difference, so the
answer is true: for a topic config Kafka drops the lower-precedence synonyms listed before
the first broker synonym (it shows no synonyms for ``retention.ms`` when only
``log.retention.hours`` is set, and calls it DEFAULT_CONFIG even when server.properties set
it); klog keeps them. Describing a broker config drops them as Kafka does.

Errors: every user mistake is a ``ConfigError`` (subclasses: unknown key, invalid value,
read-only) with a one-line message naming the key, its origin (``file:line``, ``--override``,
the environment variable) and the closest valid keys. Topic names: ``InvalidTopicNameError``.
Kafka answers INVALID_CONFIG for topic config errors and INVALID_REQUEST for broker config
errors; INVALID_TOPIC_EXCEPTION for bad topic names.

Invariants: a ``BrokerConfig`` is immutable and always valid (constructing or updating one
validates every value and the cross-key rules); updates return a new object, so a handler
can swap the node's config atomically and readers never see half an update. Safe to share
between tasks and threads. No I/O except reading the properties file.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from klog.server.config_defs import BROKER_CONFIGS, TOPIC_CONFIGS, unsupported_reason
from klog.server.config_properties import decode_properties_bytes, parse_properties
from klog.server.config_types import (
    LONG_MAX,
    ConfigDef,
    ConfigError,
    ConfigSource,
    ConfigType,
    HostPort,
    InvalidConfigValueError,
    Listener,
    ReadOnlyConfigError,
    UnknownConfigError,
    UpdateMode,
    Voter,
    did_you_mean,
    parse_host_port,
    parse_listener,
    parse_protocol_map,
    parse_voter,
    to_string,
)

if TYPE_CHECKING:
    from klog.segment.config import LogConfig

__all__ = [
    "BROKER_CONFIGS",
    "NON_CONFIG_ENV_VARS",
    "TOPIC_CONFIGS",
    "AlterOp",
    "BrokerConfig",
    "ConfigDef",
    "ConfigError",
    "ConfigSource",
    "ConfigType",
    "ConfigValue",
    "HostPort",
    "InvalidConfigValueError",
    "InvalidTopicNameError",
    "Listener",
    "ReadOnlyConfigError",
    "Synonym",
    "UnknownConfigError",
    "UpdateMode",
    "Voter",
    "apply_incremental_alter",
    "effective_topic_config",
    "env_var_name",
    "load_broker_config",
    "log_config",
    "validate_topic_configs",
    "validate_topic_name",
]

ENV_PREFIX = "KLOG_"
# KLOG_ variables that are not broker configs (read by other parts of klog); any other
# KLOG_ variable must name a config, so a typo is an error rather than silently ignored.
NON_CONFIG_ENV_VARS = frozenset({"KLOG_NO_NATIVE", "KLOG_EXPECT_NATIVE", "KLOG_BOOTSTRAP_SERVERS"})


def env_var_name(config_name: str) -> str:
    """The environment variable that sets a broker config (``log.dirs`` -> ``KLOG_LOG_DIRS``)."""
    return ENV_PREFIX + config_name.removeprefix("klog.").upper().replace(".", "_")


_ENV_VARS: Mapping[str, str] = MappingProxyType({env_var_name(n): n for n in BROKER_CONFIGS})


class Synonym(NamedTuple):
    """One DescribeConfigs synonym: a name, its value as Kafka's string (None if sensitive)."""

    name: str
    value: str | None
    source: ConfigSource


@dataclass(frozen=True)
class ConfigValue:
    """One DescribeConfigs entry: the effective value and where it came from.

    ``value`` is typed (for klog's own use); ``text`` is Kafka's string form sent on the
    wire (None when unset or sensitive).
    """

    name: str
    value: object
    text: str | None
    source: ConfigSource
    is_sensitive: bool
    read_only: bool
    synonyms: tuple[Synonym, ...]
    config_type: ConfigType
    documentation: str


# --- error helpers --------------------------------------------------------------------------


def _with_origin(origin: str, err: ConfigError) -> ConfigError:
    return type(err)(f"{origin}: {err}", err.key)


def _unknown_broker_key(key: str) -> UnknownConfigError:
    reason = unsupported_reason(key)
    if reason:
        return UnknownConfigError(f"unsupported config key {key!r}: {reason}", key)
    topic = TOPIC_CONFIGS.get(key)
    if topic is not None:
        if topic.synonyms:
            hint = f"the broker-wide default is {topic.synonyms[0][0]}"
        else:
            hint = "it can only be set per topic"
        return UnknownConfigError(f"unknown config key {key!r}: it is a topic config; {hint}", key)
    return UnknownConfigError(f"unknown config key {key!r}{did_you_mean(key, BROKER_CONFIGS)}", key)


def _unknown_topic_key(key: str) -> UnknownConfigError:
    for topic in TOPIC_CONFIGS.values():
        if any(name == key for name, _ in topic.synonyms):
            return UnknownConfigError(
                f"unknown topic config {key!r}: it is a broker config; the topic config is "
                f"{topic.name}",
                key,
            )
    if key in BROKER_CONFIGS:
        return UnknownConfigError(
            f"unknown topic config {key!r}: it is a broker config with no per-topic form", key
        )
    return UnknownConfigError(
        f"unknown topic config {key!r}{did_you_mean(key, TOPIC_CONFIGS)}", key
    )


def _unknown_key(key: str, defs: Mapping[str, ConfigDef]) -> UnknownConfigError:
    return _unknown_topic_key(key) if defs is TOPIC_CONFIGS else _unknown_broker_key(key)


def _cross(message: str, key: str) -> ConfigError:
    return InvalidConfigValueError(message, key)


# --- broker config --------------------------------------------------------------------------

_PER_BROKER, _CLUSTER_DEFAULT, _STATIC = 0, 1, 2
_LAYER_SOURCES = (
    ConfigSource.DYNAMIC_BROKER_CONFIG,
    ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
    ConfigSource.STATIC_BROKER_CONFIG,
)
_META_ADDRESSES = ("0.0.0.0", "::")


def _broker_synonym_groups() -> Mapping[str, tuple[str, ...]]:
    # Kafka's DynamicBrokerConfig.brokerConfigSynonyms: the names that set the same value in
    # different units. log.flush.scheduler.interval.ms is a synonym of log.flush.interval.ms
    # but not the other way round: the scheduler period is a setting of its own.
    groups: dict[str, tuple[str, ...]] = {}
    for topic in TOPIC_CONFIGS.values():
        names = tuple(name for name, _ in topic.synonyms)
        if len(names) > 1:
            for name in names:
                if name != "log.flush.scheduler.interval.ms":
                    groups[name] = names
    return MappingProxyType(groups)


_BROKER_SYNONYMS = _broker_synonym_groups()


class BrokerConfig:
    """A node's validated broker configuration (immutable).

    ``cfg["num.partitions"]`` is the typed effective value; the properties below parse the
    structured ones. Build it with ``load_broker_config`` (file, environment, overrides) or
    directly from string mappings per layer.
    """

    __slots__ = ("_raw", "_sources", "_typed", "_values")

    def __init__(
        self,
        static: Mapping[str, str] | None = None,
        *,
        dynamic_default: Mapping[str, str] | None = None,
        dynamic_broker: Mapping[str, str] | None = None,
    ) -> None:
        raw_layers = (dict(dynamic_broker or {}), dict(dynamic_default or {}), dict(static or {}))
        typed_layers: tuple[dict[str, object], ...] = ({}, {}, {})
        for index, layer in enumerate(raw_layers):
            for name, text in layer.items():
                definition = BROKER_CONFIGS.get(name)
                if definition is None:
                    raise _unknown_broker_key(name)
                if index != _STATIC:
                    _check_dynamic(definition, per_broker=index == _PER_BROKER)
                typed_layers[index][name] = definition.parse(text)
        values: dict[str, object] = {}
        sources: dict[str, ConfigSource] = {}
        for name, definition in BROKER_CONFIGS.items():
            values[name], sources[name] = definition.default, ConfigSource.DEFAULT_CONFIG
            for typed, source in zip(typed_layers, _LAYER_SOURCES, strict=True):
                if name in typed:
                    values[name], sources[name] = typed[name], source
                    break
        self._raw = raw_layers
        self._typed = typed_layers
        self._values = values
        self._sources = sources
        self._cross_validate()

    # --- typed access ---

    def __getitem__(self, name: str) -> object:
        """Typed effective value; KeyError (naming the closest keys) for an unknown name."""
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(str(_unknown_broker_key(name))) from None

    def source(self, name: str) -> ConfigSource:
        """Where the effective value of ``name`` comes from."""
        if name not in self._sources:
            raise KeyError(str(_unknown_broker_key(name)))
        return self._sources[name]

    def dynamic_configs(self, *, per_broker: bool) -> dict[str, str]:
        """The dynamic layer as strings: this broker's (per_broker) or the cluster default."""
        return dict(self._raw[_PER_BROKER if per_broker else _CLUSTER_DEFAULT])

    @property
    def node_id(self) -> int:
        """``node.id``."""
        return self._int("node.id")

    @property
    def process_roles(self) -> tuple[str, ...]:
        """``process.roles``: ("broker",), ("controller",) or both."""
        return self._tuple("process.roles")

    @property
    def is_broker(self) -> bool:
        """True if this node has the broker role."""
        return "broker" in self.process_roles

    @property
    def is_controller(self) -> bool:
        """True if this node has the controller role (is a metadata quorum voter)."""
        return "controller" in self.process_roles

    @property
    def listeners(self) -> list[Listener]:
        """``listeners`` as (name, host, port); names upper-case as Kafka normalises them."""
        return [parse_listener(item) for item in self._tuple("listeners")]

    @property
    def security_protocol_map(self) -> dict[str, str]:
        """Listener name -> security protocol; controller listeners default to PLAINTEXT."""
        mapping = parse_protocol_map(self._str("listener.security.protocol.map"))
        for name in self.controller_listener_names:
            mapping.setdefault(name, "PLAINTEXT")
        return mapping

    @property
    def controller_listener_names(self) -> tuple[str, ...]:
        """``controller.listener.names`` (upper-case), empty when unset."""
        return tuple(name.upper() for name in self._tuple("controller.listener.names"))

    @property
    def advertised_listeners(self) -> list[Listener]:
        """Endpoints to give clients: advertised.listeners, else listeners; no controller ones.

        A host of "" means "this machine": the server substitutes its host name.
        """
        configured = self._tuple("advertised.listeners")
        endpoints = [parse_listener(item) for item in configured] if configured else self.listeners
        controllers = set(self.controller_listener_names)
        return [endpoint for endpoint in endpoints if endpoint.name not in controllers]

    @property
    def inter_broker_listener_name(self) -> str:
        """Listener for broker-to-broker traffic (see the config's doc for the default)."""
        configured = self["inter.broker.listener.name"]
        if configured is not None:
            assert isinstance(configured, str)
            return configured.upper()
        names = [endpoint.name for endpoint in self.advertised_listeners]
        if "PLAINTEXT" in names or not names:
            return "PLAINTEXT"
        return names[0]

    @property
    def quorum_voters(self) -> list[Voter]:
        """``controller.quorum.voters``; empty on a controller means a quorum of one (self)."""
        return [parse_voter(item) for item in self._tuple("controller.quorum.voters")]

    @property
    def quorum_bootstrap_servers(self) -> list[HostPort]:
        """``controller.quorum.bootstrap.servers`` as (host, port)."""
        return [
            parse_host_port(item) for item in self._tuple("controller.quorum.bootstrap.servers")
        ]

    @property
    def log_dirs(self) -> list[str]:
        """Data directories: ``log.dirs`` if set, else ``log.dir``."""
        dirs = self["log.dirs"]
        if dirs is not None:
            assert isinstance(dirs, tuple)
            return list(dirs)
        return [self._str("log.dir")]

    @property
    def metadata_log_dir(self) -> str:
        """Directory of ``__cluster_metadata``: ``metadata.log.dir``, else the first log dir."""
        configured = self["metadata.log.dir"]
        if configured is not None:
            assert isinstance(configured, str)
            return configured
        return self.log_dirs[0]

    @property
    def retention_ms(self) -> int:
        """Broker-wide retention: log.retention.ms > .minutes > .hours; -1 = unlimited."""
        return self._topic_default_int("retention.ms")

    @property
    def roll_ms(self) -> int:
        """Broker-wide segment roll time: log.roll.ms > log.roll.hours."""
        return self._topic_default_int("segment.ms")

    @property
    def roll_jitter_ms(self) -> int:
        """Broker-wide roll jitter: log.roll.jitter.ms > log.roll.jitter.hours."""
        return self._topic_default_int("segment.jitter.ms")

    def _int(self, name: str) -> int:
        value = self[name]
        assert isinstance(value, int)
        return value

    def _str(self, name: str) -> str:
        value = self[name]
        assert isinstance(value, str)
        return value

    def _tuple(self, name: str) -> tuple[str, ...]:
        value = self[name]
        assert value is None or isinstance(value, tuple)
        return value or ()

    def _topic_default_int(self, topic_name: str) -> int:
        value, _ = self._topic_default(TOPIC_CONFIGS[topic_name])
        assert isinstance(value, int)
        return value

    def _topic_default(self, topic: ConfigDef) -> tuple[object, ConfigSource]:
        """A topic config's value when the topic has no override, and its source."""
        for name, factor in topic.synonyms:
            value = self._values[name]
            if value is None:
                continue
            if factor != 1:
                assert isinstance(value, int)
                value = value * factor
            if topic.name == "retention.ms" and isinstance(value, int) and value < 0:
                value = -1  # Kafka: any negative broker retention means unlimited
            return value, self._sources[name]
        return topic.default, ConfigSource.DEFAULT_CONFIG

    # --- DescribeConfigs ---

    def _synonyms(self, names: Sequence[str], sensitive: bool) -> list[Synonym]:
        entries = []
        for typed, source in zip(self._typed, _LAYER_SOURCES, strict=True):
            for name in names:
                if name in typed:
                    text = to_string(BROKER_CONFIGS[name].type, typed[name])
                    entries.append(Synonym(name, None if sensitive else text, source))
        for name in names:
            definition = BROKER_CONFIGS[name]
            if definition.default is not None:
                text = to_string(definition.type, definition.default)
                entries.append(
                    Synonym(name, None if sensitive else text, ConfigSource.DEFAULT_CONFIG)
                )
        return entries

    def describe(self, name: str, *, per_broker: bool = True) -> ConfigValue:
        """DescribeConfigs entry of a broker config, for this broker or the cluster default.

        As in Kafka, synonyms of higher precedence listed before ``name`` itself are dropped
        (describing log.retention.hours does not list log.retention.ms), and the cluster
        default view (``per_broker=False``) lists only cluster-default synonyms.
        """
        definition = BROKER_CONFIGS.get(name)
        if definition is None:
            raise _unknown_broker_key(name)
        synonyms = self._synonyms(_BROKER_SYNONYMS.get(name, (name,)), definition.is_sensitive)
        while synonyms and synonyms[0].name != name:
            synonyms.pop(0)
        if per_broker:
            value = self._values[name]
        else:
            value = self._typed[_CLUSTER_DEFAULT].get(name)
            synonyms = [
                s for s in synonyms if s.source is ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
            ]
        return ConfigValue(
            name=name,
            value=value,
            text=None if definition.is_sensitive else to_string(definition.type, value),
            source=synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG,
            is_sensitive=definition.is_sensitive,
            read_only=definition.update_mode is UpdateMode.READ_ONLY,
            synonyms=tuple(synonyms),
            config_type=definition.type,
            documentation=definition.doc,
        )

    def describe_all(self, *, per_broker: bool = True) -> dict[str, ConfigValue]:
        """Every broker config (``per_broker``), or those set as cluster-wide defaults."""
        names = BROKER_CONFIGS if per_broker else sorted(self._typed[_CLUSTER_DEFAULT])
        return {name: self.describe(name, per_broker=per_broker) for name in names}

    # --- dynamic updates ---

    def with_dynamic(
        self, updates: Mapping[str, str | None], *, per_broker: bool, replace: bool = False
    ) -> BrokerConfig:
        """A new config with dynamic updates applied (AlterConfigs on a BROKER resource).

        ``per_broker`` selects this broker's layer (resource name = node id) or the cluster
        default (resource name ""). A None value deletes the key from that layer.
        ``replace`` starts from an empty layer (AlterConfigs' whole-set semantics); otherwise
        the updates merge into it (IncrementalAlterConfigs after ``apply_incremental_alter``).
        Raises UnknownConfigError, ReadOnlyConfigError (a read-only key, or a per-broker key
        at the cluster-default level) or InvalidConfigValueError; self is never changed.
        """
        index = _PER_BROKER if per_broker else _CLUSTER_DEFAULT
        layer = {} if replace else dict(self._raw[index])
        for name, text in updates.items():
            definition = BROKER_CONFIGS.get(name)
            if definition is None:
                raise _unknown_broker_key(name)
            _check_dynamic(definition, per_broker=per_broker)
            if text is None:
                layer.pop(name, None)
            else:
                layer[name] = text
        layers = list(self._raw)
        layers[index] = layer
        return BrokerConfig(
            layers[_STATIC],
            dynamic_default=layers[_CLUSTER_DEFAULT],
            dynamic_broker=layers[_PER_BROKER],
        )

    # --- cross-key rules ---

    def _cross_validate(self) -> None:
        if self["broker.id"] != -1 and self["broker.id"] != self.node_id:
            raise _cross(
                f"broker.id ({self['broker.id']}) must equal node.id ({self.node_id}); "
                "set node.id only",
                "broker.id",
            )
        self._validate_listeners()
        self._validate_quorum()
        pairs = (
            ("group.min.session.timeout.ms", "group.max.session.timeout.ms"),
            ("replica.fetch.wait.max.ms", "replica.lag.time.max.ms"),
            ("replica.fetch.wait.max.ms", "replica.socket.timeout.ms"),
        )
        for low, high in pairs:
            if self._int(low) > self._int(high):
                raise _cross(f"{low} ({self[low]}) must not exceed {high} ({self[high]})", low)
        heartbeat, session = "broker.heartbeat.interval.ms", "broker.session.timeout.ms"
        if self._int(heartbeat) >= self._int(session):
            raise _cross(
                f"{heartbeat} ({self[heartbeat]}) must be less than {session} ({self[session]})",
                heartbeat,
            )
        if self.retention_ms == 0:
            raise _cross(
                "log retention must be -1 (unlimited) or at least 1 ms, not 0", "log.retention.ms"
            )
        threads = self._int("log.cleaner.threads")
        if threads and self._int("log.cleaner.dedupe.buffer.size") // threads < 1024 * 1024:
            raise _cross(
                "log.cleaner.dedupe.buffer.size must be at least 1 MiB per log.cleaner.threads",
                "log.cleaner.dedupe.buffer.size",
            )

    def _validate_listeners(self) -> None:
        listeners = self.listeners
        names = {endpoint.name for endpoint in listeners}
        protocols = self.security_protocol_map
        for endpoint in listeners:
            protocol = protocols.get(endpoint.name)
            if protocol is None:
                raise _cross(
                    f"listener {endpoint.name} has no entry in listener.security.protocol.map",
                    "listener.security.protocol.map",
                )
            if protocol != "PLAINTEXT":
                raise _cross(
                    f"listener {endpoint.name} uses {protocol}: klog supports only PLAINTEXT",
                    "listeners",
                )
        for index, first in enumerate(listeners):
            for second in listeners[index + 1 :]:
                one_ipv6 = (":" in first.host) != (":" in second.host)
                if first.port and first.port == second.port and not one_ipv6:
                    raise _cross(
                        f"listeners {first.name} and {second.name} use the same port {first.port}",
                        "listeners",
                    )
        controllers = self.controller_listener_names
        if self.is_controller:
            for name in controllers:
                if name not in names:
                    raise _cross(
                        f"controller listener {name} (controller.listener.names) is not in "
                        "listeners",
                        "controller.listener.names",
                    )
        elif any(name in names for name in controllers):
            raise _cross(
                "a broker-only node must not listen on a controller.listener.names listener",
                "controller.listener.names",
            )
        if not self.is_broker:
            return
        advertised_names = [endpoint.name for endpoint in self.advertised_listeners]
        if not advertised_names:
            raise _cross("a broker needs a listener that is not a controller listener", "listeners")
        for endpoint in self.advertised_listeners:
            if endpoint.name not in names:
                raise _cross(
                    f"advertised listener {endpoint.name} is not one of listeners",
                    "advertised.listeners",
                )
            if endpoint.host in _META_ADDRESSES:
                raise _cross(
                    f"listener {endpoint.name} would be advertised with the non-routable "
                    f"address {endpoint.host}; set advertised.listeners to an address clients "
                    "can reach",
                    "advertised.listeners",
                )
        inter_broker = self.inter_broker_listener_name
        if inter_broker not in advertised_names:
            raise _cross(
                f"inter.broker.listener.name {inter_broker} is not an advertised broker listener",
                "inter.broker.listener.name",
            )

    def _validate_quorum(self) -> None:
        voters = self.quorum_voters
        if self.is_controller and voters and self.node_id not in {v.node_id for v in voters}:
            ids = ", ".join(str(v.node_id) for v in voters)
            raise _cross(
                f"node.id {self.node_id} is a controller but not in controller.quorum.voters "
                f"({ids})",
                "controller.quorum.voters",
            )
        if not self.is_controller and not voters and not self.quorum_bootstrap_servers:
            raise _cross(
                "a broker-only node needs controller.quorum.voters or "
                "controller.quorum.bootstrap.servers to find the controllers",
                "controller.quorum.voters",
            )


def _check_dynamic(definition: ConfigDef, *, per_broker: bool) -> None:
    if definition.update_mode is UpdateMode.READ_ONLY:
        raise ReadOnlyConfigError(
            f"config {definition.name!r} is read-only: it cannot change while the broker runs "
            "(set it in server.properties and restart)",
            definition.name,
        )
    if definition.update_mode is UpdateMode.PER_BROKER and not per_broker:
        raise ReadOnlyConfigError(
            f"config {definition.name!r} can only be set for one broker, not as a cluster-wide "
            "default",
            definition.name,
        )


# --- loading ----------------------------------------------------------------------------------


def _set_static(static: dict[str, str], key: str, value: str, origin: str) -> None:
    definition = BROKER_CONFIGS.get(key)
    if definition is None:
        raise _with_origin(origin, _unknown_broker_key(key))
    try:
        definition.parse(value)
    except ConfigError as err:
        raise _with_origin(origin, err) from None
    static[key] = value


def load_broker_config(
    properties_path: str | None,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> BrokerConfig:
    """The node's config from a properties file, ``KLOG_*`` variables and ``--override``s.

    Precedence: defaults < file < environment < overrides. ``environ`` is passed in (the
    CLI gives ``os.environ``) so the function stays pure apart from reading the file.
    Raises ConfigError with a one-line message naming the key, its origin and the closest
    valid keys; an unreadable file is a ConfigError too.
    """
    static: dict[str, str] = {}
    if properties_path is not None:
        try:
            data = Path(properties_path).read_bytes()
        except OSError as err:
            raise ConfigError(f"cannot read {properties_path}: {err.strerror or err}") from None
        text = decode_properties_bytes(data)
        for key, value, line in parse_properties(text, properties_path):
            _set_static(static, key, value, f"{properties_path}:{line}")
    environ = environ or {}
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in NON_CONFIG_ENV_VARS:
            continue
        name = _ENV_VARS.get(var)
        if name is None:
            raise UnknownConfigError(
                f"environment variable {var} is not a klog config{did_you_mean(var, _ENV_VARS)}",
                var,
            )
        _set_static(static, name, environ[var], f"environment variable {var}")
    for item in overrides:
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not key:
            raise ConfigError(f"--override {item!r}: expected key=value")
        _set_static(static, key, value, "--override")
    return BrokerConfig(static)


# --- topic configs ------------------------------------------------------------------------------


def validate_topic_configs(
    configs: Mapping[str, str | None], broker: BrokerConfig | None = None
) -> dict[str, object]:
    """Typed values of topic config overrides (CreateTopics, AlterConfigs on a topic).

    Raises ConfigError (UnknownConfigError / InvalidConfigValueError): the caller answers
    INVALID_CONFIG. With ``broker``, cross-key rules also see the broker's defaults (a topic
    max.compaction.lag.ms below the broker's min is refused).
    """
    typed: dict[str, object] = {}
    for name, text in configs.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            raise _unknown_topic_key(name)
        if text is None:
            raise InvalidConfigValueError(f"topic config {name} needs a value, not null", name)
        typed[name] = definition.parse(text)

    def effective(name: str) -> object:
        if name in typed:
            return typed[name]
        if broker is None:
            return TOPIC_CONFIGS[name].default
        return broker._topic_default(TOPIC_CONFIGS[name])[0]

    low, high = effective("min.compaction.lag.ms"), effective("max.compaction.lag.ms")
    assert isinstance(low, int) and isinstance(high, int)
    if low > high:
        raise InvalidConfigValueError(
            f"min.compaction.lag.ms ({low}) must not exceed max.compaction.lag.ms ({high})",
            "min.compaction.lag.ms"
            if "min.compaction.lag.ms" in typed
            else "max.compaction.lag.ms",
        )
    return typed


def effective_topic_config(
    broker: BrokerConfig, overrides: Mapping[str, str]
) -> dict[str, ConfigValue]:
    """Every topic config of a topic with these overrides: value, source and synonyms.

    This is DescribeConfigs on a TOPIC resource. Raises ConfigError if an override is
    invalid (stored overrides were validated when they were set, so that is a bug upstream).
    """
    typed = validate_topic_configs(overrides, broker)
    result = {}
    for name, definition in TOPIC_CONFIGS.items():
        sensitive = definition.is_sensitive
        synonyms = []
        if name in typed:
            value, source = typed[name], ConfigSource.DYNAMIC_TOPIC_CONFIG
            text = to_string(definition.type, value)
            synonyms.append(Synonym(name, None if sensitive else text, source))
        else:
            value, source = broker._topic_default(definition)
        synonyms.extend(broker._synonyms([n for n, _ in definition.synonyms], sensitive))
        result[name] = ConfigValue(
            name=name,
            value=value,
            text=None if sensitive else to_string(definition.type, value),
            source=source,
            is_sensitive=sensitive,
            read_only=False,
            synonyms=tuple(synonyms),
            config_type=definition.type,
            documentation=definition.doc,
        )
    return result


def log_config(broker: BrokerConfig, overrides: Mapping[str, str]) -> LogConfig:
    """The storage ``LogConfig`` (``klog.segment.config``) of a topic with these overrides.

    Passes every effective topic config that LogConfig has a field for (Kafka name with
    ``.`` -> ``_``), typed: LIST configs (cleanup.policy) as tuples, "never" as Long.MAX.
    As Kafka 3.6-3.9 do, an unset message.timestamp.before/after.max.ms takes the
    deprecated message.timestamp.difference.max.ms.
    """
    from klog.segment.config import LogConfig  # lazily: loading a config needs no storage code

    values = {name: cv.value for name, cv in effective_topic_config(broker, overrides).items()}
    for bound in ("message.timestamp.before.max.ms", "message.timestamp.after.max.ms"):
        if values[bound] == LONG_MAX:
            values[bound] = values["message.timestamp.difference.max.ms"]
    fields = {field.name for field in dataclasses.fields(LogConfig)}
    return LogConfig.from_topic_configs(
        {name: value for name, value in values.items() if name.replace(".", "_") in fields}
    )


class AlterOp(IntEnum):
    """IncrementalAlterConfigs' ``config_operation`` values."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


def apply_incremental_alter(
    current: Mapping[str, str],
    ops: Iterable[tuple[str, int, str | None]],
    defs: Mapping[str, ConfigDef],
) -> dict[str, str]:
    """Apply IncrementalAlterConfigs operations ``(name, op, value)`` to a resource's configs.

    ``current`` holds the resource's own settings (topic overrides, or one dynamic broker
    layer) and ``defs`` is TOPIC_CONFIGS or BROKER_CONFIGS. APPEND/SUBTRACT work on LIST
    configs only, starting from the config's default when the resource does not set it (as
    Kafka's controller does). The result is not validated: pass it to
    ``validate_topic_configs`` or ``BrokerConfig.with_dynamic(..., replace=True)``.
    """
    result = dict(current)
    seen: set[str] = set()
    for name, op_code, value in ops:
        if name in seen:
            raise ConfigError(f"config {name!r} appears twice in one request", name)
        seen.add(name)
        definition = defs.get(name)
        if definition is None:
            raise _unknown_key(name, defs)
        try:
            op = AlterOp(op_code)
        except ValueError:
            raise ConfigError(f"unknown config operation {op_code} for {name}", name) from None
        if op is AlterOp.DELETE:
            result.pop(name, None)
            continue
        if value is None:
            raise InvalidConfigValueError(f"{op.name} of {name} needs a value, not null", name)
        if op is AlterOp.SET:
            result[name] = value
            continue
        if definition.type is not ConfigType.LIST:
            raise InvalidConfigValueError(f"cannot {op.name} {name}: it is not a list config", name)
        base = result.get(name)
        if base is None:
            base = to_string(definition.type, definition.default) or ""
        items = [item for item in base.split(",") if item]
        for item in value.split(","):
            if op is AlterOp.APPEND and item not in items:
                items.append(item)
            elif op is AlterOp.SUBTRACT and item in items:
                items.remove(item)
        result[name] = ",".join(items)
    return result


# --- topic names ----------------------------------------------------------------------------------

MAX_TOPIC_NAME_LENGTH = 249
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")


class InvalidTopicNameError(ValueError):
    """A topic name Kafka would refuse (INVALID_TOPIC_EXCEPTION); the message is one line."""


def validate_topic_name(name: str) -> None:
    """Kafka's topic name rules: 1-249 of [a-zA-Z0-9._-], and not "." or ".."."""
    if not name:
        raise InvalidTopicNameError("topic name is empty")
    if name in (".", ".."):
        raise InvalidTopicNameError(f"topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidTopicNameError(
            f"topic name is {len(name)} characters long; the limit is {MAX_TOPIC_NAME_LENGTH}"
        )
    if not _TOPIC_NAME.fullmatch(name):
        raise InvalidTopicNameError(
            f"topic name {name!r} has a character other than ASCII letters, digits, '.', '_' "
            "and '-'"
        )
