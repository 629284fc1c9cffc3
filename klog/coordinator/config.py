"""The group coordinator's settings, read from Kafka's broker config names.

``GroupConfig`` is an immutable value; one instance may be shared by every shard and task.
It is built from anything that answers ``config["offsets.topic.num.partitions"]`` (the
server's ``BrokerConfig``), so this layer does not import the server's config module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

OFFSETS_TOPIC = "__consumer_offsets"


class ConfigLookup(Protocol):
    def __getitem__(self, name: str) -> object: ...


@dataclass(frozen=True)
class GroupConfig:
    """Kafka's group and ``__consumer_offsets`` settings, in milliseconds and bytes."""

    num_partitions: int = 50
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    initial_rebalance_delay_ms: int = 3000
    max_size: int = 2**31 - 1
    # Kafka's group.classic.new.member.join.timeout.ms (an internal, fixed 5 minutes).
    new_member_join_timeout_ms: int = 300_000
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    offsets_retention_check_interval_ms: int = 600_000
    offsets_commit_timeout_ms: int = 5000
    offsets_load_buffer_size: int = 5 * 1024 * 1024
    offset_metadata_max_bytes: int = 4096

    @classmethod
    def from_broker_config(cls, config: ConfigLookup) -> GroupConfig:
        def num(name: str) -> int:
            return int(config[name])  # type: ignore[call-overload]

        return cls(
            num_partitions=num("offsets.topic.num.partitions"),
            min_session_timeout_ms=num("group.min.session.timeout.ms"),
            max_session_timeout_ms=num("group.max.session.timeout.ms"),
            initial_rebalance_delay_ms=num("group.initial.rebalance.delay.ms"),
            max_size=num("group.max.size"),
            offsets_retention_ms=num("offsets.retention.minutes") * 60_000,
            offsets_retention_check_interval_ms=num("offsets.retention.check.interval.ms"),
            offsets_commit_timeout_ms=num("offsets.commit.timeout.ms"),
            offsets_load_buffer_size=num("offsets.load.buffer.size"),
            offset_metadata_max_bytes=num("offset.metadata.max.bytes"),
        )
