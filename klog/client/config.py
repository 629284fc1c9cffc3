"""Client configuration: Kafka's client config names in snake_case as keyword arguments.

``Producer(..., linger_ms=5)`` is Java's ``linger.ms=5``. Each client kind has a table
of the settings it implements with Kafka's defaults; ``resolve(kind, kwargs)`` checks
names (an unknown one is a ``TypeError`` naming the closest valid ones), types and
allowed values, and returns the full settings as a plain dict. Immutable tables; the
returned dict belongs to the caller.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

_COMMON: dict[str, Any] = {
    "client_id": "klog-python",
    "request_timeout_ms": 30000,
    "retry_backoff_ms": 100,
    "reconnect_backoff_ms": 50,
    "metadata_max_age_ms": 300000,
    "connections_max_idle_ms": 540000,
    "socket_connection_setup_timeout_ms": 10000,
    "default_api_timeout_ms": 60000,
}

PRODUCER: dict[str, Any] = {
    **_COMMON,
    "acks": "all",
    "linger_ms": 5,
    "batch_size": 16384,
    "buffer_memory": 32 * 1024 * 1024,
    "compression_type": "none",
    "compression_level": None,
    "retries": 2147483647,
    "delivery_timeout_ms": 120000,
    "max_in_flight_requests_per_connection": 5,
    "enable_idempotence": True,
    "max_request_size": 1048576,
    "max_block_ms": 60000,
    "on_delivery": None,
}

CONSUMER: dict[str, Any] = {
    **_COMMON,
    "group_id": None,
    "group_instance_id": None,
    "auto_offset_reset": "latest",
    "enable_auto_commit": True,
    "auto_commit_interval_ms": 5000,
    "max_poll_records": 500,
    "max_poll_interval_ms": 300000,
    "session_timeout_ms": 45000,
    "heartbeat_interval_ms": 3000,
    "partition_assignment_strategy": ("range", "cooperative-sticky"),
    "fetch_min_bytes": 1,
    "fetch_max_bytes": 52428800,
    "fetch_max_wait_ms": 500,
    "max_partition_fetch_bytes": 1048576,
    "isolation_level": "read_uncommitted",
    "check_crcs": True,
    "allow_auto_create_topics": True,
    "exclude_internal_topics": True,
    "client_rack": None,
}

ADMIN: dict[str, Any] = dict(_COMMON)

TABLES: dict[str, dict[str, Any]] = {"Producer": PRODUCER, "Consumer": CONSUMER, "Admin": ADMIN}

_CHOICES: dict[str, tuple[Any, ...]] = {
    "acks": ("all", -1, 0, 1, "0", "1", "-1"),
    "compression_type": ("none", "gzip", "snappy", "lz4", "zstd"),
    "auto_offset_reset": ("earliest", "latest", "none"),
    # read_committed needs aborted-transaction filtering, which this client lacks so far.
    "isolation_level": ("read_uncommitted",),
}
_ASSIGNORS = ("range", "roundrobin", "cooperative-sticky")
# Settings whose value may be None (the default means "not set").
_OPTIONAL = {
    "compression_level",
    "on_delivery",
    "group_id",
    "group_instance_id",
    "client_rack",
}


def closest(name: str, valid: Mapping[str, Any] | list[str], n: int = 3) -> list[str]:
    """The valid names closest to ``name`` (also matching Kafka's dotted spelling)."""
    candidates = list(valid)
    return difflib.get_close_matches(name.replace(".", "_").lower(), candidates, n, 0.6)


def resolve(kind: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``kwargs`` against ``kind``'s table; returns the complete settings."""
    table = TABLES[kind]
    settings = dict(table)
    for name, value in kwargs.items():
        if name not in table:
            hint = closest(name, table)
            suggestion = f"; did you mean {', '.join(hint)}?" if hint else ""
            raise TypeError(f"{kind}() got an unknown setting {name!r}{suggestion}")
        settings[name] = _check(kind, name, value, table[name])
    if kind == "Consumer" and settings["group_instance_id"] and not settings["group_id"]:
        raise ValueError("Consumer: group_instance_id needs a group_id")
    if kind == "Producer":
        if settings["max_in_flight_requests_per_connection"] < 1:
            raise ValueError("Producer: max_in_flight_requests_per_connection must be at least 1")
        _resolve_idempotence(settings, explicit="enable_idempotence" in kwargs)
    return settings


# The idempotent producer keeps at most this many batches per partition unanswered: the
# broker remembers that many per producer to recognise a retry.
MAX_IN_FLIGHT_IDEMPOTENT = 5


def _resolve_idempotence(settings: dict[str, Any], explicit: bool) -> None:
    """Kafka's rule (3.0+): idempotence is on by default, needs acks=all, retries > 0 and
    at most 5 requests in flight; a conflicting setting turns the default off, and is an
    error only when idempotence was asked for by name."""
    if not settings["enable_idempotence"]:
        return
    conflicts = []
    if settings["acks"] not in ("all", "-1", -1):
        conflicts.append(f"acks={settings['acks']!r} (it needs 'all')")
    if settings["retries"] == 0:
        conflicts.append("retries=0 (it needs retries > 0)")
    if settings["max_in_flight_requests_per_connection"] > MAX_IN_FLIGHT_IDEMPOTENT:
        conflicts.append(
            f"max_in_flight_requests_per_connection="
            f"{settings['max_in_flight_requests_per_connection']} "
            f"(it needs {MAX_IN_FLIGHT_IDEMPOTENT} or fewer)"
        )
    if conflicts and explicit:
        raise ValueError("Producer: enable_idempotence=True conflicts with " + ", ".join(conflicts))
    if conflicts:
        settings["enable_idempotence"] = False


def _check(kind: str, name: str, value: Any, default: Any) -> Any:
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            choices = ", ".join(repr(c) for c in _CHOICES[name])
            raise ValueError(f"{kind}: {name}={value!r} is not one of {choices}")
        return value
    if name == "partition_assignment_strategy":
        strategies = (value,) if isinstance(value, str) else tuple(value)
        bad = [s for s in strategies if s not in _ASSIGNORS]
        if bad or not strategies:
            raise ValueError(
                f"{kind}: partition_assignment_strategy {value!r}: choose from {_ASSIGNORS}"
            )
        return strategies
    if name == "on_delivery":
        if value is not None and not callable(value):
            raise TypeError(f"{kind}: on_delivery must be callable")
        return value
    if value is None and name in _OPTIONAL:
        return None
    if default is not None:
        expected: type = type(default)
    else:
        expected = int if name == "compression_level" else str
    if (expected is int and isinstance(value, bool)) or not isinstance(value, expected):
        raise TypeError(f"{kind}: {name} must be {expected.__name__}, got {value!r}")
    if expected is int and value < 0 and name != "compression_level":
        raise ValueError(f"{kind}: {name} must not be negative, got {value}")
    return value


def parse_bootstrap(servers: str | list[str] | tuple[str, ...]) -> list[tuple[str, int]]:
    """``"host:port,host2:port"`` or a list of ``host:port`` -> [(host, port)]."""
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    out = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, "9092"
        host = host.strip("[]")
        if not host or not port.isdigit():
            raise ValueError(f"bad bootstrap server {raw!r}: expected host:port")
        out.append((host, int(port)))
    if not out:
        raise ValueError("no bootstrap servers given")
    return out
