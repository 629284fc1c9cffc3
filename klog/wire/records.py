"""Kafka record batches, magic v2 (Kafka's DefaultRecordBatch layout).

Byte layout of a batch header (all big-endian)::

    base_offset int64 | batch_length int32 | partition_leader_epoch int32 | magic int8
    | crc uint32 | attributes int16 | last_offset_delta int32 | base_timestamp int64
    | max_timestamp int64 | producer_id int64 | producer_epoch int16 | base_sequence int32
    | records_count int32 | records...

The CRC-32C covers everything from ``attributes`` to the end of the batch, so the
broker may patch ``base_offset`` and ``partition_leader_epoch`` without recomputing it.
``batch_length`` counts the bytes after itself, so a batch occupies
``LOG_OVERHEAD + batch_length`` bytes.

Attributes: bits 0-2 compression codec, bit 3 timestamp type (1 = log append time),
bit 4 transactional, bit 5 control batch, bit 6 "base_timestamp is the delete horizon"
(KIP-534). The records (``klog.native`` encodes and decodes them) follow the header,
compressed as one block when the codec is not NONE.

Control batches carry one record whose key is ``version int16 | type int16``
(``ControlRecordType``); transaction markers (ABORT/COMMIT) have the value
``version int16 | coordinator_epoch int32``.

Legacy message sets (magic 0 and 1) put their magic byte at the same position, so they
are recognised and refused with ``UnsupportedMessageFormatError``, as Kafka 4 does.
Every other malformed input raises ``CorruptRecordError`` (its base class), never
anything else. Pure functions over bytes, no I/O or clocks: safe to share between tasks.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

from crc32c import crc32c

from klog import native
from klog.wire.compression import (
    DEFAULT_MAX_OUTPUT_SIZE,
    Compression,
    DecompressionError,
    compress,
    decompress,
)
from klog.wire.errors import ErrorCode, KafkaError
from klog.wire.exceptions import DecodeError

BASE_OFFSET_POS = 0
LENGTH_POS = 8
PARTITION_LEADER_EPOCH_POS = 12
MAGIC_POS = 16
CRC_POS = 17
ATTRIBUTES_POS = 21
LAST_OFFSET_DELTA_POS = 23
BASE_TIMESTAMP_POS = 27
MAX_TIMESTAMP_POS = 35
PRODUCER_ID_POS = 43
PRODUCER_EPOCH_POS = 51
BASE_SEQUENCE_POS = 53
RECORDS_COUNT_POS = 57
BATCH_HEADER_SIZE = 61
# base_offset + batch_length precede the part that batch_length counts.
LOG_OVERHEAD = 12
# The smallest legal batch_length: the header after the length field, no records.
MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD
CURRENT_MAGIC = 2

LEGACY_MAGICS = (0, 1)

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40

# Kafka's "absent" markers for the producer fields, leader epoch and timestamps.
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
NO_TIMESTAMP = -1

_HEADER = struct.Struct(">qiibIhiqqqhii")
_CRC = struct.Struct(">I")
_INT32_MAX = (1 << 31) - 1
_CONTROL_KEY = struct.Struct(">hh")
_END_TXN_VALUE = struct.Struct(">hi")
_CONTROL_KEY_VERSION = 0
_END_TXN_MARKER_VERSION = 0


class CorruptRecordError(KafkaError, DecodeError):
    """Record-batch bytes are malformed: bad length, magic, CRC, compression or records.

    The base of every error this module raises for bad input. It is the wire layer's
    ``DecodeError`` (bytes from a peer or a file are bad) and a ``KafkaError`` carrying
    CORRUPT_MESSAGE, so a produce handler can answer with the code for that partition
    instead of treating it like an undecodable frame.
    """

    default_code = ErrorCode.CORRUPT_MESSAGE

    def __init__(self, detail: str) -> None:
        super().__init__(self.default_code, detail)


class UnsupportedMessageFormatError(CorruptRecordError):
    """A legacy message set (magic 0 or 1), which Kafka 4 and klog no longer accept."""

    default_code = ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT


class TimestampType(IntEnum):
    """Attributes bit 3: who set the timestamps, the producer or the broker's log."""

    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


@dataclass(slots=True)
class BatchHeader:
    """The 61-byte header of a v2 batch, field for field."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def compression(self) -> Compression:
        return Compression(self.attributes & COMPRESSION_MASK)

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType(bool(self.attributes & TIMESTAMP_TYPE_MASK))

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_MASK)

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies, header included."""
        return LOG_OVERHEAD + self.batch_length


def _check_magic(view: memoryview, pos: int) -> None:
    magic = view[pos + MAGIC_POS]
    if magic in LEGACY_MAGICS:
        raise UnsupportedMessageFormatError(
            f"message format v{magic} at position {pos}: only record batches v2 are supported"
        )
    # The byte is read unsigned; Kafka's magic is an int8.
    if magic != CURRENT_MAGIC:
        raise CorruptRecordError(
            f"bad magic {magic - 256 if magic > 127 else magic} "
            f"at position {pos}: expected {CURRENT_MAGIC}"
        )


def parse_batch_header(buf: Any, pos: int = 0) -> BatchHeader:
    """Parse the batch header at ``buf[pos:]`` without looking at the records.

    Checks only what the header itself can show: enough bytes for it, the magic, a
    batch length of at least ``MIN_BATCH_LENGTH``, a known codec and a non-negative
    record count. The CRC and the records are not checked (see ``decode_records``).
    """
    if pos < 0:
        raise ValueError(f"negative position {pos}")
    view = _bytes_view(buf)
    avail = len(view) - pos
    if avail <= MAGIC_POS:
        raise CorruptRecordError(f"truncated batch header at position {pos}: {max(avail, 0)} bytes")
    _check_magic(view, pos)
    if avail < BATCH_HEADER_SIZE:
        raise CorruptRecordError(
            f"truncated batch header at position {pos}: {avail} of {BATCH_HEADER_SIZE} bytes"
        )
    header = BatchHeader(*_HEADER.unpack_from(view, pos))
    if header.batch_length < MIN_BATCH_LENGTH:
        raise CorruptRecordError(
            f"bad batch length {header.batch_length} at position {pos}: "
            f"must be at least {MIN_BATCH_LENGTH}"
        )
    codec = header.attributes & COMPRESSION_MASK
    if codec > Compression.ZSTD:
        raise CorruptRecordError(f"unknown compression codec id {codec} at position {pos}")
    if header.records_count < 0:
        raise CorruptRecordError(f"negative record count {header.records_count} at position {pos}")
    return header


def _bytes_view(buf: Any) -> memoryview:
    view = memoryview(buf)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def iter_batches(
    buf: Any, *, allow_partial: bool = False, max_batch_bytes: int | None = None
) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Yield ``(header, whole batch)`` for each batch in ``buf``, checking each CRC.

    Valid batches before a bad one are yielded before the error is raised.
    ``allow_partial`` ignores an incomplete last batch, as a consumer must: a fetch
    response may end part-way through a batch. ``max_batch_bytes`` bounds batch_length.
    """
    view = _bytes_view(buf)
    batches, valid_end, error = native.scan_batches(view, 0, None, max_batch_bytes)
    for _base, _delta, _max_ts, pos, size in batches:
        yield parse_batch_header(view, pos), view[pos : pos + size]
    if error is None:
        return
    code, message = error
    if len(view) - valid_end > MAGIC_POS:
        _check_magic(view, valid_end)
    if code == native.SCAN_TRUNCATED and allow_partial:
        return
    raise CorruptRecordError(message)


def check_batch(batch: Any) -> BatchHeader:
    """Parse the header of the single batch ``batch`` and verify its size and CRC-32C."""
    view = _bytes_view(batch)
    header = parse_batch_header(view)
    if len(view) != header.size:
        raise CorruptRecordError(
            f"batch at offset {header.base_offset} declares {header.size} bytes "
            f"but the buffer holds {len(view)}"
        )
    computed = crc32c(view[ATTRIBUTES_POS:])
    if computed != header.crc:
        raise CorruptRecordError(
            f"CRC-32C mismatch in batch at offset {header.base_offset}: "
            f"stored 0x{header.crc:08x}, computed 0x{computed:08x}"
        )
    return header


class Record(NamedTuple):
    """One record with its absolute offset and timestamp."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]


def decode_record_tuples(
    batch: Any, *, max_decompressed_bytes: int = DEFAULT_MAX_OUTPUT_SIZE
) -> list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]]:
    """Verify one whole batch (size, CRC) and return its records, decompressed, as plain
    ``(offset, timestamp, key, value, headers)`` tuples — the hot-path form (a consumer
    builds its own record objects; no intermediate ``Record`` per record).

    In a log-append-time batch every record's timestamp is the batch's max_timestamp,
    as Kafka defines it. ``max_decompressed_bytes`` guards against decompression bombs.
    """
    header = check_batch(batch)
    payload: Any = _bytes_view(batch)[BATCH_HEADER_SIZE:]
    codec = header.compression
    if codec is not Compression.NONE:
        try:
            payload = decompress(codec, payload, max_output_size=max_decompressed_bytes)
        except DecompressionError as exc:
            raise CorruptRecordError(f"batch at offset {header.base_offset}: {exc}") from exc
    try:
        raw = native.decode_records(
            payload, header.records_count, header.base_offset, header.base_timestamp
        )
    except ValueError as exc:
        raise CorruptRecordError(f"batch at offset {header.base_offset}: {exc}") from exc
    if header.timestamp_type is TimestampType.LOG_APPEND_TIME:
        ts = header.max_timestamp
        return [(offset, ts, key, value, hdrs) for offset, _, key, value, hdrs in raw]
    return raw


def decode_records(
    batch: Any, *, max_decompressed_bytes: int = DEFAULT_MAX_OUTPUT_SIZE
) -> list[Record]:
    """``decode_record_tuples`` as ``Record`` named tuples."""
    return list(
        map(
            Record._make,
            decode_record_tuples(batch, max_decompressed_bytes=max_decompressed_bytes),
        )
    )


RecordInput = Record | tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]], int]


def build_batch(
    records: Iterable[RecordInput],
    *,
    base_offset: int = 0,
    compression: Compression | int = Compression.NONE,
    timestamp_type: TimestampType | int = TimestampType.CREATE_TIME,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    base_timestamp: int | None = None,
    compression_level: int | None = None,
    last_offset_delta: int | None = None,
    delete_horizon_ms: int | None = None,
) -> bytes:
    """Build one v2 batch with its CRC-32C.

    ``records`` are ``Record`` objects (their offsets are kept: offset delta =
    ``record.offset - base_offset``) or ``(key, value, headers, timestamp)`` tuples
    (offset deltas 0, 1, 2, ...). Offsets must increase strictly. The base timestamp
    is the first record's unless given; max_timestamp is the largest record timestamp.
    An empty batch (as compaction leaves behind) has ``NO_TIMESTAMP`` timestamps.

    For the log cleaner, as Kafka's: ``last_offset_delta`` keeps the original batch's
    last offset when its last records were removed (it must be at least the last
    record's delta), and ``delete_horizon_ms`` stores the delete horizon in
    ``base_timestamp`` and sets the ``has_delete_horizon`` attribute (KIP-534).
    Bad arguments raise ``ValueError`` or ``TypeError``: they are the caller's bug.
    """
    records = records if isinstance(records, list) else list(records)
    if delete_horizon_ms is not None:
        if base_timestamp is not None and base_timestamp != delete_horizon_ms:
            raise ValueError("a delete horizon is the base timestamp: give one of them")
        base_timestamp = delete_horizon_ms
    # Everything _finish_batch needs besides the records themselves.
    options: dict[str, Any] = {
        "has_delete_horizon": delete_horizon_ms is not None,
        "base_offset": base_offset,
        "compression": compression,
        "timestamp_type": timestamp_type,
        "producer_id": producer_id,
        "producer_epoch": producer_epoch,
        "base_sequence": base_sequence,
        "is_transactional": is_transactional,
        "is_control": is_control,
        "partition_leader_epoch": partition_leader_epoch,
        "compression_level": compression_level,
    }
    if records and not isinstance(records[0], Record):
        try:
            return _build_from_tuples(
                records,
                base_timestamp=base_timestamp,
                last_offset_delta=last_offset_delta,
                **options,
            )
        except _NotAllTuples:
            pass  # a Record further down: the general path below keeps its offsets
    entries = []
    for index, rec in enumerate(records):
        if isinstance(rec, Record):
            entries.append(
                (rec.offset - base_offset, rec.timestamp, rec.key, rec.value, rec.headers)
            )
        else:
            key, value, headers, timestamp = rec
            entries.append((index, timestamp, key, value, headers))
    if base_timestamp is None:
        base_timestamp = entries[0][1] if entries else NO_TIMESTAMP
    encoded = []
    previous_delta = -1
    max_timestamp = NO_TIMESTAMP if not entries else entries[0][1]
    for offset_delta, timestamp, key, value, headers in entries:
        if not previous_delta < offset_delta <= _INT32_MAX:
            raise ValueError(
                f"record offset delta {offset_delta} must be above {previous_delta} "
                f"and fit in int32"
            )
        previous_delta = offset_delta
        if not isinstance(timestamp, int):
            raise TypeError(f"record timestamp must be int, not {type(timestamp).__name__}")
        max_timestamp = max(max_timestamp, timestamp)
        encoded.append(
            (
                offset_delta,
                timestamp - base_timestamp,
                key,
                value,
                () if headers is None else headers,
            )
        )
    return _finish_batch(
        native.encode_records(encoded),
        len(entries),
        _last_offset_delta(previous_delta, last_offset_delta),
        base_timestamp,
        max_timestamp,
        **options,
    )


class _NotAllTuples(Exception):
    """A ``Record`` among tuple inputs: build_batch falls back to its general path."""


def _last_offset_delta(largest: int, override: int | None) -> int:
    """The batch's last offset delta: the last record's, or ``override`` if given."""
    if override is None:
        return max(largest, 0)
    if not max(largest, 0) <= override <= _INT32_MAX:
        raise ValueError(
            f"last offset delta {override} must be at least the last record's delta "
            f"{max(largest, 0)} and fit in int32"
        )
    return override


def _build_from_tuples(
    records: list[Any],
    *,
    base_timestamp: int | None,
    last_offset_delta: int | None,
    **options: Any,
) -> bytes:
    """build_batch for ``(key, value, headers, timestamp)`` tuples: one pass, the
    client producer's hot path. Offset deltas are 0..n-1 by construction."""
    if base_timestamp is None:
        base_timestamp = records[0][3]
    try:
        encoded = [
            (index, timestamp - base_timestamp, key, value, () if headers is None else headers)
            for index, (key, value, headers, timestamp) in enumerate(records)
        ]
    except ValueError as exc:  # a 5-field Record does not unpack into 4 names
        raise _NotAllTuples from exc
    max_timestamp = base_timestamp + max(entry[1] for entry in encoded)
    return _finish_batch(
        native.encode_records(encoded),
        len(encoded),
        _last_offset_delta(len(encoded) - 1, last_offset_delta),
        base_timestamp,
        max_timestamp,
        **options,
    )


def _finish_batch(
    body: bytes,
    count: int,
    last_offset_delta: int,
    base_timestamp: int,
    max_timestamp: int,
    *,
    has_delete_horizon: bool,
    base_offset: int,
    compression: Compression | int,
    timestamp_type: TimestampType | int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    is_transactional: bool,
    is_control: bool,
    partition_leader_epoch: int,
    compression_level: int | None,
) -> bytes:
    """Compress the encoded records and prepend the batch header with its CRC-32C."""
    codec = Compression(compression)
    if codec is not Compression.NONE:
        body = compress(codec, body, level=compression_level)
    attributes = (
        codec
        | TimestampType(timestamp_type) << 3
        | (TRANSACTIONAL_MASK if is_transactional else 0)
        | (CONTROL_MASK if is_control else 0)
        | (DELETE_HORIZON_MASK if has_delete_horizon else 0)
    )
    batch_length = MIN_BATCH_LENGTH + len(body)
    if batch_length > _INT32_MAX:
        raise ValueError(f"batch of {LOG_OVERHEAD + batch_length} bytes is too large")
    out = bytearray(LOG_OVERHEAD + batch_length)
    try:
        _HEADER.pack_into(
            out,
            0,
            base_offset,
            batch_length,
            partition_leader_epoch,
            CURRENT_MAGIC,
            0,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        )
    except struct.error as exc:
        raise ValueError(f"batch header field out of range: {exc}") from None
    out[BATCH_HEADER_SIZE:] = body
    _CRC.pack_into(out, CRC_POS, crc32c(memoryview(out)[ATTRIBUTES_POS:]))
    return bytes(out)


class ControlRecordType(IntEnum):
    """The ``type`` in a control record's key."""

    ABORT = 0
    COMMIT = 1
    LEADER_CHANGE = 2
    SNAPSHOT_HEADER = 3
    SNAPSHOT_FOOTER = 4
    KRAFT_VERSION = 5
    KRAFT_VOTERS = 6


def control_record_key(record_type: ControlRecordType | int) -> bytes:
    """The key of a control record of ``record_type``."""
    return _CONTROL_KEY.pack(_CONTROL_KEY_VERSION, ControlRecordType(record_type))


def parse_control_record_type(key: bytes | None) -> ControlRecordType:
    """Read the type from a control record's key (later key versions only append)."""
    if key is None or len(key) < _CONTROL_KEY.size:
        raise CorruptRecordError(
            f"control record key must be at least {_CONTROL_KEY.size} bytes, got "
            f"{'null' if key is None else len(key)}"
        )
    version, record_type = _CONTROL_KEY.unpack_from(key)
    if version < 0:
        raise CorruptRecordError(f"negative control record key version {version}")
    try:
        return ControlRecordType(record_type)
    except ValueError:
        raise CorruptRecordError(f"unknown control record type {record_type}") from None


@dataclass(frozen=True, slots=True)
class EndTransactionMarker:
    """A transaction marker: the single record of a control batch ending a transaction."""

    type: ControlRecordType
    coordinator_epoch: int

    def __post_init__(self) -> None:
        if self.type not in (ControlRecordType.ABORT, ControlRecordType.COMMIT):
            raise ValueError(f"a transaction marker is ABORT or COMMIT, not {self.type!r}")

    def key(self) -> bytes:
        return control_record_key(self.type)

    def value(self) -> bytes:
        return _END_TXN_VALUE.pack(_END_TXN_MARKER_VERSION, self.coordinator_epoch)

    @classmethod
    def from_record(cls, record: Record) -> EndTransactionMarker:
        """Parse the marker in ``record``, a record of a control batch."""
        record_type = parse_control_record_type(record.key)
        if record_type not in (ControlRecordType.ABORT, ControlRecordType.COMMIT):
            raise CorruptRecordError(
                f"control record {record_type.name} is not a transaction marker"
            )
        value = record.value
        if value is None or len(value) < _END_TXN_VALUE.size:
            raise CorruptRecordError(
                f"transaction marker value must be at least {_END_TXN_VALUE.size} bytes, got "
                f"{'null' if value is None else len(value)}"
            )
        version, coordinator_epoch = _END_TXN_VALUE.unpack_from(value)
        if version < 0:
            raise CorruptRecordError(f"negative transaction marker version {version}")
        return cls(record_type, coordinator_epoch)


def build_end_transaction_batch(
    marker: EndTransactionMarker,
    *,
    producer_id: int,
    producer_epoch: int,
    timestamp: int,
    base_offset: int = 0,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
) -> bytes:
    """The transactional control batch holding ``marker``, as WriteTxnMarkers appends it."""
    return build_batch(
        [(marker.key(), marker.value(), (), timestamp)],
        base_offset=base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        is_transactional=True,
        is_control=True,
        partition_leader_epoch=partition_leader_epoch,
    )
