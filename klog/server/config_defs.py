"""The table of broker and topic configs: Kafka's names, types, defaults and update modes.

Format handled: none on its own; this is data for ``klog.server.config``. Names, types,
defaults and validators follow Apache Kafka 3.9 (``KafkaConfig``, ``ServerLogConfigs``,
``LogConfig``, ``SocketServerConfigs``, ``KRaftConfigs``, ``QuorumConfig``,
``ReplicationConfigs``, ``GroupCoordinatorConfig``, ``TransactionLogConfig``), plus the
share-coordinator keys Kafka 4's sample ``server.properties`` sets. Update modes are Kafka's
dynamic sets (``DynamicBrokerConfig.AllDynamicConfigs``; per-broker = the listener configs).

Where klog differs from Kafka, the config's doc says so ("klog: ..."):
- ``node.id`` defaults to 1 and ``process.roles`` to ``broker,controller`` (Kafka requires
  both): with no configuration klog is a working single node, a quorum of one.
- ``listeners`` defaults to ``PLAINTEXT://127.0.0.1:9092`` and ``log.dir`` to
  ``./klog-data`` (Kafka: ``PLAINTEXT://:9092`` and ``/tmp/kafka-logs``).
- The internal topics' replication factors (``offsets.topic.replication.factor`` = 3, ...)
  are clamped to the number of live brokers when the topic is created; Kafka refuses to
  create the topic until that many brokers are up.
- Where Kafka has no lower bound and a negative value is nonsense (timeouts, replication
  factor), klog adds one, so the mistake is a startup error rather than odd behaviour.
- ``segment.bytes``/``log.segment.bytes`` keep Kafka 3.x's minimum (14 bytes), which tests
  need for small segments; Kafka 4 raised it to 1 MiB.
- Keys for features klog lacks (Java classes, tiered storage, TLS/SASL, ZooKeeper) are
  either accepted only at their "off" value or refused with a reason (``UNSUPPORTED``).

Invariants (tested): every default passes its validator; every topic config's broker
synonyms are broker configs of a compatible type; every first synonym is cluster-wide
dynamic (Kafka's ``DynamicLogConfig.ReconfigurableConfigs``).

Immutable module data; safe to share between tasks and threads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from klog.server.config_types import (
    DOUBLE_MAX,
    HOST_PORTS,
    INT_MAX,
    LISTENERS,
    LONG_MAX,
    PROTOCOL_MAP,
    VOTERS,
    Check,
    ConfigDef,
    ConfigType,
    ListOf,
    OneOf,
    UpdateMode,
    Validator,
    at_least,
    between,
    must_be,
    non_empty_unique_list,
    unset_only,
)

BOOLEAN = ConfigType.BOOLEAN
STRING = ConfigType.STRING
INT = ConfigType.INT
SHORT = ConfigType.SHORT
LONG = ConfigType.LONG
DOUBLE = ConfigType.DOUBLE
LIST = ConfigType.LIST
CLASS = ConfigType.CLASS
PASSWORD = ConfigType.PASSWORD

RO = UpdateMode.READ_ONLY
PER_BROKER = UpdateMode.PER_BROKER
CLUSTER = UpdateMode.CLUSTER_WIDE

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
WEEK_MS = 168 * HOUR_MS

COMPRESSION_TYPES = OneOf(("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"))
TIMESTAMP_TYPES = OneOf(("CreateTime", "LogAppendTime"))
CLEANUP_POLICIES = ListOf(("compact", "delete"))
_THROTTLED_REPLICA = re.compile(r"[0-9]+:[0-9]+")
_MESSAGE_FORMAT = re.compile(r"[0-9]+\.[0-9]+(?:\.[0-9]+)*(?:-IV[0-9]+)?")
_CLUSTER_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def _gzip_level(value: object) -> str | None:
    assert isinstance(value, int)
    return None if value == -1 or 1 <= value <= 9 else "must be -1 or between 1 and 9"


def _throttled_replicas(value: object) -> str | None:
    assert isinstance(value, tuple)
    if value == ("*",) or all(_THROTTLED_REPLICA.fullmatch(item) for item in value):
        return None
    return "must be * or a list of partition:broker pairs"


def _cluster_id(value: object) -> str | None:
    assert isinstance(value, str)
    if _CLUSTER_ID.fullmatch(value):
        return None
    return "must be a 22-character base64url UUID (as kafka-storage random-uuid prints)"


def _message_format(value: object) -> str | None:
    assert isinstance(value, str)
    return None if _MESSAGE_FORMAT.fullmatch(value) else "must be a Kafka version such as 3.0-IV1"


GZIP_LEVEL = Check(_gzip_level, "[1,...,9] or -1")
MESSAGE_FORMAT = Check(_message_format, "[0.8.0, ..., 3.0-IV1, ...]")
THROTTLED_REPLICAS = Check(
    _throttled_replicas, "[partitionId]:[brokerId],[partitionId]:[brokerId],... or *"
)
CLUSTER_ID = Check(_cluster_id, "22-character base64url UUID")
NON_EMPTY_UNIQUE = Check(non_empty_unique_list, "non-empty list without repeats")
NO_JAVA = "klog cannot load Java classes"


def _broker(
    name: str,
    ctype: ConfigType,
    default: object,
    doc: str,
    validator: Validator | None = None,
    mode: UpdateMode = RO,
) -> ConfigDef:
    return ConfigDef(name, ctype, default, doc, validator, mode)


def _topic(
    name: str,
    ctype: ConfigType,
    default: object,
    doc: str,
    validator: Validator | None = None,
    synonyms: tuple[tuple[str, int], ...] = (),
) -> ConfigDef:
    # Topic configs are always alterable per topic; the broker update mode does not apply.
    return ConfigDef(name, ctype, default, doc, validator, None, synonyms)


def _index(*defs: ConfigDef) -> Mapping[str, ConfigDef]:
    table = {d.name: d for d in defs}
    assert len(table) == len(defs), "a config is defined twice"
    return MappingProxyType(dict(sorted(table.items())))


# fmt: off
BROKER_CONFIGS: Mapping[str, ConfigDef] = _index(
    # --- node identity and roles ---
    _broker(
        "node.id", INT, 1,
        "Id of this node in the cluster. klog: defaults to 1 for the single-node default; "
        "Kafka requires it to be set.",
        at_least(0),
    ),
    _broker(
        "broker.id", INT, -1,
        "Kafka's older name for node.id; -1 means unset, any other value must equal node.id.",
        at_least(-1),
    ),
    _broker(
        "process.roles", LIST, ("broker", "controller"),
        "Roles of this node: broker, controller or both. klog: defaults to both (Kafka "
        "requires it to be set).",
        ListOf(("broker", "controller"), allow_empty=False, unique=True),
    ),
    _broker(
        "klog.cluster.id", STRING, None,
        "klog: cluster id written to meta.properties when an empty log directory is "
        "formatted; unset means a random one. Every node of a cluster needs the same id.",
        CLUSTER_ID,
    ),
    _broker("broker.rack", STRING, None, "Rack of this broker, for rack-aware replica placement."),
    # --- topics ---
    _broker("auto.create.topics.enable", BOOLEAN, True,
            "Create a topic when a client asks for metadata of a topic that does not exist."),
    _broker("delete.topic.enable", BOOLEAN, True, "Allow DeleteTopics; when false it is refused."),
    _broker("num.partitions", INT, 1, "Default number of partitions of a new topic.", at_least(1)),
    _broker(
        "default.replication.factor", INT, 1,
        "Default replication factor of a new topic (including auto-created ones).", at_least(1),
    ),
    _broker(
        "min.insync.replicas", INT, 1,
        "With acks=all, the fewest in-sync replicas that must have a write for it to succeed.",
        at_least(1), CLUSTER,
    ),
    _broker(
        "unclean.leader.election.enable", BOOLEAN, False,
        "Let a replica outside the ISR become leader as a last resort (may lose data).",
        None, CLUSTER,
    ),
    _broker(
        "message.max.bytes", INT, 1048588,
        "Largest record batch the broker accepts (after compression); topics override it "
        "with max.message.bytes.",
        at_least(0), CLUSTER,
    ),
    _broker(
        "compression.type", STRING, "producer",
        "Final compression of topic data: a codec, uncompressed, or producer (keep the "
        "producer's codec).",
        COMPRESSION_TYPES, CLUSTER,
    ),
    _broker("compression.gzip.level", INT, -1,
            "Gzip level when compression.type is gzip (-1 = codec default).", GZIP_LEVEL, CLUSTER),
    _broker("compression.lz4.level", INT, 9,
            "LZ4 level when compression.type is lz4.", between(1, 17), CLUSTER),
    _broker("compression.zstd.level", INT, 3,
            "Zstandard level when compression.type is zstd.", between(-131072, 22), CLUSTER),
    _broker(
        "fetch.max.bytes", INT, 57671680,
        "Most bytes the broker returns for one fetch request.", at_least(1024),
    ),
    # --- sockets and request handling ---
    _broker(
        "listeners", LIST, ("PLAINTEXT://127.0.0.1:9092",),
        "Comma-separated NAME://host:port endpoints to listen on (empty host = all "
        "interfaces, port 0 = any free port). klog: defaults to PLAINTEXT://127.0.0.1:9092.",
        LISTENERS, PER_BROKER,
    ),
    _broker(
        "advertised.listeners", LIST, None,
        "Endpoints given to clients and other brokers, if different from listeners.",
        LISTENERS, PER_BROKER,
    ),
    _broker(
        "listener.security.protocol.map", STRING,
        "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "Security protocol of each listener name, as NAME:PROTOCOL pairs. klog: the "
        "listeners actually used must be PLAINTEXT.",
        PROTOCOL_MAP, PER_BROKER,
    ),
    _broker(
        "controller.listener.names", LIST, None,
        "Names of the listeners the controller quorum uses (must be in listeners on a "
        "controller, and absent from listeners on a broker-only node).",
    ),
    _broker(
        "inter.broker.listener.name", STRING, None,
        "Listener brokers use to reach each other. klog: when unset, PLAINTEXT if there is "
        "such a listener, else the first non-controller listener.",
    ),
    _broker("socket.send.buffer.bytes", INT, 102400,
            "SO_SNDBUF of client sockets; -1 = OS default."),
    _broker("socket.receive.buffer.bytes", INT, 102400,
            "SO_RCVBUF of client sockets; -1 = OS default."),
    _broker(
        "socket.request.max.bytes", INT, 104857600,
        "Largest request frame accepted; a bigger size prefix closes the connection.",
        at_least(1),
    ),
    _broker("socket.listen.backlog.size", INT, 50,
            "Pending-connection backlog of each listening socket.", at_least(1)),
    _broker("connections.max.idle.ms", LONG, 600000,
            "Close a client connection idle for this long.", at_least(1)),
    _broker("queued.max.requests", INT, 500,
            "Requests queued before the broker stops reading more.", at_least(1)),
    _broker("queued.max.request.bytes", LONG, -1,
            "Bytes of queued requests before the broker stops reading more (-1 = no limit)."),
    _broker(
        "num.network.threads", INT, 3,
        "Accepted for compatibility; klog serves all connections on one event loop.",
        at_least(1), CLUSTER,
    ),
    _broker(
        "num.io.threads", INT, 8,
        "Accepted for compatibility; klog handles requests on one event loop and blocking "
        "disk work in worker threads.",
        at_least(1), CLUSTER,
    ),
    _broker("background.threads", INT, 10,
            "Accepted for compatibility (Kafka's background task pool).", at_least(1), CLUSTER),
    _broker(
        "num.recovery.threads.per.data.dir", INT, 1,
        "Worker threads per log directory for recovery at startup and flush at shutdown.",
        at_least(1), CLUSTER,
    ),
    # --- KRaft: quorum and metadata log ---
    _broker(
        "controller.quorum.voters", LIST, (),
        "Static controller quorum as id@host:port entries. klog: empty on a node with the "
        "controller role means a quorum of one (this node).",
        VOTERS,
    ),
    _broker(
        "controller.quorum.bootstrap.servers", LIST, (),
        "host:port endpoints used to discover the controller quorum (dynamic quorums).",
        HOST_PORTS,
    ),
    _broker("controller.quorum.election.timeout.ms", INT, 1000,
            "Time without a leader before a voter starts an election.", at_least(1)),
    _broker("controller.quorum.fetch.timeout.ms", INT, 2000,
            "Time without a fetch from the leader before a voter suspects it.", at_least(1)),
    _broker("controller.quorum.election.backoff.max.ms", INT, 1000,
            "Longest backoff before a new election after a failed one.", at_least(1)),
    _broker("controller.quorum.linger.ms", INT, 25,
            "How long the quorum leader waits to batch metadata records.", at_least(0)),
    _broker("controller.quorum.request.timeout.ms", INT, 2000,
            "Timeout of quorum requests.", at_least(1)),
    _broker("controller.quorum.retry.backoff.ms", INT, 20,
            "Backoff before retrying a failed quorum request.", at_least(0)),
    _broker(
        "metadata.log.dir", STRING, None,
        "Directory of the __cluster_metadata log; unset = the first log directory.",
    ),
    _broker("metadata.log.segment.bytes", INT, 1073741824,
            "Largest segment file of the metadata log.", at_least(12)),
    _broker("metadata.log.segment.ms", LONG, WEEK_MS,
            "Roll a metadata log segment after this long.", at_least(1)),
    _broker("metadata.max.retention.bytes", LONG, 104857600,
            "Metadata log and snapshot bytes kept before old ones are deleted (-1 = no limit)."),
    _broker("metadata.max.retention.ms", LONG, WEEK_MS,
            "Age after which metadata log segments and snapshots may be deleted (-1 = never)."),
    _broker("metadata.log.max.record.bytes.between.snapshots", LONG, 20971520,
            "Metadata log bytes after the last snapshot that trigger a new one.", at_least(1)),
    _broker("metadata.log.max.snapshot.interval.ms", LONG, HOUR_MS,
            "Longest time between metadata snapshots (0 = only by size).", at_least(0)),
    _broker("metadata.max.idle.interval.ms", INT, 500,
            "How often an idle quorum leader writes a no-op record (0 = never).", at_least(0)),
    _broker("broker.heartbeat.interval.ms", INT, 2000,
            "Time between a broker's heartbeats to the controller.", at_least(1)),
    _broker(
        "broker.session.timeout.ms", INT, 9000,
        "A broker without a heartbeat for this long is fenced (at least twice the heartbeat "
        "interval).",
        at_least(1),
    ),
    _broker("initial.broker.registration.timeout.ms", INT, 60000,
            "How long a starting broker waits to register with the controller.", at_least(1)),
    # --- log directories, segments, retention ---
    _broker("log.dir", STRING, "./klog-data",
            "Data directory, used when log.dirs is unset. klog: defaults to ./klog-data."),
    _broker("log.dirs", LIST, None,
            "Comma-separated data directories; when unset, log.dir is used.", NON_EMPTY_UNIQUE),
    _broker("log.segment.bytes", INT, 1073741824,
            "Largest size of a segment file before a new one is rolled.", at_least(14), CLUSTER),
    _broker(
        "log.roll.ms", LONG, None,
        "Roll a new segment after this long; unset = log.roll.hours.", at_least(1), CLUSTER,
    ),
    _broker("log.roll.hours", INT, 168,
            "Roll a new segment after this many hours (log.roll.ms wins).", at_least(1)),
    _broker(
        "log.roll.jitter.ms", LONG, None,
        "Largest random time subtracted from the roll time; unset = log.roll.jitter.hours.",
        at_least(0), CLUSTER,
    ),
    _broker("log.roll.jitter.hours", INT, 0,
            "Roll jitter in hours (log.roll.jitter.ms wins).", at_least(0)),
    _broker(
        "log.retention.ms", LONG, None,
        "Delete segments older than this; unset = log.retention.minutes; negative = forever.",
        None, CLUSTER,
    ),
    _broker("log.retention.minutes", INT, None,
            "Retention in minutes; unset = log.retention.hours (log.retention.ms wins)."),
    _broker("log.retention.hours", INT, 168,
            "Retention in hours (log.retention.ms and log.retention.minutes win)."),
    _broker("log.retention.bytes", LONG, -1,
            "Largest partition size before old segments are deleted (-1 = no limit).",
            None, CLUSTER),
    _broker("log.retention.check.interval.ms", LONG, 300000,
            "How often logs are checked for segments to delete.", at_least(1)),
    _broker("log.cleanup.policy", LIST, ("delete",),
            "Default cleanup policy: delete, compact, or both.", CLEANUP_POLICIES, CLUSTER),
    _broker("log.index.size.max.bytes", INT, 10485760,
            "Size of a segment's preallocated offset index.", at_least(4), CLUSTER),
    _broker("log.index.interval.bytes", INT, 4096,
            "Log bytes between two offset index entries.", at_least(0), CLUSTER),
    _broker(
        "log.flush.interval.messages", LONG, LONG_MAX,
        "fsync a partition after this many records (default: never; the OS flushes).",
        at_least(1), CLUSTER,
    ),
    _broker(
        "log.flush.interval.ms", LONG, None,
        "fsync a partition when its oldest unflushed record is this old; unset = "
        "log.flush.scheduler.interval.ms.",
        at_least(0), CLUSTER,
    ),
    _broker("log.flush.scheduler.interval.ms", LONG, LONG_MAX,
            "How often partitions are checked for a time-based flush (default: never)."),
    _broker("log.flush.offset.checkpoint.interval.ms", INT, 60000,
            "How often the recovery-point checkpoint is written.", at_least(0)),
    _broker("log.flush.start.offset.checkpoint.interval.ms", INT, 60000,
            "How often the log-start-offset checkpoint is written.", at_least(0)),
    _broker("log.segment.delete.delay.ms", LONG, 60000,
            "Delay between renaming a segment to .deleted and removing the file.",
            at_least(0), CLUSTER),
    _broker("log.preallocate", BOOLEAN, False,
            "Preallocate a new segment file to its full size.", None, CLUSTER),
    _broker(
        "log.message.timestamp.type", STRING, "CreateTime",
        "Record timestamps: CreateTime (the producer's) or LogAppendTime (the broker's).",
        TIMESTAMP_TYPES, CLUSTER,
    ),
    _broker("log.message.timestamp.before.max.ms", LONG, LONG_MAX,
            "Refuse CreateTime records older than the broker's clock by more than this.",
            at_least(0), CLUSTER),
    _broker("log.message.timestamp.after.max.ms", LONG, LONG_MAX,
            "Refuse CreateTime records ahead of the broker's clock by more than this.",
            at_least(0), CLUSTER),
    _broker(
        "log.message.timestamp.difference.max.ms", LONG, LONG_MAX,
        "Deprecated: both timestamp bounds at once when the before/after ones are unset.",
        at_least(0), CLUSTER,
    ),
    _broker(
        "log.message.format.version", STRING, "3.0-IV1",
        "Deprecated; accepted for compatibility (klog always writes v2 record batches).",
        MESSAGE_FORMAT, CLUSTER,
    ),
    _broker(
        "log.message.downconversion.enable", BOOLEAN, True,
        "Deprecated; accepted for compatibility (klog serves only v2 record batches).",
        None, CLUSTER,
    ),
    _broker("log.local.retention.ms", LONG, -2,
            "Tiered-storage local retention; accepted, unused (klog has no tiered storage).",
            at_least(-2), CLUSTER),
    _broker("log.local.retention.bytes", LONG, -2,
            "Tiered-storage local retention; accepted, unused (klog has no tiered storage).",
            at_least(-2), CLUSTER),
    _broker("remote.log.storage.system.enable", BOOLEAN, False,
            "Tiered storage switch; klog has none.", must_be(False, "klog has no tiered storage")),
    # --- log cleaner (compaction) ---
    _broker("log.cleaner.enable", BOOLEAN, True,
            "Run the log cleaner (needed by compacted topics such as __consumer_offsets)."),
    _broker("log.cleaner.threads", INT, 1, "Worker threads of the log cleaner.",
            at_least(0), CLUSTER),
    _broker("log.cleaner.min.cleanable.ratio", DOUBLE, 0.5,
            "Least dirty/total ratio before a log is compacted.", between(0, 1), CLUSTER),
    _broker("log.cleaner.delete.retention.ms", LONG, 86400000,
            "How long tombstones are kept in compacted topics.", at_least(0), CLUSTER),
    _broker("log.cleaner.min.compaction.lag.ms", LONG, 0,
            "Least age of a record before it may be compacted.", at_least(0), CLUSTER),
    _broker("log.cleaner.max.compaction.lag.ms", LONG, LONG_MAX,
            "Greatest age of a record before its segment must be compacted.",
            at_least(1), CLUSTER),
    _broker("log.cleaner.backoff.ms", LONG, 15000,
            "Sleep of the cleaner when there is nothing to clean.", at_least(0), CLUSTER),
    _broker("log.cleaner.dedupe.buffer.size", LONG, 134217728,
            "Memory for the cleaner's key map, across all cleaner threads.", None, CLUSTER),
    _broker("log.cleaner.io.buffer.size", INT, 524288,
            "I/O buffer of the cleaner, across all cleaner threads.", at_least(0), CLUSTER),
    _broker("log.cleaner.io.buffer.load.factor", DOUBLE, 0.9,
            "Fill factor of the cleaner's key map.", None, CLUSTER),
    _broker("log.cleaner.io.max.bytes.per.second", DOUBLE, DOUBLE_MAX,
            "Throttle of cleaner I/O (read plus write).", None, CLUSTER),
    # --- replication ---
    _broker("replica.lag.time.max.ms", LONG, 30000,
            "A follower not caught up for this long leaves the ISR.", at_least(1)),
    _broker("replica.fetch.max.bytes", INT, 1048576,
            "Bytes a follower asks for per partition.", at_least(0)),
    _broker("replica.fetch.min.bytes", INT, 1,
            "Least bytes a follower's fetch waits for.", at_least(1)),
    _broker(
        "replica.fetch.wait.max.ms", INT, 500,
        "Longest wait of a follower's fetch (at most replica.lag.time.max.ms).", at_least(0),
    ),
    _broker("replica.fetch.backoff.ms", INT, 1000,
            "Sleep of a follower after a fetch error.", at_least(0)),
    _broker("replica.fetch.response.max.bytes", INT, 10485760,
            "Bytes a follower asks for per fetch response.", at_least(0)),
    _broker("replica.socket.timeout.ms", INT, 30000,
            "Socket timeout of follower fetches.", at_least(1)),
    _broker("replica.socket.receive.buffer.bytes", INT, 65536,
            "SO_RCVBUF of follower fetch sockets; -1 = OS default."),
    _broker("replica.high.watermark.checkpoint.interval.ms", LONG, 5000,
            "How often high watermarks are checkpointed.", at_least(1)),
    _broker("num.replica.fetchers", INT, 1,
            "Fetcher tasks per source broker.", at_least(1), CLUSTER),
    _broker("auto.leader.rebalance.enable", BOOLEAN, True,
            "Move leadership back to preferred replicas in the background."),
    _broker("leader.imbalance.per.broker.percentage", INT, 10,
            "Leader imbalance per broker, in percent, that triggers a rebalance.", at_least(0)),
    _broker("leader.imbalance.check.interval.seconds", LONG, 300,
            "How often leader imbalance is checked.", at_least(1)),
    _broker("replica.selector.class", CLASS, None,
            "Kafka's follower-fetching selector; klog always answers preferred_read_replica = -1.",
            unset_only(NO_JAVA)),
    # --- consumer groups and __consumer_offsets ---
    _broker("group.min.session.timeout.ms", INT, 6000,
            "Shortest session timeout a group member may ask for.", at_least(1)),
    _broker("group.max.session.timeout.ms", INT, 1800000,
            "Longest session timeout a group member may ask for.", at_least(1)),
    _broker("group.initial.rebalance.delay.ms", INT, 3000,
            "Wait for more members before the first rebalance of an empty group.", at_least(0)),
    _broker("group.max.size", INT, INT_MAX, "Most members in one group.", at_least(1)),
    _broker("offsets.topic.num.partitions", INT, 50,
            "Partitions of __consumer_offsets (do not change after it exists).", at_least(1)),
    _broker(
        "offsets.topic.replication.factor", SHORT, 3,
        "Replication factor of __consumer_offsets. klog: clamped to the live brokers when "
        "the topic is created (Kafka waits for that many brokers).",
        at_least(1),
    ),
    _broker("offsets.topic.segment.bytes", INT, 104857600,
            "Segment size of __consumer_offsets.", at_least(1)),
    _broker("offsets.retention.minutes", INT, 10080,
            "Keep a group's committed offsets this long after it becomes empty.", at_least(1)),
    _broker("offsets.retention.check.interval.ms", LONG, 600000,
            "How often expired offsets are removed.", at_least(1)),
    _broker("offsets.commit.timeout.ms", INT, 5000,
            "Longest wait for an offset commit to become durable.", at_least(1)),
    _broker("offsets.load.buffer.size", INT, 5242880,
            "Read size when loading a __consumer_offsets partition.", at_least(1)),
    _broker("offset.metadata.max.bytes", INT, 4096,
            "Longest metadata string allowed with a committed offset.", at_least(0)),
    # --- transactions and producer ids ---
    _broker("transaction.state.log.num.partitions", INT, 50,
            "Partitions of __transaction_state.", at_least(1)),
    _broker(
        "transaction.state.log.replication.factor", SHORT, 3,
        "Replication factor of __transaction_state. klog: clamped to the live brokers.",
        at_least(1),
    ),
    _broker(
        "transaction.state.log.min.isr", INT, 2,
        "min.insync.replicas of __transaction_state. klog: clamped to its replication factor.",
        at_least(1),
    ),
    _broker("transaction.state.log.segment.bytes", INT, 104857600,
            "Segment size of __transaction_state.", at_least(1)),
    _broker("transaction.state.log.load.buffer.size", INT, 5242880,
            "Read size when loading a __transaction_state partition.", at_least(1)),
    _broker("transactional.id.expiration.ms", INT, 604800000,
            "Forget a transactional id unused for this long.", at_least(1)),
    _broker("transaction.max.timeout.ms", INT, 900000,
            "Longest transaction timeout a producer may ask for.", at_least(1)),
    _broker("producer.id.expiration.ms", INT, 86400000,
            "Forget an idle producer id's sequence state after this long.",
            at_least(1), CLUSTER),
    _broker("producer.id.expiration.check.interval.ms", INT, 600000,
            "How often idle producer ids are looked for (Kafka: an internal config).",
            at_least(1)),
    # --- share groups (keys Kafka 4's sample server.properties sets) ---
    _broker("share.coordinator.state.topic.replication.factor", SHORT, 3,
            "Accepted for compatibility (klog has no share groups yet).", at_least(1)),
    _broker("share.coordinator.state.topic.min.isr", SHORT, 2,
            "Accepted for compatibility (klog has no share groups yet).", at_least(1)),
    # --- Kafka plug-ins klog cannot load ---
    _broker("create.topic.policy.class.name", CLASS, None,
            "Kafka's CreateTopics policy plug-in; must stay unset.", unset_only(NO_JAVA)),
    _broker("alter.config.policy.class.name", CLASS, None,
            "Kafka's AlterConfigs policy plug-in; must stay unset.", unset_only(NO_JAVA)),
    _broker("authorizer.class.name", STRING, "",
            "Kafka's authorizer plug-in; must stay empty (klog has no ACLs).",
            unset_only("klog has no authorizer")),
    _broker("password.encoder.secret", PASSWORD, None,
            "Accepted for compatibility; klog stores no dynamic passwords."),
)
# fmt: on


def _ms(name: str) -> tuple[str, int]:
    return (name, 1)


# fmt: off
TOPIC_CONFIGS: Mapping[str, ConfigDef] = _index(
    _topic("cleanup.policy", LIST, ("delete",),
           "delete (retention by time and size), compact (latest record per key), or both.",
           CLEANUP_POLICIES, (_ms("log.cleanup.policy"),)),
    _topic("compression.type", STRING, "producer",
           "Final compression of the topic's data; producer keeps the producer's codec.",
           COMPRESSION_TYPES, (_ms("compression.type"),)),
    _topic("compression.gzip.level", INT, -1, "Gzip level when compression.type is gzip.",
           GZIP_LEVEL, (_ms("compression.gzip.level"),)),
    _topic("compression.lz4.level", INT, 9, "LZ4 level when compression.type is lz4.",
           between(1, 17), (_ms("compression.lz4.level"),)),
    _topic("compression.zstd.level", INT, 3, "Zstandard level when compression.type is zstd.",
           between(-131072, 22), (_ms("compression.zstd.level"),)),
    _topic("delete.retention.ms", LONG, 86400000, "How long tombstones are kept when compacted.",
           at_least(0), (_ms("log.cleaner.delete.retention.ms"),)),
    _topic("file.delete.delay.ms", LONG, 60000, "Delay before a deleted segment file is removed.",
           at_least(0), (_ms("log.segment.delete.delay.ms"),)),
    _topic("flush.messages", LONG, LONG_MAX, "fsync after this many records (default: never).",
           at_least(1), (_ms("log.flush.interval.messages"),)),
    _topic("flush.ms", LONG, LONG_MAX, "fsync when unflushed data is this old (default: never).",
           at_least(0), (_ms("log.flush.interval.ms"), _ms("log.flush.scheduler.interval.ms"))),
    _topic("follower.replication.throttled.replicas", LIST, (),
           "Replicas throttled on the follower side; accepted, klog does not throttle.",
           THROTTLED_REPLICAS),
    _topic("index.interval.bytes", INT, 4096, "Log bytes between two offset index entries.",
           at_least(0), (_ms("log.index.interval.bytes"),)),
    _topic("leader.replication.throttled.replicas", LIST, (),
           "Replicas throttled on the leader side; accepted, klog does not throttle.",
           THROTTLED_REPLICAS),
    _topic("local.retention.bytes", LONG, -2, "Tiered-storage local retention; accepted, unused.",
           at_least(-2), (_ms("log.local.retention.bytes"),)),
    _topic("local.retention.ms", LONG, -2, "Tiered-storage local retention; accepted, unused.",
           at_least(-2), (_ms("log.local.retention.ms"),)),
    _topic("max.compaction.lag.ms", LONG, LONG_MAX,
           "Greatest age of a record before its segment must be compacted.",
           at_least(1), (_ms("log.cleaner.max.compaction.lag.ms"),)),
    _topic("max.message.bytes", INT, 1048588,
           "Largest record batch accepted (after compression).",
           at_least(0), (_ms("message.max.bytes"),)),
    _topic("message.downconversion.enable", BOOLEAN, True,
           "Deprecated; accepted (klog serves only v2 record batches).",
           None, (_ms("log.message.downconversion.enable"),)),
    _topic("message.format.version", STRING, "3.0-IV1",
           "Deprecated; accepted (klog always writes v2 record batches).",
           MESSAGE_FORMAT, (_ms("log.message.format.version"),)),
    _topic("message.timestamp.after.max.ms", LONG, LONG_MAX,
           "Refuse CreateTime records this far ahead of the broker's clock.",
           at_least(0), (_ms("log.message.timestamp.after.max.ms"),)),
    _topic("message.timestamp.before.max.ms", LONG, LONG_MAX,
           "Refuse CreateTime records this far behind the broker's clock.",
           at_least(0), (_ms("log.message.timestamp.before.max.ms"),)),
    _topic("message.timestamp.difference.max.ms", LONG, LONG_MAX,
           "Deprecated: both timestamp bounds when the before/after ones are unset.",
           at_least(0), (_ms("log.message.timestamp.difference.max.ms"),)),
    _topic("message.timestamp.type", STRING, "CreateTime",
           "CreateTime (the producer's timestamp) or LogAppendTime (the broker's).",
           TIMESTAMP_TYPES, (_ms("log.message.timestamp.type"),)),
    _topic("min.cleanable.dirty.ratio", DOUBLE, 0.5,
           "Least dirty/total ratio before the log is compacted.",
           between(0, 1), (_ms("log.cleaner.min.cleanable.ratio"),)),
    _topic("min.compaction.lag.ms", LONG, 0, "Least age of a record before it may be compacted.",
           at_least(0), (_ms("log.cleaner.min.compaction.lag.ms"),)),
    _topic("min.insync.replicas", INT, 1,
           "With acks=all, the fewest in-sync replicas that must have a write.",
           at_least(1), (_ms("min.insync.replicas"),)),
    _topic("preallocate", BOOLEAN, False, "Preallocate new segment files to their full size.",
           None, (_ms("log.preallocate"),)),
    _topic("remote.log.copy.disable", BOOLEAN, False,
           "Tiered storage: stop copying to remote storage; accepted, unused."),
    _topic("remote.log.delete.on.disable", BOOLEAN, False,
           "Tiered storage: delete remote data when it is disabled; accepted, unused."),
    _topic("remote.storage.enable", BOOLEAN, False, "Tiered storage; klog has none.",
           must_be(False, "klog has no tiered storage")),
    _topic("retention.bytes", LONG, -1,
           "Largest partition size before old segments are deleted (-1 = no limit).",
           None, (_ms("log.retention.bytes"),)),
    _topic("retention.ms", LONG, WEEK_MS, "Delete segments older than this (-1 = keep forever).",
           at_least(-1),
           (_ms("log.retention.ms"), ("log.retention.minutes", MINUTE_MS),
            ("log.retention.hours", HOUR_MS))),
    _topic("segment.bytes", INT, 1073741824, "Largest size of a segment file.",
           at_least(14), (_ms("log.segment.bytes"),)),
    _topic("segment.index.bytes", INT, 10485760, "Size of a segment's preallocated offset index.",
           at_least(4), (_ms("log.index.size.max.bytes"),)),
    _topic("segment.jitter.ms", LONG, 0,
           "Largest random time subtracted from the segment roll time.",
           at_least(0), (_ms("log.roll.jitter.ms"), ("log.roll.jitter.hours", HOUR_MS))),
    _topic("segment.ms", LONG, WEEK_MS, "Roll a new segment after this long.",
           at_least(1), (_ms("log.roll.ms"), ("log.roll.hours", HOUR_MS))),
    _topic("unclean.leader.election.enable", BOOLEAN, False,
           "Let a replica outside the ISR become leader as a last resort (may lose data).",
           None, (_ms("unclean.leader.election.enable"),)),
)
# fmt: on

# Kafka keys klog knows but refuses, with the reason; exact names first, then prefixes.
UNSUPPORTED: Mapping[str, str] = MappingProxyType(
    {
        "zookeeper.connect": "klog has no ZooKeeper mode; it runs its own KRaft-style quorum",
        "zookeeper.": "klog has no ZooKeeper mode; it runs its own KRaft-style quorum",
        "ssl.": "klog supports only PLAINTEXT listeners",
        "sasl.": "klog supports only PLAINTEXT listeners",
        "listener.name.": "klog has no per-listener settings",
        "remote.log.": "klog has no tiered storage",
    }
)


def unsupported_reason(name: str) -> str | None:
    """Why klog refuses a Kafka key it recognises, or None if it is not such a key."""
    if name in UNSUPPORTED:
        return UNSUPPORTED[name]
    for prefix, reason in UNSUPPORTED.items():
        if prefix.endswith(".") and name.startswith(prefix):
            return reason
    return None
