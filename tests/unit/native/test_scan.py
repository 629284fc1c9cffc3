"""scan_batches: framing, CRC-32C and error reporting, on both implementations."""

from __future__ import annotations

import array
import mmap
import os
import random
import struct
import threading
from collections.abc import Callable

import crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klog import native

SCAN_CODES = (
    native.SCAN_TRUNCATED,
    native.SCAN_BAD_LENGTH,
    native.SCAN_BAD_MAGIC,
    native.SCAN_BAD_CRC,
)


def three_batches(make_batch: Callable[..., bytes]) -> bytes:
    # The largest is past 3 x 8 KiB so the C code's interleaved CRC streams run too.
    return (
        make_batch(b"", base_offset=0, count=0, last_offset_delta=0, max_timestamp=7)
        + make_batch(os.urandom(100), base_offset=1, count=3, last_offset_delta=2, max_timestamp=-1)
        + make_batch(
            os.urandom(30_000),
            base_offset=1 << 40,
            count=9,
            last_offset_delta=8,
            max_timestamp=1_700_000_000_000,
        )
    )


def test_constants_are_the_agreed_codes(impl) -> None:
    assert (
        impl.SCAN_TRUNCATED,
        impl.SCAN_BAD_LENGTH,
        impl.SCAN_BAD_MAGIC,
        impl.SCAN_BAD_CRC,
    ) == (1, 2, 3, 4)
    assert impl.IMPLEMENTATION in ("c", "python")


def test_valid_batches_report_their_header_fields(impl, make_batch) -> None:
    buf = three_batches(make_batch)
    batches, valid_end, error = impl.scan_batches(buf)
    assert error is None
    assert valid_end == len(buf)
    assert batches == [
        (0, 0, 7, 0, 61),
        (1, 2, -1, 61, 161),
        (1 << 40, 8, 1_700_000_000_000, 222, 30_061),
    ]


def test_header_fields_equal_or_not_to_the_previous_batch(impl, make_batch) -> None:
    # The C code reuses the previous batch's int objects for equal fields; each must still
    # be the batch's own value whichever neighbour changes.
    specs = [  # base_offset, last_offset_delta, max_timestamp, payload bytes
        (0, 5, 100, 10),
        (6, 5, 100, 10),
        (12, 7, 100, 10),
        (20, 7, 99, 10),
        (28, 7, 99, 11),
        (36, 5, 99, 11),
        (42, 5, 1 << 40, 3000),
    ]
    buf = b"".join(
        make_batch(b"x" * size, base_offset=base, last_offset_delta=delta, max_timestamp=ts)
        for base, delta, ts, size in specs
    )
    batches, valid_end, error = impl.scan_batches(buf)
    assert (valid_end, error) == (len(buf), None)
    position = 0
    expected = []
    for base, delta, ts, size in specs:
        expected.append((base, delta, ts, position, 61 + size))
        position += 61 + size
    assert batches == expected


def test_empty_range_is_valid(impl) -> None:
    assert impl.scan_batches(b"") == ([], 0, None)
    assert impl.scan_batches(b"xyz", 3) == ([], 3, None)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "array", "mmap"])
def test_any_buffer_works_and_positions_are_absolute(impl, make_batch, kind, tmp_path) -> None:
    one = make_batch(b"r" * 40, base_offset=5, count=1)
    raw = b"\xff" * 7 + one + one + b"\xee" * 3
    start, end = 7, 7 + 2 * len(one)
    expected = (
        [(5, 0, 0, 7, len(one)), (5, 0, 0, 7 + len(one), len(one))],
        end,
        None,
    )
    if kind == "mmap":
        path = tmp_path / "seg.log"
        path.write_bytes(raw)
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            assert impl.scan_batches(m, start, end) == expected
            # The scan must not keep an export alive: closing would raise BufferError.
        return
    buf = {
        "bytes": raw,
        "bytearray": bytearray(raw),
        "memoryview": memoryview(b"..." + raw)[3:],
        "array": array.array("B", raw),
    }[kind]
    assert impl.scan_batches(buf, start, end) == expected
    if kind == "bytearray":
        buf.extend(b"x")  # no export left behind


def test_start_and_end_keywords(impl, make_batch) -> None:
    one = make_batch(b"abc")
    buf = one * 3
    batches, valid_end, error = impl.scan_batches(buf, start=len(one), end=2 * len(one))
    assert [b[3] for b in batches] == [len(one)]
    assert (valid_end, error) == (2 * len(one), None)


def test_truncated_header(impl, make_batch) -> None:
    one = make_batch()
    batches, valid_end, error = impl.scan_batches(one + one[:11])
    assert len(batches) == 1
    assert valid_end == len(one)
    assert error == (
        native.SCAN_TRUNCATED,
        f"truncated batch header at position {len(one)}: 11 of 12 bytes",
    )


def test_truncated_batch(impl, make_batch) -> None:
    one = make_batch(b"z" * 100)
    batches, valid_end, error = impl.scan_batches(one + one[:-1])
    assert len(batches) == 1 and valid_end == len(one)
    assert error == (
        native.SCAN_TRUNCATED,
        f"truncated batch at position {len(one)}: {len(one) - 1} of {len(one)} bytes",
    )


@pytest.mark.parametrize("length", [48, 0, -1, -(1 << 31)])
def test_bad_length_below_the_header(impl, make_batch, length) -> None:
    bad = bytearray(make_batch())
    struct.pack_into(">i", bad, 8, length)
    assert impl.scan_batches(bad) == (
        [],
        0,
        (
            native.SCAN_BAD_LENGTH,
            f"bad batch length {length} at position 0: must be 49..2147483647",
        ),
    )


def test_bad_length_above_max_batch_bytes(impl, make_batch) -> None:
    small = make_batch(b"a" * 10)
    big = make_batch(b"a" * 1000)
    limit = len(small) - 12
    batches, valid_end, error = impl.scan_batches(small + big, max_batch_bytes=limit)
    assert [b[3] for b in batches] == [0]
    assert valid_end == len(small)
    assert error == (
        native.SCAN_BAD_LENGTH,
        f"bad batch length {len(big) - 12} at position {len(small)}: must be 49..{limit}",
    )


@pytest.mark.parametrize("magic", [0, 1, 3, -1])
def test_bad_magic(impl, make_batch, magic) -> None:
    bad = make_batch(b"q", magic=magic)
    assert impl.scan_batches(bad) == (
        [],
        0,
        (native.SCAN_BAD_MAGIC, f"bad magic {magic} at position 0: expected 2"),
    )


def test_bad_crc_names_both_values(impl, make_batch) -> None:
    good = make_batch(b"payload")
    bad = bytearray(good)
    bad[-1] ^= 0x01
    stored = struct.unpack_from(">I", good, 17)[0]
    computed = crc32c.crc32c(bytes(bad[21:]))
    assert impl.scan_batches(good + bad) == (
        [(0, 0, 0, 0, len(good))],
        len(good),
        (
            native.SCAN_BAD_CRC,
            f"CRC-32C mismatch at position {len(good)}: "
            f"stored 0x{stored:08x}, computed 0x{computed:08x}",
        ),
    )


def test_fields_outside_the_crc_can_be_patched(impl, make_batch) -> None:
    # The broker patches base_offset and the leader epoch in place without a new CRC.
    patched = bytearray(make_batch(b"v" * 20))
    struct.pack_into(">qii", patched, 0, 12345, len(patched) - 12, 77)
    assert impl.scan_batches(patched) == ([(12345, 0, 0, 0, len(patched))], len(patched), None)


def test_each_error_stops_at_the_first_bad_batch(impl, make_batch) -> None:
    one = make_batch(b"x" * 30)
    bad = bytearray(one)
    bad[40] ^= 0xFF
    batches, valid_end, error = impl.scan_batches(one + one + bytes(bad) + one)
    assert [b[3] for b in batches] == [0, len(one)]
    assert valid_end == 2 * len(one)
    assert error is not None and error[0] == native.SCAN_BAD_CRC


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1,), "bad range [-1, 10) for a buffer of 10 bytes"),
        ((0, 11), "bad range [0, 11) for a buffer of 10 bytes"),
        ((6, 5), "bad range [6, 5) for a buffer of 10 bytes"),
        ((0, 1 << 63), f"end {1 << 63} out of int64 range"),
        ((0, None, -1), "max_batch_bytes -1 out of non-negative int64 range"),
    ],
)
def test_bad_arguments_raise_value_error(impl, args, message) -> None:
    with pytest.raises(ValueError) as info:
        impl.scan_batches(b"0123456789", *args)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("buf", "kwargs", "message"),
    [
        ("text", {}, "buf must be a contiguous bytes-like object"),
        (memoryview(b"abcdef")[::2], {}, "buf must be a contiguous bytes-like object"),
        (b"", {"start": 1.0}, "start must be int"),
        (b"", {"end": "3"}, "end must be int"),
    ],
)
def test_bad_argument_types_raise_type_error(impl, buf, kwargs, message) -> None:
    with pytest.raises(TypeError) as info:
        impl.scan_batches(buf, **kwargs)
    assert str(info.value) == message


def test_large_regions_scan_correctly_from_many_threads(impl, make_batch) -> None:
    # Large enough for the C code to release the GIL; threads must not disturb each other.
    buf = b"".join(
        make_batch(os.urandom(size), base_offset=i) for i, size in enumerate([1000, 16000] * 20)
    )
    expected = impl.scan_batches(buf)
    assert expected[2] is None and len(expected[0]) == 40
    results: list[object] = []

    def work() -> None:
        for _ in range(5):
            results.append(impl.scan_batches(buf))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [expected] * 20


# --- native == twin on arbitrary damage -------------------------------------------------

_SAMPLE_CACHE: dict[str, bytes] = {}


def sample(make_batch: Callable[..., bytes]) -> bytes:
    if "buf" not in _SAMPLE_CACHE:
        _SAMPLE_CACHE["buf"] = b"".join(
            make_batch(
                os.urandom(n),
                base_offset=i * 10,
                count=1,
                last_offset_delta=i,
                max_timestamp=i * 1000,
            )
            for i, n in enumerate([0, 5, 300, 1024, 70])
        )
    return _SAMPLE_CACHE["buf"]


mutation = st.lists(
    st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
    max_size=4,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=mutation,
    cut=st.integers(min_value=0),
    start_frac=st.floats(0, 1),
    limit=st.none() | st.integers(min_value=0, max_value=2000),
)
def test_native_and_twin_agree_on_damaged_buffers(
    both, make_batch, outcome, edits, cut, start_frac, limit
) -> None:
    buf = bytearray(sample(make_batch))
    for where, value in edits:
        buf[where % len(buf)] = value
    del buf[cut % (len(buf) + 1) :]
    start = int(start_frac * len(buf))
    c, py = both
    got_c = outcome(c.scan_batches, buf, start, None, limit)
    got_py = outcome(py.scan_batches, buf, start, None, limit)
    assert got_c == got_py
    kind, result = got_py
    assert kind == "ok"
    batches, valid_end, error = result
    assert start <= valid_end <= len(buf)
    pos = start
    for _, _, _, position, size in batches:
        assert position == pos
        pos += size
    assert pos == valid_end
    assert (error is None) == (valid_end == len(buf))
    if error is not None:
        assert error[0] in SCAN_CODES and f"position {valid_end}" in error[1]


def check_every_crc_code(c_impl, data: bytes | memoryview, crc: int = 0) -> None:
    results = c_impl._crc32c_all(data, crc)
    assert "table" in results and c_impl.CRC32C_CODE in results
    assert set(results.values()) == {crc32c.crc32c(data, crc)}, results


@settings(max_examples=50)
@given(
    data=st.binary(max_size=70_000),
    offset=st.integers(0, 63),
    crc=st.integers(0, 2**32 - 1),
)
def test_c_crc32c_codes_match_the_reference(c_impl, data, offset, crc) -> None:
    check_every_crc_code(c_impl, memoryview(bytes(offset) + data)[offset:], crc)  # unaligned too


def test_c_crc32c_codes_on_every_short_length(c_impl) -> None:
    # Every tail shape of the vector codes: 64- and 16-byte folds, then 8/4/2/1-byte words.
    raw = os.urandom(700)
    for size in range(601):
        for offset in (0, 1, 7, 13):
            check_every_crc_code(
                c_impl, memoryview(raw)[offset : offset + size], size * 0x9E3779B1 % 2**32
            )


# Lengths around the block sizes of the SSE4.2 code (256, 3 x 8192), the AVX-512 folds
# (256, 64, 16) and the fusion code: from 2,048 bytes, chunks of up to 64 steps of 328 bytes
# after up to 63 bytes that align the folded part.
FUSION_MIN = 2048
FUSION_STEP = 328
FUSION_CHUNK = 63 + 64 * FUSION_STEP


@pytest.mark.parametrize(
    "size",
    [0, 7, 15, 16, 255, 256, 257, 271, 767, 768, 769, 24_575, 24_576, 24_583, 100_003, 1_048_588]
    + [FUSION_MIN + d for d in (-1, 0, 1, FUSION_STEP)]
    + [k * FUSION_CHUNK + d for k in (1, 2, 3) for d in (-1, 0, 1, FUSION_STEP, 5_000)],
)
def test_c_crc32c_codes_at_block_boundaries(c_impl, size) -> None:
    raw = os.urandom(size + 64)
    for offset, crc in ((0, 0), (1, 0xFFFFFFFF), (21, 0x12345678), (63, 1)):
        check_every_crc_code(c_impl, memoryview(raw)[offset : offset + size], crc)


def test_c_crc32c_codes_for_every_fusion_step_count(c_impl) -> None:
    # The fusion code has constants per step count; each must be right, with any tail.
    rng = random.Random(1)
    raw = os.urandom(FUSION_CHUNK + 2 * FUSION_STEP)
    for steps in range(FUSION_MIN // FUSION_STEP, 65):
        for tail in (0, FUSION_STEP - 1, rng.randrange(FUSION_STEP)):
            offset = rng.randrange(64)
            size = 63 + steps * FUSION_STEP + tail
            check_every_crc_code(
                c_impl, memoryview(raw)[offset : offset + size], rng.getrandbits(32)
            )
