"""Pure-Python twin of the C extension ``klog._native`` (source: ``native/_native.c``).

Formats handled:

* Kafka v2 record batches (``DefaultRecordBatch``): ``scan_batches`` walks a buffer of
  batches and checks their framing -- batch_length (int32 at +8), magic (int8 at +16) and
  the CRC-32C (uint32 at +17) over everything from ``attributes`` (+21) to the batch end.
* Kafka v2 records (``DefaultRecord``), the bytes after a batch's 61-byte header when it is
  uncompressed: ``length varint | attributes int8 | timestamp_delta varlong |
  offset_delta varint | key_length varint | key | value_length varint | value |
  header_count varint | (key_length varint | key utf-8 | value_length varint | value)*``.
  Varints are Kafka's zigzag varints: at most 5 bytes for int32, 10 for int64; like Kafka's
  ``ByteUtils`` the high bits of the last allowed byte are dropped, and a negative key or
  value length (not only -1) decodes as null.
* ``sendfile_slice`` moves a file region to a non-blocking socket with ``sendfile(2)``.

Invariants: this module and the C extension behave identically -- same results, same
exception types and the same messages for ``ValueError`` and ``TypeError`` -- on valid and
malformed input. Tests in ``tests/unit/native/`` run every case against both. Nothing here
reads outside the given range. Import it only through ``klog.native``, the one place that
chooses between the two. Stateless, so it may be shared freely between tasks and threads.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from crc32c import crc32c

IMPLEMENTATION = "python"

SCAN_TRUNCATED = 1
SCAN_BAD_LENGTH = 2
SCAN_BAD_MAGIC = 3
SCAN_BAD_CRC = 4

# Batch layout, repeated from klog.wire.records because native sits below wire.
_LOG_OVERHEAD = 12
_MIN_BATCH_LENGTH = 49
_MAGIC_POS = 16
_CRC_POS = 17
_ATTRIBUTES_POS = 21
_LAST_OFFSET_DELTA_POS = 23
_MAX_TIMESTAMP_POS = 35

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1

_HEAD = struct.Struct(">qi")
_MAGIC_CRC = struct.Struct(">bI")
_LAST_DELTA = struct.Struct(">i")
_MAX_TS = struct.Struct(">q")

Batch = tuple[int, int, int, int, int]
Record = tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]


def _check_int(value: object, name: str, low: int, high: int, kind: str) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{name} must be int")
    if not low <= value <= high:
        raise ValueError(f"{name} {value} out of {kind} range")
    return value


def _byte_view(buf: Any) -> memoryview:
    """Flat unsigned bytes of any C-contiguous buffer, as the C module's PyBUF_SIMPLE gives."""
    try:
        view = memoryview(buf)
    except TypeError:
        raise TypeError("buf must be a contiguous bytes-like object") from None
    with view:
        if not view.c_contiguous:
            raise TypeError("buf must be a contiguous bytes-like object")
        return view.cast("B")


def scan_batches(
    buf: Any, start: int = 0, end: int | None = None, max_batch_bytes: int | None = None
) -> tuple[list[Batch], int, tuple[int, str] | None]:
    """Walk v2 record batches in buf[start:end]; see ``klog.native`` for the contract."""
    with _byte_view(buf) as view:
        return _scan(view, start, end, max_batch_bytes)


def _scan(
    view: memoryview, start: int, end: int | None, max_batch_bytes: int | None
) -> tuple[list[Batch], int, tuple[int, str] | None]:
    size_total = view.nbytes
    start = _check_int(start, "start", _INT64_MIN, _INT64_MAX, "int64")
    if end is None:
        end = size_total
    end = _check_int(end, "end", _INT64_MIN, _INT64_MAX, "int64")
    if not 0 <= start <= end <= size_total:
        raise ValueError(f"bad range [{start}, {end}) for a buffer of {size_total} bytes")
    if max_batch_bytes is None:
        max_length = _INT32_MAX
    else:
        max_length = _check_int(
            max_batch_bytes, "max_batch_bytes", 0, _INT64_MAX, "non-negative int64"
        )
    batches: list[Batch] = []
    pos = start
    while pos < end:
        avail = end - pos
        if avail < _LOG_OVERHEAD:
            return (
                batches,
                pos,
                (
                    SCAN_TRUNCATED,
                    f"truncated batch header at position {pos}: {avail} of {_LOG_OVERHEAD} bytes",
                ),
            )
        base_offset, length = _HEAD.unpack_from(view, pos)
        if length < _MIN_BATCH_LENGTH or length > max_length:
            return (
                batches,
                pos,
                (
                    SCAN_BAD_LENGTH,
                    f"bad batch length {length} at position {pos}: "
                    f"must be {_MIN_BATCH_LENGTH}..{max_length}",
                ),
            )
        size = _LOG_OVERHEAD + length
        if avail < size:
            return (
                batches,
                pos,
                (
                    SCAN_TRUNCATED,
                    f"truncated batch at position {pos}: {avail} of {size} bytes",
                ),
            )
        magic, stored = _MAGIC_CRC.unpack_from(view, pos + _MAGIC_POS)
        if magic != 2:
            return (
                batches,
                pos,
                (
                    SCAN_BAD_MAGIC,
                    f"bad magic {magic} at position {pos}: expected 2",
                ),
            )
        computed = crc32c(view[pos + _ATTRIBUTES_POS : pos + size])
        if computed != stored:
            return (
                batches,
                pos,
                (
                    SCAN_BAD_CRC,
                    f"CRC-32C mismatch at position {pos}: "
                    f"stored 0x{stored:08x}, computed 0x{computed:08x}",
                ),
            )
        batches.append(
            (
                base_offset,
                _LAST_DELTA.unpack_from(view, pos + _LAST_OFFSET_DELTA_POS)[0],
                _MAX_TS.unpack_from(view, pos + _MAX_TIMESTAMP_POS)[0],
                pos,
                size,
            )
        )
        pos += size
    return batches, pos, None


def sendfile_slice(sock_fd: int, file_fd: int, offset: int, count: int) -> int:
    """Send up to count bytes of file_fd from offset to a non-blocking socket.

    Loops over partial writes until count bytes are sent or the socket would block;
    returns the bytes sent (0 if the socket was not writable). A file that ends inside
    the slice raises ``OSError(ENODATA)``: the caller promised those bytes to the peer.
    """
    _check_int(sock_fd, "sock_fd", 0, _INT32_MAX, "fd")
    _check_int(file_fd, "file_fd", 0, _INT32_MAX, "fd")
    _check_int(offset, "offset", 0, _INT64_MAX, "non-negative int64")
    _check_int(count, "count", 0, _INT64_MAX, "non-negative int64")
    if offset + count > _INT64_MAX:
        raise ValueError(f"slice end {offset + count} out of int64 range")
    sent = 0
    while sent < count:
        try:
            n = os.sendfile(sock_fd, file_fd, offset + sent, count - sent)
        except BlockingIOError:
            break
        if n == 0:
            raise OSError(
                errno.ENODATA,
                f"file ends at offset {offset + sent}, inside the slice "
                f"[{offset}, {offset + count})",
            )
        sent += n
    return sent


def _zigzag_varint(value: int, out: bytearray) -> None:
    # Callers have range-checked value, so the zigzag fits the unsigned width.
    u = (value << 1) ^ (value >> 63)
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)


def _blob(value: object, name: str) -> memoryview | None:
    if value is None:
        return None
    try:
        view = memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be bytes-like or None") from None
    if not view.c_contiguous:
        raise TypeError(f"{name} must be bytes-like or None")
    if view.nbytes > _INT32_MAX:
        raise ValueError(f"{name} of {view.nbytes} bytes is too long")
    return view


def _put_blob(view: memoryview | None, out: bytearray) -> None:
    if view is None:
        out.append(1)  # zigzag(-1)
    else:
        _zigzag_varint(view.nbytes, out)
        out += view


def encode_records(records: Iterable[Sequence[Any]]) -> bytes:
    """Encode (offset_delta, timestamp_delta, key, value, headers) tuples as v2 records."""
    out = bytearray()
    body = bytearray()
    try:
        items = iter(records)
    except TypeError:
        raise TypeError("records must be iterable") from None
    for i, rec in enumerate(items):
        where = f"record {i}"
        if not isinstance(rec, tuple | list) or len(rec) != 5:
            raise TypeError(
                f"{where}: expected an (offset_delta, timestamp_delta, key, value, headers) tuple"
            )
        offset_delta, timestamp_delta, key, value, headers = rec
        _check_int(offset_delta, f"{where}: offset_delta", _INT32_MIN, _INT32_MAX, "int32")
        _check_int(timestamp_delta, f"{where}: timestamp_delta", _INT64_MIN, _INT64_MAX, "int64")
        key_view = _blob(key, f"{where}: key")
        value_view = _blob(value, f"{where}: value")
        if not isinstance(headers, tuple | list):
            raise TypeError(f"{where}: headers must be a list or tuple")
        body.clear()
        body.append(0)  # attributes: unused in v2 records
        _zigzag_varint(timestamp_delta, body)
        _zigzag_varint(offset_delta, body)
        _put_blob(key_view, body)
        _put_blob(value_view, body)
        _zigzag_varint(len(headers), body)
        for j, header in enumerate(headers):
            hwhere = f"{where} header {j}"
            if not isinstance(header, tuple | list) or len(header) != 2:
                raise TypeError(f"{hwhere}: expected a (key, value) tuple")
            hkey, hvalue = header
            if not isinstance(hkey, str):
                raise TypeError(f"{hwhere}: key must be str")
            try:
                hkey_bytes = hkey.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"{hwhere}: key is not valid UTF-8") from None
            _put_blob(_blob(hkey_bytes, f"{hwhere}: key"), body)
            _put_blob(_blob(hvalue, f"{hwhere}: value"), body)
        if len(body) > _INT32_MAX:
            raise ValueError(f"{where}: encoded record of {len(body)} bytes is too long")
        _zigzag_varint(len(body), out)
        out += body
    return bytes(out)


class _Reader:
    """Bounded cursor over one record; every error names the record and its start."""

    __slots__ = ("buf", "limit", "pos", "where")

    def __init__(self, buf: memoryview, pos: int, limit: int, where: str) -> None:
        self.buf = buf
        self.pos = pos
        self.limit = limit
        self.where = where

    def varint(self, field: str, max_bytes: int, bits: int) -> int:
        buf, pos, limit = self.buf, self.pos, self.limit
        value = 0
        shift = 0
        for _ in range(max_bytes):
            if pos >= limit:
                raise ValueError(f"{self.where}: {field} varint is truncated")
            b = buf[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                self.pos = pos
                value &= (1 << bits) - 1  # Kafka drops the bits past the type's width
                return (value >> 1) ^ -(value & 1)
            shift += 7
        raise ValueError(f"{self.where}: {field} varint is longer than {max_bytes} bytes")

    def blob(self, field: str) -> bytes | None:
        n = self.varint(f"{field} length", 5, 32)
        if n < 0:
            return None
        if n > self.limit - self.pos:
            raise ValueError(f"{self.where}: {field} of {n} bytes overruns the record")
        start = self.pos
        self.pos = start + n
        return bytes(self.buf[start : self.pos])


def decode_records(buf: Any, count: int, base_offset: int, base_timestamp: int) -> list[Record]:
    """Decode count v2 records; offsets and timestamps come back absolute."""
    with _byte_view(buf) as view:
        return _decode(view, count, base_offset, base_timestamp)


def _decode(view: memoryview, count: int, base_offset: int, base_timestamp: int) -> list[Record]:
    _check_int(count, "count", 0, _INT64_MAX, "non-negative int64")
    _check_int(base_offset, "base_offset", _INT64_MIN, _INT64_MAX, "int64")
    _check_int(base_timestamp, "base_timestamp", _INT64_MIN, _INT64_MAX, "int64")
    total = view.nbytes
    records: list[Record] = []
    pos = 0
    for i in range(count):
        if pos >= total:
            raise ValueError(f"buffer ends after {i} of {count} records")
        where = f"record {i} (byte {pos})"
        r = _Reader(view, pos, total, where)
        length = r.varint("length", 5, 32)
        if length < 0:
            raise ValueError(f"{where}: negative length {length}")
        if length > total - r.pos:
            raise ValueError(f"{where}: length {length} exceeds the {total - r.pos} bytes left")
        r.limit = r.pos + length
        if r.pos >= r.limit:
            raise ValueError(f"{where}: attributes is truncated")
        r.pos += 1  # attributes: unused in v2 records
        timestamp = base_timestamp + r.varint("timestamp delta", 10, 64)
        offset = base_offset + r.varint("offset delta", 5, 32)
        if not _INT64_MIN <= timestamp <= _INT64_MAX:
            raise ValueError(f"{where}: timestamp {timestamp} overflows int64")
        if not _INT64_MIN <= offset <= _INT64_MAX:
            raise ValueError(f"{where}: offset {offset} overflows int64")
        key = r.blob("key")
        value = r.blob("value")
        header_count = r.varint("header count", 5, 32)
        if header_count < 0:
            raise ValueError(f"{where}: negative header count {header_count}")
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(header_count):
            hkey_bytes = r.blob("header key")
            if hkey_bytes is None:
                raise ValueError(f"{where}: negative header key length")
            try:
                hkey = hkey_bytes.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{where}: header key is not valid UTF-8") from None
            headers.append((hkey, r.blob("header value")))
        if r.pos != r.limit:
            raise ValueError(f"{where}: {r.limit - r.pos} unread bytes at the end of the record")
        records.append((offset, timestamp, key, value, headers))
        pos = r.pos
    if pos != total:
        raise ValueError(f"{total - pos} trailing bytes after {count} records")
    return records
