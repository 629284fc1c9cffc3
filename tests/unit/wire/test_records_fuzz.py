"""Hostile record-batch bytes raise CorruptRecordError and nothing else."""

import struct
from collections.abc import Callable

from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from klog.wire.compression import Compression
from klog.wire.records import (
    ATTRIBUTES_POS,
    BASE_OFFSET_POS,
    BATCH_HEADER_SIZE,
    CRC_POS,
    LENGTH_POS,
    PARTITION_LEADER_EPOCH_POS,
    RECORDS_COUNT_POS,
    CorruptRecordError,
    build_batch,
    check_batch,
    decode_records,
    iter_batches,
    parse_batch_header,
)

# Patchable fields outside the CRC: base_offset and partition_leader_epoch.
_UNCHECKED = set(range(BASE_OFFSET_POS, LENGTH_POS)) | set(
    range(PARTITION_LEADER_EPOCH_POS, PARTITION_LEADER_EPOCH_POS + 4)
)
_LIMIT = 1 << 20

blobs = st.none() | st.binary(max_size=30)
batches = st.builds(
    lambda records, codec, base_offset: build_batch(
        records, compression=codec, base_offset=base_offset
    ),
    st.lists(
        st.tuples(
            blobs,
            blobs,
            st.lists(st.tuples(st.text(max_size=5), blobs), max_size=2),
            st.integers(min_value=0, max_value=2**42),
        ),
        max_size=6,
    ),
    st.sampled_from(list(Compression)),
    st.integers(min_value=0, max_value=2**40),
)
edits = st.lists(
    st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
    min_size=1,
    max_size=4,
)


def _attempt(action: Callable[[], object]) -> bool:
    """Run a parse; True if it succeeded, False if it raised CorruptRecordError."""
    try:
        action()
    except CorruptRecordError:
        return False
    return True


def _all_readers(buf: bytes) -> None:
    """Every reader either succeeds or raises CorruptRecordError, and they agree."""
    header_ok = _attempt(lambda: parse_batch_header(buf))
    decoded_ok = _attempt(lambda: decode_records(buf, max_decompressed_bytes=_LIMIT))
    iterated_ok = _attempt(lambda: list(iter_batches(buf)))
    partial_ok = _attempt(lambda: list(iter_batches(buf, allow_partial=True)))
    if decoded_ok:
        assert header_ok and iterated_ok
    if iterated_ok:
        assert partial_ok


def _fix_crc(buf: bytearray) -> None:
    if len(buf) >= BATCH_HEADER_SIZE:
        struct.pack_into(">I", buf, CRC_POS, crc32c(bytes(buf[ATTRIBUTES_POS:])))


@settings(max_examples=200, deadline=None)
@given(batch=batches, changes=edits)
def test_any_change_outside_the_patchable_fields_is_detected(
    batch: bytes, changes: list[tuple[int, int]]
) -> None:
    mutated = bytearray(batch)
    for pos, byte in changes:
        mutated[pos % len(mutated)] = byte
    changed = {i for i in range(len(batch)) if mutated[i] != batch[i]}
    decoded = _attempt(lambda: decode_records(mutated, max_decompressed_bytes=_LIMIT))
    if changed - _UNCHECKED:
        assert not decoded
    _all_readers(bytes(mutated))


@settings(max_examples=300, deadline=None)
@given(batch=batches, changes=edits)
def test_mutations_behind_a_valid_crc_raise_only_corrupt_record_error(
    batch: bytes, changes: list[tuple[int, int]]
) -> None:
    # Recomputing the CRC lets the garbage reach the decompressor and the record parser.
    mutated = bytearray(batch)
    span = len(mutated) - ATTRIBUTES_POS
    for pos, byte in changes:
        mutated[ATTRIBUTES_POS + pos % span] = byte
    _fix_crc(mutated)
    _all_readers(bytes(mutated))


@settings(max_examples=100, deadline=None)
@given(
    batch=batches,
    count=st.sampled_from([-(2**31), -1, 0, 1, 7, 2**31 - 1]),
)
def test_wrong_record_counts(batch: bytes, count: int) -> None:
    mutated = bytearray(batch)
    actual = struct.unpack_from(">i", mutated, RECORDS_COUNT_POS)[0]
    struct.pack_into(">i", mutated, RECORDS_COUNT_POS, count)
    _fix_crc(mutated)
    assert _attempt(lambda: decode_records(mutated)) is (count == actual)


@settings(max_examples=100, deadline=None)
@given(batch=batches, length=st.sampled_from([-(2**31), -1, 0, 48, 2**31 - 1]))
def test_extreme_lengths(batch: bytes, length: int) -> None:
    mutated = bytearray(batch)
    struct.pack_into(">i", mutated, LENGTH_POS, length)
    assert not _attempt(lambda: check_batch(mutated))
    assert not _attempt(lambda: list(iter_batches(mutated)))


@settings(max_examples=100, deadline=None)
@given(batch=batches, data=st.data())
def test_truncated_and_extended_batches(batch: bytes, data: st.DataObject) -> None:
    # An empty buffer is a valid (empty) sequence of batches, so cut at least one byte in.
    cut = data.draw(st.integers(min_value=1, max_value=len(batch) - 1))
    assert not _attempt(lambda: decode_records(batch[:cut]))
    assert not _attempt(lambda: list(iter_batches(batch[:cut])))
    assert _attempt(lambda: list(iter_batches(batch[:cut], allow_partial=True)))
    extra = data.draw(st.binary(min_size=1, max_size=80))
    assert not _attempt(lambda: decode_records(batch + extra))
    _all_readers(batch + extra)


@settings(max_examples=300, deadline=None)
@given(junk=st.binary(max_size=200), count=st.integers(min_value=0, max_value=4))
def test_arbitrary_bytes(junk: bytes, count: int) -> None:
    _all_readers(junk)
    # The same bytes behind a plausible v2 header reach the deeper checks.
    framed = bytearray(build_batch([])[:BATCH_HEADER_SIZE] + junk)
    struct.pack_into(">i", framed, LENGTH_POS, len(framed) - 12)
    struct.pack_into(">i", framed, RECORDS_COUNT_POS, count)
    _fix_crc(framed)
    _all_readers(bytes(framed))
    for codec in Compression:
        struct.pack_into(">h", framed, ATTRIBUTES_POS, codec)
        _fix_crc(framed)
        _all_readers(bytes(framed))
