"""Compression codecs: round trips, foreign framings, size guard, corrupt input."""

import gzip
import itertools
import struct
import zlib

import cramjam
import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from klog.wire.compression import (
    XERIAL_MAGIC,
    Compression,
    DecompressionError,
    compress,
    decompress,
)

CODECS = list(Compression)
COMPRESSED = [c for c in Compression if c is not Compression.NONE]

# Compressible but not trivial: repeated text with some variety.
PAYLOAD = b"".join(b"record %d value %s\n" % (i, b"x" * (i % 50)) for i in range(5000))


@settings(max_examples=40, deadline=None)
@given(codec=st.sampled_from(CODECS), data=st.binary(max_size=200_000))
def test_round_trip(codec: Compression, data: bytes) -> None:
    assert decompress(codec, compress(codec, data)) == data


@pytest.mark.parametrize("codec", COMPRESSED)
def test_compresses_and_accepts_levels(codec: Compression) -> None:
    default = compress(codec, PAYLOAD)
    assert len(default) < len(PAYLOAD) // 4
    level = {Compression.GZIP: 1, Compression.SNAPPY: None, Compression.LZ4: 9}.get(codec, 10)
    assert decompress(codec, compress(codec, PAYLOAD, level=level)) == PAYLOAD


def test_unknown_codec() -> None:
    with pytest.raises(ValueError):
        compress(5, b"x")
    with pytest.raises(DecompressionError, match="unknown compression codec id 7"):
        decompress(7, b"x")


def test_gzip_is_standard_gzip() -> None:
    ours = compress(Compression.GZIP, PAYLOAD)
    assert gzip.decompress(ours) == PAYLOAD
    # Several members, as a streaming writer may emit, decode as one stream.
    assert decompress(Compression.GZIP, gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"


def _xerial(blocks: list[bytes], header: bytes | None = None) -> bytes:
    out = header if header is not None else XERIAL_MAGIC + struct.pack(">ii", 1, 1)
    for block in blocks:
        raw = bytes(cramjam.snappy.compress_raw(block))
        out += struct.pack(">i", len(raw)) + raw
    return out


@settings(max_examples=30, deadline=None)
@given(
    data=st.binary(max_size=100_000),
    cuts=st.lists(st.integers(min_value=0, max_value=100_000), max_size=6),
)
def test_snappy_decodes_xerial_framing_with_any_block_split(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    blocks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert decompress(Compression.SNAPPY, _xerial(blocks)) == data


def test_snappy_xerial_header_fields_are_not_trusted() -> None:
    # Some producers write version/compat little-endian; the block layout is the same.
    header = XERIAL_MAGIC + struct.pack("<ii", 1, 1)
    assert decompress(Compression.SNAPPY, _xerial([b"abc", b"def"], header)) == b"abcdef"


def test_snappy_decodes_raw_snappy() -> None:
    raw = bytes(cramjam.snappy.compress_raw(PAYLOAD))
    assert not raw.startswith(XERIAL_MAGIC)
    assert decompress(Compression.SNAPPY, raw) == PAYLOAD


def test_snappy_writes_xerial_framing_in_32k_blocks() -> None:
    ours = compress(Compression.SNAPPY, PAYLOAD)
    assert ours[:8] == XERIAL_MAGIC
    assert struct.unpack_from(">ii", ours, 8) == (1, 1)
    pos, blocks = 16, []
    while pos < len(ours):
        (size,) = struct.unpack_from(">i", ours, pos)
        blocks.append(bytes(cramjam.snappy.decompress_raw(ours[pos + 4 : pos + 4 + size])))
        pos += 4 + size
    assert b"".join(blocks) == PAYLOAD
    assert all(len(b) == 32 * 1024 for b in blocks[:-1])


def test_lz4_writes_independent_64k_blocks_readable_by_lz4_frame() -> None:
    ours = compress(Compression.LZ4, PAYLOAD)
    info = lz4.frame.get_frame_info(ours)
    assert info["block_size_id"] == lz4.frame.BLOCKSIZE_MAX64KB
    assert info["block_linked"] is False
    assert lz4.frame.decompress(ours) == PAYLOAD


def test_zstd_reads_frames_without_content_size_and_several_frames() -> None:
    # A streaming writer (zstd-jni in the Java client) does not record the content size.
    writer = zstandard.ZstdCompressor(write_content_size=False)
    chunk = writer.compressobj()
    frame = chunk.compress(PAYLOAD) + chunk.flush()
    assert zstandard.get_frame_parameters(frame).content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert decompress(Compression.ZSTD, frame + frame) == PAYLOAD + PAYLOAD


@pytest.mark.parametrize("codec", CODECS)
def test_size_guard(codec: Compression) -> None:
    bomb = compress(codec, bytes(4 * 1024 * 1024))
    assert len(decompress(codec, bomb, max_output_size=4 * 1024 * 1024)) == 4 * 1024 * 1024
    with pytest.raises(DecompressionError, match="exceeds the limit of 1048576 bytes"):
        decompress(codec, bomb, max_output_size=1024 * 1024)


def test_size_guard_on_a_frame_without_declared_size() -> None:
    stream = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    bomb = stream.compress(bytes(64 * 1024 * 1024)) + stream.flush()
    with pytest.raises(DecompressionError, match="exceeds the limit"):
        decompress(Compression.ZSTD, bomb, max_output_size=1024 * 1024)


def test_raw_snappy_declaring_a_huge_size_is_refused_before_allocating() -> None:
    # varint 0xFFFFFFFF claims a 4 GiB output; the body is a short literal.
    claim = b"\xff\xff\xff\xff\x0f" + b"\x08abc"
    with pytest.raises(DecompressionError, match="exceeds the limit"):
        decompress(Compression.SNAPPY, claim)


@pytest.mark.parametrize("codec", COMPRESSED)
def test_truncated_input_is_an_error(codec: Compression) -> None:
    data = compress(codec, PAYLOAD)
    for cut in (0, 1, 7, len(data) // 2, len(data) - 1):
        with pytest.raises(DecompressionError):
            decompress(codec, data[:cut])


@pytest.mark.parametrize("codec", COMPRESSED)
def test_trailing_garbage_is_an_error(codec: Compression) -> None:
    with pytest.raises(DecompressionError):
        decompress(codec, compress(codec, PAYLOAD) + b"\x00garbage")


def test_xerial_block_overrunning_the_stream_is_an_error() -> None:
    framed = _xerial([b"hello"])
    with pytest.raises(DecompressionError, match="overruns"):
        decompress(Compression.SNAPPY, framed[:-1])
    negative = XERIAL_MAGIC + struct.pack(">iii", 1, 1, -5)
    with pytest.raises(DecompressionError, match="overruns"):
        decompress(Compression.SNAPPY, negative)
    with pytest.raises(DecompressionError, match="truncated xerial block length"):
        decompress(Compression.SNAPPY, framed + b"\x00\x00")


@settings(max_examples=150, deadline=None)
@given(
    codec=st.sampled_from(COMPRESSED),
    data=st.binary(min_size=1, max_size=2000),
    edits=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_input_raises_only_decompression_error(
    codec: Compression, data: bytes, edits: list[tuple[int, int]]
) -> None:
    mutated = bytearray(compress(codec, data))
    for pos, byte in edits:
        mutated[pos % len(mutated)] = byte
    try:
        out = decompress(codec, bytes(mutated), max_output_size=1 << 20)
    except DecompressionError:
        return
    assert len(out) <= 1 << 20


@settings(max_examples=150, deadline=None)
@given(codec=st.sampled_from(COMPRESSED), junk=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decompression_error(codec: Compression, junk: bytes) -> None:
    for candidate in (junk, XERIAL_MAGIC + junk, b"\x04\x22\x4d\x18" + junk):
        try:
            out = decompress(codec, candidate, max_output_size=1 << 20)
        except DecompressionError:
            continue
        assert len(out) <= 1 << 20


def test_decompression_error_is_a_value_error_and_chains_the_codec_error() -> None:
    with pytest.raises(DecompressionError) as caught:
        decompress(Compression.GZIP, b"\x1f\x8b\x08\x00garbage-garbage")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value.__cause__, zlib.error)
