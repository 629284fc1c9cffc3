"""LogConfig: Kafka names and defaults, typed conversion, validation."""

from __future__ import annotations

import pytest

from klog.segment import LogConfig


def test_defaults_are_kafkas() -> None:
    config = LogConfig()
    assert config.segment_bytes == 1 << 30
    assert config.segment_ms == 7 * 24 * 3600 * 1000
    assert config.segment_index_bytes == 10 * 1024 * 1024
    assert config.index_interval_bytes == 4096
    assert config.retention_ms == 7 * 24 * 3600 * 1000
    assert config.retention_bytes == -1
    assert config.flush_messages is None and config.flush_ms is None
    assert config.file_delete_delay_ms == 60_000
    assert config.max_message_bytes == 1_048_588
    assert config.cleanup_policy == ("delete",)
    assert config.delete_enabled and not config.compact_enabled
    assert not config.log_append_time


def test_from_topic_configs_uses_kafka_names() -> None:
    config = LogConfig.from_topic_configs(
        {
            "segment.bytes": 4096,
            "retention.ms": -1,
            "cleanup.policy": "compact,delete",
            "flush.messages": 1,
            "flush.ms": (1 << 63) - 1,  # Kafka's "never"
            "message.timestamp.type": "LogAppendTime",
            "leader.replication.throttled.replicas": ["0:1", "1:2"],
        }
    )
    assert config.segment_bytes == 4096
    assert config.retention_ms == -1
    assert config.cleanup_policy == ("compact", "delete")
    assert config.flush_messages == 1 and config.flush_ms is None
    assert config.log_append_time
    assert config.leader_replication_throttled_replicas == ("0:1", "1:2")


@pytest.mark.parametrize("name", ["segment_bytes", "segment.byte", "log.segment.bytes", ""])
def test_unknown_names_raise(name: str) -> None:
    with pytest.raises(ValueError, match="unknown topic config"):
        LogConfig.from_topic_configs({name: 1})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"segment_bytes": 10},
        {"segment_ms": 0},
        {"retention_ms": -2},
        {"flush_messages": 0},
        {"index_interval_bytes": -1},
        {"segment_index_bytes": 2},
        {"cleanup_policy": ("delete", "shred")},
        {"compression_type": "brotli"},
        {"message_timestamp_type": "Now"},
        {"min_cleanable_dirty_ratio": 1.5},
        {"segment_bytes": True},
        {"segment_bytes": "1024"},
    ],
)
def test_bad_values_raise_naming_the_kafka_key(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        LogConfig(**kwargs)


def test_kafka_names_round_trip() -> None:
    names = LogConfig.kafka_names()
    assert "segment.index.bytes" in names and "file.delete.delay.ms" in names
    assert all("_" not in name for name in names)
