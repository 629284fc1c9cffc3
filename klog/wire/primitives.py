"""Kafka protocol primitive types (all big-endian).

Fixed width: int8/16/32/64, uint16, uint32, float64, bool (one byte, non-zero is true),
uuid (16 bytes). Variable length: unsigned varint (LEB128, at most 5 bytes, fits uint32),
varint / varlong (zig-zag, at most 5 / 10 bytes), strings (int16 length, -1 = null) and
compact strings (unsigned varint length + 1, 0 = null), bytes (int32 length) and compact
bytes, arrays (int32 count) and compact arrays, and tagged-field sections (count, then per
field: tag, size, data; all unsigned varints).

Decoders take ``(buf, pos)`` and return ``(value, new_pos)``; they never read past
``len(buf)`` and raise only ``DecodeError``. The message codecs (``klog.wire._codegen``)
inline the hot paths of these and call them for the rest. Stateless; shareable.
"""

from __future__ import annotations

import struct
import uuid

from klog.wire.exceptions import DecodeError, EncodeError

INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
UINT16 = struct.Struct(">H")
UINT32 = struct.Struct(">I")
FLOAT64 = struct.Struct(">d")
ZERO_UUID = uuid.UUID(int=0)

_UINT32_MAX = 0xFFFFFFFF
# One-byte encodings of 0..127, the common case for lengths and counts.
SMALL_UVARINTS = tuple(bytes((n,)) for n in range(128))


def encode_unsigned_varint(value: int) -> bytes:
    if 0 <= value < 128:
        return SMALL_UVARINTS[value]
    if value < 0 or value > _UINT32_MAX:
        raise EncodeError(f"unsigned varint out of range: {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _decode_leb128(buf, pos: int, max_bytes: int, what: str) -> tuple[int, int]:
    result = 0
    shift = 0
    start = pos
    end = min(len(buf), pos + max_bytes)
    while pos < end:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
    if pos - start == max_bytes:
        raise DecodeError(f"{what} longer than {max_bytes} bytes at offset {start}")
    raise DecodeError(f"truncated {what} at offset {start}")


def decode_unsigned_varint(buf, pos: int) -> tuple[int, int]:
    value, end = _decode_leb128(buf, pos, 5, "unsigned varint")
    if value > _UINT32_MAX:
        raise DecodeError(f"unsigned varint out of range at offset {pos}")
    return value, end


def encode_varint(value: int) -> bytes:
    if not -(1 << 31) <= value < (1 << 31):
        raise EncodeError(f"varint out of range: {value}")
    return encode_unsigned_varint((value << 1) ^ (value >> 31))


def decode_varint(buf, pos: int) -> tuple[int, int]:
    raw, end = decode_unsigned_varint(buf, pos)
    return (raw >> 1) ^ -(raw & 1), end


def encode_varlong(value: int) -> bytes:
    if not -(1 << 63) <= value < (1 << 63):
        raise EncodeError(f"varlong out of range: {value}")
    raw = (value << 1) ^ (value >> 63)
    out = bytearray()
    while raw > 0x7F:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


def decode_varlong(buf, pos: int) -> tuple[int, int]:
    raw, end = _decode_leb128(buf, pos, 10, "varlong")
    if raw >> 64:
        raise DecodeError(f"varlong out of range at offset {pos}")
    return (raw >> 1) ^ -(raw & 1), end


def _length_prefix(length: int, compact: bool, fmt: struct.Struct) -> bytes:
    return encode_unsigned_varint(length + 1) if compact else fmt.pack(length)


def _read_length(buf, pos: int, compact: bool, fmt: struct.Struct) -> tuple[int, int]:
    if compact:
        n, pos = decode_unsigned_varint(buf, pos)
        return n - 1, pos
    if pos + fmt.size > len(buf):
        raise DecodeError(f"truncated length at offset {pos}")
    return fmt.unpack_from(buf, pos)[0], pos + fmt.size


def encode_string(value: str | None, compact: bool = False) -> bytes:
    if value is None:
        return b"\x00" if compact else b"\xff\xff"
    data = value.encode()
    if len(data) > 0x7FFF:
        raise EncodeError(f"string of {len(data)} bytes is longer than 32767")
    return _length_prefix(len(data), compact, INT16) + data


def decode_string(buf, pos: int, compact: bool = False, nullable: bool = False):
    """Returns ``(str | None, new_pos)``."""
    data, end = _decode_sized(buf, pos, compact, nullable, INT16, "string")
    if data is None:
        return None, end
    if len(data) > 0x7FFF:
        raise DecodeError(f"string at offset {pos} is longer than 32767 bytes")
    try:
        return str(data, "utf-8"), end
    except UnicodeDecodeError as exc:
        raise DecodeError(f"string at offset {pos} is not UTF-8: {exc.reason}") from None


def encode_bytes(value: bytes | None, compact: bool = False) -> bytes:
    if value is None:
        return b"\x00" if compact else b"\xff\xff\xff\xff"
    return _length_prefix(len(value), compact, INT32) + bytes(value)


def decode_bytes(buf, pos: int, compact: bool = False, nullable: bool = False):
    """Returns ``(bytes | None, new_pos)``."""
    data, end = _decode_sized(buf, pos, compact, nullable, INT32, "bytes")
    return (None if data is None else bytes(data)), end


def _decode_sized(buf, pos: int, compact: bool, nullable: bool, fmt: struct.Struct, what: str):
    n, start = _read_length(buf, pos, compact, fmt)
    if n < 0:
        if n == -1 and nullable:
            return None, start
        raise DecodeError(f"{what} at offset {pos} has invalid length {n}")
    end = start + n
    if end > len(buf):
        raise DecodeError(f"{what} at offset {pos} runs past the end of the buffer")
    return buf[start:end], end


def decode_uuid(buf, pos: int) -> tuple[uuid.UUID, int]:
    end = pos + 16
    if end > len(buf):
        raise DecodeError(f"truncated uuid at offset {pos}")
    return uuid.UUID(bytes=bytes(buf[pos:end])), end


def skip_tagged_fields(buf, pos: int, count: int) -> int:
    """Skip ``count`` tagged fields starting at ``pos``; returns the position after them."""
    for _ in range(count):
        _tag, pos = decode_unsigned_varint(buf, pos)
        size, pos = decode_unsigned_varint(buf, pos)
        pos += size
        if pos > len(buf):
            raise DecodeError("tagged field runs past the end of the buffer")
    return pos
