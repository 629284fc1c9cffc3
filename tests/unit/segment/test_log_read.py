"""Log.read and the lookups: slices of whole batches, bounds, timestamps."""

from __future__ import annotations

import pytest

from klog.segment import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    FileSlice,
    LogConfig,
    OffsetOutOfRangeError,
    TimestampAndOffset,
)
from klog.wire.records import Compression, build_batch, iter_batches


def offsets_in(piece: FileSlice) -> list[tuple[int, int]]:
    return [
        (h.base_offset, h.last_offset)
        for h, _ in iter_batches(piece.read_bytes(), allow_partial=True)
    ]


@pytest.fixture
def filled(open_log, batch, small_config):  # type: ignore[no-untyped-def]
    """40 batches of 3 records (offsets 0..119) over several ~1 KiB segments."""
    log = open_log(small_config)
    for i in range(40):
        log.append(batch(3, timestamp=10_000 + 10 * i), leader_epoch=i // 10, now_ms=0)
    assert len(log.segments) > 3
    return log


def test_read_starts_at_the_batch_holding_the_offset(filled) -> None:
    for offset in range(0, 120):
        piece = filled.read(offset, max_bytes=1)
        first = offset - offset % 3
        assert offsets_in(piece) == [(first, first + 2)]  # one whole batch despite max_bytes


def test_read_never_copies_and_points_into_the_segment_file(filled) -> None:
    piece = filled.read(50, max_bytes=10_000)
    segment = next(s for s in reversed(filled.segments) if s.base_offset <= 50)
    assert piece.path == segment.log.path
    assert piece.fileno() == segment.log.handle.fileno() == piece.fd
    # One segment at most, from the batch holding 50 to the end of that segment.
    assert offsets_in(piece)[0] == (48, 50)
    assert piece.position + piece.size == segment.size


def test_max_bytes_cuts_like_kafka(filled) -> None:
    batch_size = filled.read(0, 1).size
    piece = filled.read(0, max_bytes=batch_size * 2 + 10)
    assert piece.size == batch_size * 2 + 10  # the last batch may be partial, as in Kafka
    assert offsets_in(piece) == [(0, 2), (3, 5)]
    assert filled.read(0, 0, min_one_message=False).size == 0
    # Without min_one_message a first batch that does not fit gives nothing, as in Kafka.
    assert filled.read(0, batch_size - 1, min_one_message=False).size == 0
    assert offsets_in(filled.read(0, batch_size + 5, min_one_message=False)) == [(0, 2)]


def test_upper_bound_excludes_the_batch_holding_max_offset(filled) -> None:
    assert offsets_in(filled.read(0, 10_000, max_offset=6)) == [(0, 2), (3, 5)]
    assert offsets_in(filled.read(0, 10_000, max_offset=7)) == [(0, 2), (3, 5)]
    assert filled.read(6, 10_000, max_offset=6).size == 0
    assert filled.read(9, 10_000, max_offset=6).size == 0  # above the bound, below LEO


def test_read_at_the_log_end_is_empty_and_outside_the_log_raises(filled) -> None:
    assert filled.read(120, 1000).size == 0
    with pytest.raises(OffsetOutOfRangeError):
        filled.read(121, 1000)
    filled.delete_records_before(30, now_ms=0)
    with pytest.raises(OffsetOutOfRangeError):
        filled.read(29, 1000)
    assert offsets_in(filled.read(30, 1))[0] == (30, 32)


def test_slices_survive_segment_deletion(filled) -> None:
    piece = filled.read(0, 200)
    expected = piece.read_bytes()
    filled.delete_records_before(100, now_ms=0)
    for path in filled.due_deletions(now_ms=10**12):
        path.unlink()
    assert piece.read_bytes() == expected  # the slice kept the file open


def test_offset_for_timestamp(filled) -> None:
    # Batch i has records at 10_000 + 10 * i + (0, 1, 2), offsets 3 * i + (0, 1, 2).
    assert filled.offset_for_timestamp(0) == TimestampAndOffset(10_000, 0, 0)
    assert filled.offset_for_timestamp(10_001) == TimestampAndOffset(10_001, 1, 0)
    assert filled.offset_for_timestamp(10_003) == TimestampAndOffset(10_010, 3, 0)
    assert filled.offset_for_timestamp(10_252) == TimestampAndOffset(10_252, 77, 2)
    assert filled.offset_for_timestamp(10_392) == TimestampAndOffset(10_392, 119, 3)
    assert filled.offset_for_timestamp(10_393) is None
    assert filled.offset_for_timestamp(EARLIEST_TIMESTAMP) == TimestampAndOffset(-1, 0, 0)
    assert filled.offset_for_timestamp(LATEST_TIMESTAMP) == TimestampAndOffset(-1, 120, 3)
    assert filled.offset_for_timestamp(MAX_TIMESTAMP) == TimestampAndOffset(10_392, 119, 3)
    filled.delete_records_before(50, now_ms=0)
    assert filled.offset_for_timestamp(0) == TimestampAndOffset(10_162, 50, 1)
    with pytest.raises(ValueError):
        filled.offset_for_timestamp(-7)


def test_offset_for_timestamp_with_unordered_and_compressed_batches(open_log) -> None:
    log = open_log(LogConfig(index_interval_bytes=0))
    log.append(bytearray(build_batch([(b"k", b"v", [], t) for t in (50, 10, 20)])), 0, 0)
    log.append(
        bytearray(
            build_batch([(b"k", b"v", [], t) for t in (5, 70, 60)], compression=Compression.ZSTD)
        ),
        1,
        0,
    )
    assert log.offset_for_timestamp(15) == TimestampAndOffset(50, 0, 0)
    assert log.offset_for_timestamp(55) == TimestampAndOffset(70, 4, 1)
    assert log.offset_for_timestamp(MAX_TIMESTAMP) == TimestampAndOffset(70, 4, 1)
