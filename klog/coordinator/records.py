"""The records of ``__consumer_offsets`` the classic group coordinator writes and replays.

Wire format (Kafka's, so Kafka tools read klog's offsets topic and vice versa): every
record has a key ``record type int16 | key`` and a value ``version int16 | value`` (see
``klog.wire.versioned``), inside ordinary v2 record batches:

* record type 1 (and legacy 0): ``OffsetCommitKey(group, topic, partition)`` ->
  ``OffsetCommitValue`` written at version 3 (leader epoch), or version 1 when the commit
  carries an explicit expire timestamp (OffsetCommit v2-v4 ``retention_time_ms``), exactly
  as Kafka chooses (version 1 has no leader epoch field, so such a commit stores -1);
* record type 2: ``GroupMetadataKey(group)`` -> ``GroupMetadataValue`` version 3;
* a null value is a tombstone: the offset, or the whole group, is deleted (and log
  compaction may later drop both records).

Record types 3 and above (KIP-848 consumer groups, share groups) are recognised and
skipped: this coordinator serves classic groups only. Values are immutable; shareable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from klog.wire import GroupMetadataKey, GroupMetadataValue, OffsetCommitKey, OffsetCommitValue
from klog.wire.exceptions import DecodeError
from klog.wire.records import build_batch, decode_records, iter_batches
from klog.wire.versioned import decode_coordinator_key, decode_versioned, encode_versioned

log = logging.getLogger(__name__)

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
OFFSET_COMMIT_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY = 1
GROUP_METADATA_VALUE_VERSION = 3

# Room left in a batch for the 61-byte header and the per-record framing.
_BATCH_SLACK = 1024


@dataclass(frozen=True, slots=True)
class OffsetAndMetadata:
    """A committed offset as stored: ``leader_epoch`` -1 and ``expire_timestamp_ms`` None
    mean "not given"."""

    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class OffsetCommitRecord:
    """An offset commit, or (``value`` None) the deletion of one."""

    group_id: str
    topic: str
    partition: int
    value: OffsetAndMetadata | None


@dataclass(frozen=True, slots=True)
class GroupMetadataRecord:
    """A classic group's persisted membership, or (``value`` None) its deletion."""

    group_id: str
    value: GroupMetadataValue | None


CoordinatorRecord = OffsetCommitRecord | GroupMetadataRecord


def encode_record(record: CoordinatorRecord) -> tuple[bytes, bytes | None]:
    """The (key, value) bytes of a record; value None for a tombstone."""
    if isinstance(record, OffsetCommitRecord):
        key = encode_versioned(
            OffsetCommitKey(group=record.group_id, topic=record.topic, partition=record.partition),
            OFFSET_COMMIT_KEY_VERSION,
        )
        offset = record.value
        if offset is None:
            return key, None
        version = (
            OFFSET_COMMIT_VALUE_VERSION
            if offset.expire_timestamp_ms is None
            else OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY
        )
        value = OffsetCommitValue(
            offset=offset.offset,
            leader_epoch=offset.leader_epoch,
            metadata=offset.metadata,
            commit_timestamp=offset.commit_timestamp_ms,
            expire_timestamp=-1
            if offset.expire_timestamp_ms is None
            else offset.expire_timestamp_ms,
        )
        return key, encode_versioned(value, version)
    key = encode_versioned(GroupMetadataKey(group=record.group_id), GROUP_METADATA_KEY_VERSION)
    if record.value is None:
        return key, None
    return key, encode_versioned(record.value, GROUP_METADATA_VALUE_VERSION)


def decode_record(
    key: bytes | memoryview, value: bytes | memoryview | None
) -> CoordinatorRecord | None:
    """Parse one ``__consumer_offsets`` record; None for the record types of other group
    kinds. Raises ``DecodeError`` for bytes that are not a coordinator record."""
    key_message, record_type = decode_coordinator_key(key)
    if isinstance(key_message, OffsetCommitKey):
        offset = None
        if value is not None:
            data, _ = decode_versioned(OffsetCommitValue, value)
            offset = OffsetAndMetadata(
                offset=data.offset,
                leader_epoch=data.leader_epoch,
                metadata=data.metadata,
                commit_timestamp_ms=data.commit_timestamp,
                expire_timestamp_ms=None if data.expire_timestamp == -1 else data.expire_timestamp,
            )
        return OffsetCommitRecord(
            key_message.group, key_message.topic, key_message.partition, offset
        )
    if isinstance(key_message, GroupMetadataKey):
        group = None if value is None else decode_versioned(GroupMetadataValue, value)[0]
        return GroupMetadataRecord(key_message.group, group)
    log.debug("skipping __consumer_offsets record type %d (not a classic group)", record_type)
    return None


def build_record_batches(
    records: Iterable[CoordinatorRecord], now_ms: int, max_batch_bytes: int
) -> bytes:
    """Uncompressed v2 batches holding ``records`` in order, each under ``max_batch_bytes``
    (so a large deletion never exceeds the topic's ``max.message.bytes``)."""
    out: list[bytes] = []
    pending: list[tuple[bytes, bytes | None, tuple[()], int]] = []
    size = 0
    budget = max(max_batch_bytes - _BATCH_SLACK, 1)
    for record in records:
        key, value = encode_record(record)
        record_size = len(key) + (len(value) if value is not None else 0) + 32
        if pending and size + record_size > budget:
            out.append(build_batch(pending))
            pending, size = [], 0
        pending.append((key, value, (), now_ms))
        size += record_size
    if pending:
        out.append(build_batch(pending))
    return b"".join(out)


def iter_log_batches(
    buf: bytes | memoryview,
) -> Iterator[tuple[int, list[CoordinatorRecord]]]:
    """For loading: walk the batches read from ``__consumer_offsets`` (the last one may be
    cut short) and yield ``(offset after the batch, its coordinator records)``. Control
    batches and batches compaction emptied yield no records but still advance the reader.
    Raises ``DecodeError`` on bad data."""
    for header, batch in iter_batches(buf, allow_partial=True):
        parsed: list[CoordinatorRecord] = []
        if not header.is_control:
            for record in decode_records(batch):
                if record.key is None:
                    raise DecodeError(f"record at offset {record.offset} has no key")
                item = decode_record(record.key, record.value)
                if item is not None:
                    parsed.append(item)
        yield header.base_offset + header.last_offset_delta + 1, parsed
