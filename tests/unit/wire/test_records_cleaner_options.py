"""build_batch options the log cleaner uses: a kept last offset delta and a delete horizon."""

from __future__ import annotations

import pytest

from klog.wire.compression import Compression
from klog.wire.records import (
    DELETE_HORIZON_MASK,
    Record,
    build_batch,
    check_batch,
    decode_records,
)


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.ZSTD])
def test_last_offset_delta_is_kept_when_the_last_records_are_gone(codec: Compression) -> None:
    kept = [Record(100, 5, b"a", b"1", []), Record(102, 6, b"b", b"2", [])]
    batch = build_batch(kept, base_offset=100, last_offset_delta=9, compression=codec)
    header = check_batch(batch)
    assert (header.last_offset_delta, header.last_offset, header.records_count) == (9, 109, 2)
    assert decode_records(batch) == kept


def test_last_offset_delta_for_tuple_records_and_empty_batches() -> None:
    header = check_batch(build_batch([(b"k", b"v", [], 1)], last_offset_delta=4))
    assert (header.last_offset_delta, header.records_count) == (4, 1)
    empty = check_batch(build_batch([], base_offset=50, last_offset_delta=3))
    assert (empty.last_offset, empty.records_count) == (53, 0)


def test_last_offset_delta_below_the_last_record_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="last offset delta 1"):
        build_batch([Record(3, 1, b"k", b"v", [])], base_offset=0, last_offset_delta=1)
    with pytest.raises(ValueError, match="last offset delta"):
        build_batch([(b"k", b"v", [], 1)] * 3, last_offset_delta=1)
    with pytest.raises(ValueError, match="int32"):
        build_batch([(b"k", b"v", [], 1)], last_offset_delta=1 << 31)


def test_delete_horizon_is_the_base_timestamp_with_the_attribute_bit() -> None:
    records = [Record(7, 1_000, b"gone", None, []), Record(8, 1_005, b"k", b"v", [])]
    batch = build_batch(records, base_offset=7, delete_horizon_ms=90_000)
    header = check_batch(batch)
    assert header.has_delete_horizon
    assert header.attributes & DELETE_HORIZON_MASK
    assert (header.base_timestamp, header.max_timestamp) == (90_000, 1_005)
    # Record timestamps are deltas from the horizon and still decode exactly.
    assert decode_records(batch) == records
    plain = check_batch(build_batch(records, base_offset=7))
    assert not plain.has_delete_horizon and plain.base_timestamp == 1_000


def test_delete_horizon_and_a_different_base_timestamp_conflict() -> None:
    with pytest.raises(ValueError, match="delete horizon"):
        build_batch([(b"k", None, [], 1)], delete_horizon_ms=5, base_timestamp=1)
    header = check_batch(build_batch([(b"k", None, [], 1)], delete_horizon_ms=5, base_timestamp=5))
    assert header.has_delete_horizon and header.base_timestamp == 5
