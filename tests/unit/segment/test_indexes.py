"""Offset and time index files: Kafka's layout, lookups, truncation, sizing, checks."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from klog.segment import CorruptIndexError, OffsetIndex, TimeIndex


def test_offset_index_file_layout_is_kafkas(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000100.index"
    index = OffsetIndex(path, 100, 1000)
    assert path.stat().st_size == 1000  # preallocated to segment.index.bytes (multiple of 8)
    index.append(105, 4200)
    index.append(110, 8400)
    index.close()
    data = path.read_bytes()
    assert data == struct.pack(">II", 5, 4200) + struct.pack(">II", 10, 8400)


def test_preallocation_rounds_down_to_whole_entries(tmp_path: Path) -> None:
    assert OffsetIndex(tmp_path / "a.index", 0, 1001).max_entries == 125
    time_index = TimeIndex(tmp_path / "a.timeindex", 0, 1001)
    assert (tmp_path / "a.timeindex").stat().st_size == 996
    assert time_index.max_entries == 83


def test_time_index_file_layout_is_kafkas(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000100.timeindex"
    index = TimeIndex(path, 100, 1200)
    index.maybe_append(1_700_000_000_000, 103)
    index.maybe_append(1_700_000_000_000, 104)  # not larger: skipped
    index.maybe_append(1_700_000_000_001, 107)
    index.close()
    assert path.read_bytes() == struct.pack(">qI", 1_700_000_000_000, 3) + struct.pack(
        ">qI", 1_700_000_000_001, 7
    )


def test_offset_lookup_finds_the_last_entry_at_or_below(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "x.index", 50, 8 * 100)
    for i in range(1, 60):
        index.append(50 + 10 * i, 1000 * i)
    assert index.lookup(49) == (50, 0)
    assert index.lookup(55) == (50, 0)
    assert index.lookup(60) == (60, 1000)
    assert index.lookup(69) == (60, 1000)
    assert index.lookup(50 + 10 * 59) == (640, 59000)
    assert index.lookup(10**9) == (640, 59000)


def test_offset_index_rejects_non_increasing_offsets_and_overflow(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "x.index", 0, 80)
    index.append(5, 0)
    with pytest.raises(ValueError):
        index.append(5, 10)
    with pytest.raises(ValueError):
        index.append(2**31, 10)


def test_offset_index_full_and_resize(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "x.index", 0, 24)
    for i in range(3):
        index.append(i + 1, i)
    assert index.is_full
    with pytest.raises(ValueError, match="full"):
        index.append(10, 10)
    index.resize(80)
    assert not index.is_full
    index.append(10, 10)
    index.trim_to_valid_size()
    assert (tmp_path / "x.index").stat().st_size == 32
    assert index.all_entries() == [(1, 0), (2, 1), (3, 2), (10, 10)]


def test_truncate_to_drops_entries_at_and_above(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "x.index", 0, 800)
    for i in range(1, 11):
        index.append(i * 10, i * 100)
    index.truncate_to(50)
    assert index.last_entry() == (40, 400)
    index.truncate_to(41)
    assert index.last_entry() == (40, 400)
    index.truncate_to(0)
    assert index.entries == 0
    assert index.lookup(100) == (0, 0)

    times = TimeIndex(tmp_path / "x.timeindex", 0, 1200)
    for i in range(1, 6):
        times.maybe_append(1000 + i, i * 10)
    times.truncate_to(30)
    assert times.all_entries() == [(1001, 10), (1002, 20)]


def test_time_lookup_and_one_slot_reserved_for_roll(tmp_path: Path) -> None:
    index = TimeIndex(tmp_path / "x.timeindex", 0, 36)  # three slots
    assert index.lookup(5) == (-1, 0)
    index.maybe_append(100, 1)
    index.maybe_append(200, 5)
    assert index.is_full  # the last slot is kept for the entry written at roll
    index.maybe_append(300, 9, skip_full_check=True)
    assert index.lookup(250) == (200, 5)
    assert index.lookup(99) == (-1, 0)
    assert index.lookup(300) == (300, 9)
    with pytest.raises(ValueError):
        index.maybe_append(400, 10, skip_full_check=True)


def test_time_index_refuses_offsets_going_backwards(tmp_path: Path) -> None:
    index = TimeIndex(tmp_path / "x.timeindex", 0, 120)
    index.maybe_append(100, 10)
    with pytest.raises(ValueError):
        index.maybe_append(200, 5)


def test_reopening_a_trimmed_index_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "x.index"
    index = OffsetIndex(path, 0, 800)
    index.append(3, 30)
    index.append(7, 70)
    index.close()
    again = OffsetIndex(path, 0, 800)
    assert not again.created
    assert again.all_entries() == [(3, 30), (7, 70)]
    again.sanity_check(log_size=100)


@pytest.mark.parametrize(
    "content",
    [
        b"\x00" * 7,  # not a whole number of entries
        struct.pack(">II", 9, 10) + struct.pack(">II", 3, 20),  # offsets go down
        struct.pack(">II", 1, 10) + struct.pack(">II", 3, 5000),  # position past the log
        struct.pack(">II", 1, 10) + struct.pack(">II", 2**31 + 5, 20),  # offset overflow
    ],
)
def test_offset_index_sanity_check_catches_garbage(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.index"
    path.write_bytes(content)
    with pytest.raises(CorruptIndexError):
        OffsetIndex(path, 0, 800).sanity_check(log_size=1000)


@pytest.mark.parametrize(
    "content",
    [
        struct.pack(">qI", 500, 1) + struct.pack(">qI", 400, 2),  # time goes back
        struct.pack(">qI", 500, 1) + struct.pack(">qI", 600, 99),  # past the segment's end
        b"\x01" * 13,
    ],
)
def test_time_index_sanity_check_catches_garbage(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.timeindex"
    path.write_bytes(content)
    with pytest.raises(CorruptIndexError):
        TimeIndex(path, 0, 1200).sanity_check(next_offset=50)


def test_closed_index_refuses_use(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "x.index", 0, 80)
    index.close()
    with pytest.raises(ValueError, match="closed"):
        index.fsync()
