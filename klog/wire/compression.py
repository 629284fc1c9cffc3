"""Record-batch compression codecs, as Kafka frames them (attributes bits 0-2).

- gzip: an RFC 1952 gzip stream (stdlib zlib; several members are accepted on decode).
- snappy: raw snappy blocks or xerial framing. The Java client writes xerial framing:
  ``\\x82SNAPPY\\x00`` + int32 version + int32 compat, then ``[int32 length, raw block]*``;
  librdkafka writes raw snappy. Decoding detects either; encoding writes xerial with
  32 KiB blocks, which every client reads.
- lz4: the LZ4 frame format with independent 64 KiB blocks (what Kafka's Java
  Lz4BlockOutputStream writes; magic v0 batches used a broken header checksum, but v0
  is rejected before getting here).
- zstd: a zstd frame (several frames are accepted on decode).

Decompression is bounded: ``max_output_size`` caps the decompressed size, and codecs
that declare their output size up front (raw snappy) are refused before allocating.
Every failure to decompress raises ``DecompressionError``. Pure functions over bytes:
safe to share between tasks and threads.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum

import cramjam
import lz4.frame
import zstandard

# 128 MiB: well above any batch Kafka's defaults allow (message.max.bytes ~1 MiB,
# fetch.max.bytes 50 MiB) even at high compression ratios, small enough to stop a bomb.
DEFAULT_MAX_OUTPUT_SIZE = 128 * 1024 * 1024

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(">8sii")
_XERIAL_VERSION = 1
_XERIAL_MIN_COMPAT = 1
_XERIAL_BLOCK_SIZE = 32 * 1024
_INT32 = struct.Struct(">i")

_GZIP_WBITS = 31  # zlib's spelling of "gzip header and trailer"
_ZSTD_DEFAULT_LEVEL = 3  # Kafka's compression.zstd.level default
_GZIP_DEFAULT_LEVEL = 6  # Kafka's compression.gzip.level default (Deflater's default)
_ZSTD_MAX_RATIO = 32 * 1024  # a 4-byte RLE block decodes to at most 128 KiB
_ZSTD_MIN_STEP = 64


class Compression(IntEnum):
    """Codec ids as stored in the low 3 bits of a batch's attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class DecompressionError(ValueError):
    """Compressed data is malformed, truncated, or decompresses past the size limit."""


def compress(codec: Compression | int, data: bytes, *, level: int | None = None) -> bytes:
    """Compress ``data`` with ``codec``; ``level`` is the codec's level (None: Kafka's default)."""
    codec = Compression(codec)
    if codec is Compression.NONE:
        return bytes(data)
    if codec is Compression.GZIP:
        gz = zlib.compressobj(
            _GZIP_DEFAULT_LEVEL if level is None else level, zlib.DEFLATED, _GZIP_WBITS
        )
        return gz.compress(data) + gz.flush()
    if codec is Compression.SNAPPY:
        return _xerial_compress(data)
    if codec is Compression.LZ4:
        return lz4.frame.compress(
            data,
            compression_level=0 if level is None else level,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
        )
    zstd = zstandard.ZstdCompressor(level=_ZSTD_DEFAULT_LEVEL if level is None else level)
    return zstd.compress(data)


def decompress(
    codec: Compression | int, data: bytes, *, max_output_size: int = DEFAULT_MAX_OUTPUT_SIZE
) -> bytes:
    """Decompress ``data``; raises ``DecompressionError`` if it is malformed or would
    decompress to more than ``max_output_size`` bytes."""
    try:
        codec = Compression(codec)
    except ValueError:
        raise DecompressionError(f"unknown compression codec id {codec}") from None
    if codec is Compression.NONE:
        if len(data) > max_output_size:
            raise _too_large(max_output_size)
        return bytes(data)
    try:
        if codec is Compression.GZIP:
            return _gunzip(data, max_output_size)
        if codec is Compression.SNAPPY:
            return _snappy_decompress(data, max_output_size)
        if codec is Compression.LZ4:
            return _lz4_decompress(data, max_output_size)
        return _zstd_decompress(data, max_output_size)
    except DecompressionError:
        raise
    # The codec libraries report corrupt input with their own exception types
    # (zlib.error, cramjam.DecompressionError, RuntimeError, ZstdError).
    except (zlib.error, cramjam.DecompressionError, RuntimeError, zstandard.ZstdError) as exc:
        raise DecompressionError(f"corrupt {codec.name.lower()} data: {exc}") from exc


def _too_large(limit: int) -> DecompressionError:
    return DecompressionError(f"decompressed data exceeds the limit of {limit} bytes")


def _gunzip(data: bytes, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    rest = data
    while True:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        # Asking for one byte more than allowed tells "exactly at the limit" from "over it".
        chunk = inflater.decompress(rest, limit - total + 1)
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        if not inflater.eof:
            raise DecompressionError("corrupt gzip data: truncated stream")
        parts.append(chunk)
        rest = inflater.unused_data
        if not rest:
            return b"".join(parts)


def _xerial_compress(data: bytes) -> bytes:
    view = memoryview(data)
    out = [_XERIAL_HEADER.pack(XERIAL_MAGIC, _XERIAL_VERSION, _XERIAL_MIN_COMPAT)]
    for start in range(0, len(view), _XERIAL_BLOCK_SIZE):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK_SIZE]))
        out.append(_INT32.pack(len(block)))
        out.append(block)
    return b"".join(out)


def _snappy_decompress(data: bytes, limit: int) -> bytes:
    view = memoryview(data)
    # Version and compat are not checked: some producers write them little-endian, and
    # there has only ever been one xerial block layout.
    if len(view) >= _XERIAL_HEADER.size and view[:8] == XERIAL_MAGIC:
        blocks = []
        pos = _XERIAL_HEADER.size
        while pos < len(view):
            if pos + 4 > len(view):
                raise DecompressionError("corrupt snappy data: truncated xerial block length")
            (size,) = _INT32.unpack_from(view, pos)
            pos += 4
            if size < 0 or pos + size > len(view):
                raise DecompressionError(
                    f"corrupt snappy data: xerial block of {size} bytes at {pos - 4} "
                    f"overruns the {len(view)}-byte stream"
                )
            blocks.append(view[pos : pos + size])
            pos += size
    else:
        blocks = [view]
    sizes = [cramjam.snappy.decompress_raw_len(block) for block in blocks]
    total = sum(sizes)
    if total > limit:
        raise _too_large(limit)
    out = bytearray(total)
    out_view = memoryview(out)
    pos = 0
    for block, size in zip(blocks, sizes, strict=True):
        written = cramjam.snappy.decompress_raw_into(block, out_view[pos : pos + size])
        if written != size:
            raise DecompressionError("corrupt snappy data: block shorter than its declared size")
        pos += size
    return bytes(out)


def _lz4_decompress(data: bytes, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    rest: bytes | memoryview = data
    while True:
        inflater = lz4.frame.LZ4FrameDecompressor()
        chunk = inflater.decompress(rest, max_length=limit - total + 1)
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        if not inflater.eof:
            raise DecompressionError("corrupt lz4 data: truncated frame")
        parts.append(chunk)
        rest = inflater.unused_data
        if not rest:
            return b"".join(parts)


def _zstd_decompress(data: bytes, limit: int) -> bytes:
    # zstandard's one-shot and stream APIs either trust the frame's declared size or
    # cannot tell a truncated frame from a finished one, so feed a decompressobj in
    # steps small enough that one step cannot overshoot the remaining budget by more
    # than itself (a 4-byte RLE block can expand to 128 KiB).
    view = memoryview(data)
    parts: list[bytes] = []
    total = 0
    pos = 0
    while True:
        inflater = zstandard.ZstdDecompressor().decompressobj()
        while not inflater.eof:
            if pos >= len(view):
                raise DecompressionError("corrupt zstd data: truncated frame")
            step = max(_ZSTD_MIN_STEP, (limit + 1 - total) // _ZSTD_MAX_RATIO)
            end = min(pos + step, len(view))
            chunk = inflater.decompress(view[pos:end])
            pos = end
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            parts.append(chunk)
        pos -= len(inflater.unused_data)
        if pos >= len(view):
            return b"".join(parts)
