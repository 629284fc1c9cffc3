"""truncate_to, truncate_fully_and_start_at, delete_records_before, delayed deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from klog.segment import Log, LogConfig, OffsetOutOfRangeError
from klog.wire.records import iter_batches


def fill(log: Log, batch, count: int, epoch_every: int = 10) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        log.append(batch(2, timestamp=1000 + i), leader_epoch=i // epoch_every, now_ms=0)


def data_offsets(log: Log) -> list[int]:
    return [
        h.base_offset
        for segment in log.segments
        for h, _ in iter_batches(Path(segment.log.path).read_bytes())
    ]


def test_truncate_to_a_batch_boundary_across_segments(open_log, batch, small_config) -> None:
    log = open_log(small_config)
    fill(log, batch, 40)  # offsets 0..79, batches of 2
    segments_before = len(log.segments)
    assert log.truncate_to(31)  # 31 is inside batch 30..31: the whole batch goes
    assert log.log_end_offset == 30
    assert data_offsets(log) == list(range(0, 30, 2))
    assert len(log.segments) < segments_before
    assert [tuple(e) for e in log.leader_epoch_cache.entries()] == [(0, 0), (1, 20)]
    assert log.recovery_point == 0
    # The new active segment accepts appends and indexes them.
    fill(log, batch, 5)
    assert log.log_end_offset == 40
    assert log.read(38, 1).read_bytes()[:8] == (38).to_bytes(8, "big")
    assert not log.truncate_to(40)
    assert not log.truncate_to(1000)


def test_truncate_keeps_indexes_consistent(open_log, batch, small_config) -> None:
    log = open_log(small_config)
    fill(log, batch, 30)
    log.truncate_to(44)
    for segment in log.segments:
        for offset, position in segment.offset_index.all_entries():
            assert offset < 44
            header = segment.log.read_header(position)
            assert header is not None and header.base_offset <= offset <= header.last_offset
        for _, offset in segment.time_index.all_entries():
            assert offset < 44
    log.close()
    reopened = Log.open(log.dir, small_config, had_clean_shutdown=True)
    assert reopened.log_end_offset == 44


def test_truncated_segments_are_renamed_then_removed_after_the_delay(
    open_log, batch, small_config
) -> None:
    config = LogConfig(**{**small_config.__dict__, "file_delete_delay_ms": 5_000})
    log = open_log(config)
    fill(log, batch, 40)
    doomed = log.segments[-1]
    log.truncate_to(doomed.base_offset - 1, now_ms=1_000)
    deleted = sorted(p.name for p in log.dir.glob("*.deleted"))
    assert deleted == sorted(
        f"{doomed.base_offset:020d}{ext}.deleted" for ext in (".log", ".index", ".timeindex")
    )
    assert log.due_deletions(5_999) == []
    assert log.next_deletion_ms == 6_000
    due = log.due_deletions(6_000)
    assert sorted(p.name for p in due) == deleted
    assert log.due_deletions(10**12) == []


def test_truncate_fully_and_start_at(open_log, batch, small_config) -> None:
    log = open_log(small_config)
    fill(log, batch, 20)
    log.truncate_fully_and_start_at(1000, now_ms=0)
    assert (log.log_start_offset, log.log_end_offset, log.recovery_point) == (1000, 1000, 1000)
    assert len(log.segments) == 1 and log.active_segment.base_offset == 1000
    assert log.leader_epoch_cache.entries() == []
    assert log.dir.joinpath("00000000000000001000.log").exists()
    info = log.append(batch(2), leader_epoch=9, now_ms=0)
    assert (info.base_offset, info.last_offset) == (1000, 1001)
    assert log.read(1000, 1).read_bytes()[:8] == (1000).to_bytes(8, "big")


def test_truncate_below_the_first_segment_starts_over(open_log, batch, small_config) -> None:
    log = open_log(small_config)
    log.truncate_fully_and_start_at(100)
    fill(log, batch, 3)
    assert log.truncate_to(50)
    assert (log.log_start_offset, log.log_end_offset) == (50, 50)


def test_delete_records_before(open_log, batch, small_config) -> None:
    log = open_log(small_config)
    fill(log, batch, 40)
    first_bases = [s.base_offset for s in log.segments]
    assert log.delete_records_before(first_bases[2] + 1, now_ms=0) == first_bases[2] + 1
    # Whole segments below the new start are gone; the one holding it stays.
    assert log.segments[0].base_offset == first_bases[2]
    assert log.delete_records_before(3, now_ms=0) == first_bases[2] + 1  # never backwards
    assert log.leader_epoch_cache.entries()[0].start_offset == first_bases[2] + 1
    assert log.delete_records_before(80, now_ms=0) == 80
    assert len(log.segments) == 1  # the active segment is never deleted
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(81, now_ms=0)
