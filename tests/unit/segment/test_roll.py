"""Segment rolls: segment.bytes, segment.ms, full indexes, relative offset overflow."""

from __future__ import annotations

import os

import pytest

from klog.segment import LogConfig
from klog.wire.records import build_batch


def test_roll_on_segment_bytes(open_log, batch) -> None:
    log = open_log(LogConfig(segment_bytes=500))
    size = len(batch(1))
    for _ in range(10):
        log.append(batch(1), 0, 0)
    per_segment = 500 // size
    assert [s.size for s in log.segments[:-1]] == [per_segment * size] * (len(log.segments) - 1)
    assert [s.base_offset for s in log.segments] == list(range(0, 10, per_segment))
    names = sorted(p.name for p in log.dir.iterdir() if p.suffix == ".log")
    assert names == [f"{s.base_offset:020d}.log" for s in log.segments]


def test_roll_trims_old_indexes_and_preallocates_new_ones(open_log, batch) -> None:
    size = len(batch(1))
    config = LogConfig(
        segment_bytes=6 * size, index_interval_bytes=2 * size - 1, segment_index_bytes=800
    )
    log = open_log(config)
    for i in range(8):
        log.append(batch(1, timestamp=1000 + i), 0, 0)
    old, active = log.segments[0], log.segments[-1]
    assert os.path.getsize(old.offset_index.path) == 8 * old.offset_index.entries
    assert os.path.getsize(old.time_index.path) == 12 * old.time_index.entries
    assert os.path.getsize(active.offset_index.path) == 800
    assert os.path.getsize(active.time_index.path) == 792
    # The rolled segment's time index ends with its largest timestamp, written at roll
    # time even though the last batch got no index entry of its own.
    assert old.offset_index.last_offset < old.next_offset - 1
    assert old.time_index.last_entry() == (old.max_timestamp, old.next_offset - 1)


def test_roll_on_segment_ms_measured_from_record_timestamps(open_log, batch) -> None:
    log = open_log(LogConfig(segment_ms=100))
    log.append(batch(1, timestamp=1_000), 0, now_ms=0)
    log.append(batch(1, timestamp=1_100), 0, now_ms=10**9)  # waited exactly 100: no roll
    assert len(log.segments) == 1
    log.append(batch(1, timestamp=1_101), 0, now_ms=0)
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_roll_on_segment_ms_without_timestamps_uses_the_clock(open_log) -> None:
    log = open_log(LogConfig(segment_ms=100))  # created at now_ms=0
    no_time = build_batch([(b"k", b"v", [], -1)])
    log.append(bytearray(no_time), 0, now_ms=50)
    log.append(bytearray(no_time), 0, now_ms=100)
    assert len(log.segments) == 1
    log.append(bytearray(no_time), 0, now_ms=101)
    assert len(log.segments) == 2


def test_segment_jitter_shortens_the_roll_time(open_log, batch) -> None:
    log = open_log(LogConfig(segment_ms=100, segment_jitter_ms=50))
    jitter = log.active_segment.roll_jitter_ms
    assert 0 <= jitter < 50
    log.append(batch(1, timestamp=0), 0, 0)
    log.append(batch(1, timestamp=100 - jitter), 0, 0)
    assert len(log.segments) == 1
    log.append(batch(1, timestamp=101 - jitter), 0, 0)
    assert len(log.segments) == 2


def test_roll_on_full_offset_index(open_log, batch) -> None:
    log = open_log(LogConfig(index_interval_bytes=0, segment_index_bytes=24))  # 3 entries
    for _ in range(10):
        log.append(batch(1), 0, 0)
    for segment in log.segments[:-1]:
        assert segment.offset_index.entries <= 3
    assert len(log.segments) >= 3


def test_roll_on_full_time_index(open_log, batch) -> None:
    # 8 offset entries fit but only 2 time entries (the last slot is kept for the roll).
    log = open_log(LogConfig(index_interval_bytes=0, segment_index_bytes=36))
    for i in range(6):
        log.append(batch(1, timestamp=1000 + i), 0, 0)
    first = log.segments[0]
    # The first batch gets no entry (nothing precedes it), the next two fill the two
    # usable slots, and the roll comes before a fourth batch.
    assert first.time_index.all_entries() == [(1001, 1), (1002, 2)]
    assert first.next_offset == 3
    assert first.offset_index.entries == 2 < 36 // 8  # the offset index had room
    assert len(log.segments) == 2


def test_roll_when_the_relative_offset_would_overflow(open_log) -> None:
    log = open_log()
    log.append_as_follower(build_batch([(b"k", b"v", [], 1)], base_offset=0), now_ms=0)
    far = 2**31 + 10
    log.append_as_follower(build_batch([(b"k", b"v", [], 2)], base_offset=far), now_ms=0)
    assert [s.base_offset for s in log.segments] == [0, far]
    assert log.log_end_offset == far + 1
    assert log.read(far, 100).read_bytes()[:8] == far.to_bytes(8, "big")
    assert log.read(5, 100).read_bytes()[:8] == far.to_bytes(8, "big")  # the gap


def test_rolling_an_empty_active_segment(open_log) -> None:
    log = open_log()
    log.roll(now_ms=0)  # nothing written: same base offset, nothing happens
    assert len(log.segments) == 1
    # As in Kafka, an empty segment left behind by a roll to a later offset stays.
    log.append_as_follower(build_batch([(b"k", b"v", [], 2)], base_offset=2**31 + 1), now_ms=0)
    assert [s.base_offset for s in log.segments] == [0, 2**31 + 1]
    assert log.read(0, 100).read_bytes()[:8] == (2**31 + 1).to_bytes(8, "big")
    with pytest.raises(ValueError):
        log.roll(now_ms=0, base_offset=5)
