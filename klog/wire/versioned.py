"""Self-describing encodings of the non-RPC schemas: a version (and type) prefix + body.

* Consumer protocol (the bytes a classic consumer group carries in JoinGroup/SyncGroup):
  ``version int16 | ConsumerProtocolSubscription or ConsumerProtocolAssignment``.
  Reading is forward compatible as in Kafka's ``ConsumerProtocol``: a newer version is
  read as the newest one we know and trailing bytes are ignored.
* ``__consumer_offsets`` records (Kafka's group coordinator): key
  ``version int16 | key``, where the key version is the record type (0 and 1:
  OffsetCommitKey, 2: GroupMetadataKey, 3+: the KIP-848 / share-group keys), and value
  ``version int16 | value`` with the value class paired to the key (``XKey`` -> ``XValue``).
  ``__transaction_state`` uses the same framing with TransactionLogKey/Value.
* KRaft metadata records (``__cluster_metadata`` record values, Kafka's
  ``MetadataRecordSerde``): ``frame version uvarint (1) | record type uvarint | version
  uvarint | record``, the record type being the ``apiKey`` of metadata/*.json.

Decoders raise only ``DecodeError``. Pure functions and immutable registries; shareable.
"""

from __future__ import annotations

import struct
from typing import TypeVar

from klog.wire.exceptions import DecodeError
from klog.wire.messages import MESSAGE_CLASSES, METADATA_RECORDS, Message
from klog.wire.primitives import decode_unsigned_varint, encode_unsigned_varint

M = TypeVar("M", bound=Message)

_VERSION = struct.Struct(">h")
METADATA_FRAME_VERSION = 1


def _coordinator_records() -> tuple[dict[int, type[Message]], dict[int, type[Message]]]:
    keys: dict[int, type[Message]] = {}
    values: dict[int, type[Message]] = {}
    for name, cls in MESSAGE_CLASSES.items():
        if cls._MODEL.source.startswith("group-coordinator/") and name.endswith("Key"):
            for record_type in cls.VALID_VERSIONS:
                keys[record_type] = cls
                values[record_type] = MESSAGE_CLASSES[name[: -len("Key")] + "Value"]
    return keys, values


# Record type (the key's version prefix) -> key class / value class in __consumer_offsets.
COORDINATOR_KEYS, COORDINATOR_VALUES = _coordinator_records()


def encode_versioned(message: Message, version: int) -> bytes:
    """``version int16 | message encoded at version``."""
    return _VERSION.pack(version) + message.encode(version)


def _read_version(buf: bytes | memoryview) -> int:
    if len(buf) < 2:
        raise DecodeError(f"{len(buf)} bytes is too short for a version prefix")
    (version,) = _VERSION.unpack_from(buf)
    return version


def decode_versioned(cls: type[M], buf: bytes | memoryview) -> tuple[M, int]:
    """Inverse of ``encode_versioned`` for a known class; returns (message, version)."""
    version = _read_version(buf)
    if version not in cls.VALID_VERSIONS:
        raise DecodeError(f"{cls.__name__} has no version {version}")
    return cls.decode(memoryview(buf)[2:], version), version


def decode_consumer_protocol(cls: type[M], buf: bytes | memoryview) -> tuple[M, int]:
    """Read a consumer-protocol Subscription or Assignment as Kafka's client does: a
    version newer than ours is read as our newest, ignoring what follows. Returns
    (message, version as written)."""
    version = _read_version(buf)
    if version < 0:
        raise DecodeError(f"{cls.__name__}: negative version {version}")
    read_as = min(version, cls.VALID_VERSIONS.stop - 1)
    message, _end = cls.decode_from(memoryview(buf)[2:], 0, read_as)
    return message, version


def decode_coordinator_key(buf: bytes | memoryview) -> tuple[Message, int]:
    """A ``__consumer_offsets`` key; returns (key, record type). The matching value
    class is ``COORDINATOR_VALUES[record_type]``."""
    record_type = _read_version(buf)
    cls = COORDINATOR_KEYS.get(record_type)
    if cls is None:
        raise DecodeError(f"unknown __consumer_offsets record type {record_type}")
    return cls.decode(memoryview(buf)[2:], record_type), record_type


def encode_metadata_record(record: Message, version: int) -> bytes:
    """A KRaft metadata record value (Kafka's ``MetadataRecordSerde`` framing)."""
    if record.SPEC_TYPE != "metadata":
        raise TypeError(f"{type(record).__name__} is not a metadata record")
    return (
        encode_unsigned_varint(METADATA_FRAME_VERSION)
        + encode_unsigned_varint(record.API_KEY)  # type: ignore[arg-type]
        + encode_unsigned_varint(version)
        + record.encode(version)
    )


def decode_metadata_record(buf: bytes | memoryview) -> tuple[Message, int]:
    """Inverse of ``encode_metadata_record``; returns (record, version)."""
    frame_version, pos = decode_unsigned_varint(buf, 0)
    if frame_version != METADATA_FRAME_VERSION:
        raise DecodeError(f"unknown metadata record frame version {frame_version}")
    record_type, pos = decode_unsigned_varint(buf, pos)
    version, pos = decode_unsigned_varint(buf, pos)
    cls = METADATA_RECORDS.get(record_type)
    if cls is None:
        raise DecodeError(f"unknown metadata record type {record_type}")
    if version not in cls.VALID_VERSIONS:
        raise DecodeError(f"{cls.__name__} has no version {version}")
    return cls.decode(memoryview(buf)[pos:], version), version
