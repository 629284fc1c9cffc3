"""``LogConfig``: the topic-level settings one partition log obeys.

Field names are Kafka's topic-level config names with ``.`` replaced by ``_``
(``segment.bytes`` -> ``segment_bytes``), with Kafka's defaults. Kafka spells "never" as
Long.MAX_VALUE for ``flush.messages`` and ``flush.ms``; here that is ``None``.

Invariants: a ``LogConfig`` is immutable and every field is range-checked when it is
built, so the storage layer never re-validates. Safe to share between tasks and threads.
Storage honours the settings about segments, indexes, retention, flushing, deletion
delay, message size and timestamp type; the others (compaction, replication,
compression, remote storage) are carried for the layers that use them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LONG_MAX = (1 << 63) - 1
LONG_MIN = -(1 << 63)
INT_MAX = (1 << 31) - 1

_CLEANUP_POLICIES = frozenset({"delete", "compact"})
_COMPRESSION_TYPES = frozenset({"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"})
_TIMESTAMP_TYPES = frozenset({"CreateTime", "LogAppendTime"})
# Kafka spells "never flush" as Long.MAX_VALUE; these fields use None for it.
_NEVER_IS_NONE = frozenset({"flush_messages", "flush_ms"})
_LIST_FIELDS = frozenset(
    {
        "cleanup_policy",
        "leader_replication_throttled_replicas",
        "follower_replication_throttled_replicas",
    }
)


@dataclass(frozen=True)
class LogConfig:
    """One partition log's configuration (Kafka topic-level names, snake_case)."""

    cleanup_policy: tuple[str, ...] = ("delete",)
    compression_type: str = "producer"
    compression_gzip_level: int = -1
    compression_lz4_level: int = 9
    compression_zstd_level: int = 3
    delete_retention_ms: int = 86_400_000
    file_delete_delay_ms: int = 60_000
    flush_messages: int | None = None
    flush_ms: int | None = None
    follower_replication_throttled_replicas: tuple[str, ...] = ()
    index_interval_bytes: int = 4096
    leader_replication_throttled_replicas: tuple[str, ...] = ()
    local_retention_bytes: int = -2
    local_retention_ms: int = -2
    max_compaction_lag_ms: int = LONG_MAX
    max_message_bytes: int = 1_048_588
    message_downconversion_enable: bool = True
    message_format_version: str = "3.0-IV1"
    message_timestamp_after_max_ms: int = LONG_MAX
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_difference_max_ms: int = LONG_MAX
    message_timestamp_type: str = "CreateTime"
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    min_insync_replicas: int = 1
    preallocate: bool = False
    remote_log_copy_disable: bool = False
    remote_log_delete_on_disable: bool = False
    remote_storage_enable: bool = False
    retention_bytes: int = -1
    retention_ms: int = 604_800_000
    segment_bytes: int = 1 << 30
    segment_index_bytes: int = 10 * 1024 * 1024
    segment_jitter_ms: int = 0
    segment_ms: int = 604_800_000
    unclean_leader_election_enable: bool = False

    def __post_init__(self) -> None:
        _at_least(self, "segment_bytes", 14, INT_MAX)
        _at_least(self, "segment_index_bytes", 4, INT_MAX)
        _at_least(self, "segment_ms", 1)
        _at_least(self, "segment_jitter_ms", 0)
        _at_least(self, "index_interval_bytes", 0, INT_MAX)
        _at_least(self, "retention_ms", -1)
        _at_least(self, "retention_bytes", LONG_MIN)
        _at_least(self, "file_delete_delay_ms", 0)
        _at_least(self, "max_message_bytes", 0, INT_MAX)
        _at_least(self, "delete_retention_ms", 0)
        _at_least(self, "min_compaction_lag_ms", 0)
        _at_least(self, "max_compaction_lag_ms", 1)
        _at_least(self, "min_insync_replicas", 1)
        _at_least(self, "local_retention_ms", -2)
        _at_least(self, "local_retention_bytes", -2)
        for name in (
            "message_timestamp_after_max_ms",
            "message_timestamp_before_max_ms",
            "message_timestamp_difference_max_ms",
        ):
            _at_least(self, name, 0)
        if self.flush_messages is not None:
            _at_least(self, "flush_messages", 1)
        if self.flush_ms is not None:
            _at_least(self, "flush_ms", 0)
        if not isinstance(self.min_cleanable_dirty_ratio, int | float) or not (
            0 <= self.min_cleanable_dirty_ratio <= 1
        ):
            raise ValueError(
                f"min.cleanable.dirty.ratio must be between 0 and 1, "
                f"got {self.min_cleanable_dirty_ratio!r}"
            )
        policies = set(self.cleanup_policy)
        if not policies <= _CLEANUP_POLICIES:
            raise ValueError(
                f"cleanup.policy must be a list of {sorted(_CLEANUP_POLICIES)}, "
                f"got {list(self.cleanup_policy)}"
            )
        _one_of(self, "compression_type", _COMPRESSION_TYPES)
        _one_of(self, "message_timestamp_type", _TIMESTAMP_TYPES)

    @classmethod
    def kafka_names(cls) -> tuple[str, ...]:
        """The Kafka topic-level config names this class accepts, sorted."""
        return tuple(sorted(_kafka_name(f.name) for f in dataclasses.fields(cls)))

    @classmethod
    def from_topic_configs(cls, configs: Mapping[str, object]) -> LogConfig:
        """Build from Kafka-named, already typed values; unknown names raise ValueError.

        Long.MAX_VALUE for ``flush.messages``/``flush.ms`` means never (None). List
        configs accept a comma-separated string or an iterable of strings.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for name, value in configs.items():
            key = name.replace(".", "_")
            if key not in fields or "_" in name:
                raise ValueError(f"unknown topic config {name!r}")
            if key in _NEVER_IS_NONE and value == LONG_MAX:
                value = None
            elif key in _LIST_FIELDS:
                value = _as_list(name, value)
            values[key] = value
        return cls(**values)  # type: ignore[arg-type]

    @property
    def delete_enabled(self) -> bool:
        """True when retention deletes old segments (``cleanup.policy`` has ``delete``)."""
        return "delete" in self.cleanup_policy

    @property
    def compact_enabled(self) -> bool:
        """True when ``cleanup.policy`` has ``compact``."""
        return "compact" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        """True when the broker stamps batches (``message.timestamp.type=LogAppendTime``)."""
        return self.message_timestamp_type == "LogAppendTime"


def _kafka_name(field: str) -> str:
    return field.replace("_", ".")


def _at_least(config: LogConfig, field: str, low: int, high: int = LONG_MAX) -> None:
    value = getattr(config, field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{_kafka_name(field)} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{_kafka_name(field)} must be in [{low}, {high}], got {value}")


def _one_of(config: LogConfig, field: str, allowed: frozenset[str]) -> None:
    value = getattr(config, field)
    if value not in allowed:
        raise ValueError(f"{_kafka_name(field)} must be one of {sorted(allowed)}, got {value!r}")


def _as_list(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, Iterable):
        items = tuple(value)
        if all(isinstance(item, str) for item in items):
            return items
    raise ValueError(f"{name} must be a list of strings, got {value!r}")
