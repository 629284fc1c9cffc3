"""The log cleaner: planning knobs, what survives a pass, offsets/indexes/reads after
it, the owner/thread handoff, the crash protocol in-process, and the LogCleaner service
inside a LogManager. (The random model test is test_cleaner_model.py; real SIGKILLs are
in tests/integration/segment/test_cleaner_crash.py.)"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from klog.segment import Log, LogConfig, LogManager, TopicPartition
from klog.segment.cleaner import (
    CleanerConfig,
    CleaningJob,
    CleaningPlan,
    CleanResult,
    SegmentInfo,
    clean_log,
    cleaning_plan,
    discard_segment,
    plan_cleaning,
)
from klog.segment.cleaner_checkpoint import CLEANER_OFFSET_CHECKPOINT, CleanerOffsetCheckpoint
from klog.segment.filenames import CLEANED_SUFFIX, SWAP_SUFFIX
from klog.wire.compression import Compression
from klog.wire.records import (
    BatchHeader,
    ControlRecordType,
    EndTransactionMarker,
    TimestampType,
    build_batch,
    build_end_transaction_batch,
    decode_records,
    iter_batches,
)

COMPACT = LogConfig(
    cleanup_policy=("compact",),
    segment_bytes=1024,
    index_interval_bytes=100,
    segment_index_bytes=4096,
    min_cleanable_dirty_ratio=0.01,
    delete_retention_ms=1_000,
)
LONG_MAX = (1 << 63) - 1


# -- helpers ---------------------------------------------------------------------------------


def put(log: Log, *records: tuple, now: int = 1_000, **options: object) -> None:
    """Append one batch of ``(key, value)`` or ``(key, value, timestamp)`` records."""
    rows = [(r[0], r[1], [], r[2] if len(r) > 2 else now) for r in records]
    log.append(bytearray(build_batch(rows, **options)), 0, now)  # type: ignore[arg-type]


def fill(log: Log, count: int, keys: int, start: int = 0, now: int = 1_000) -> None:
    """``count`` one-record batches cycling over ``keys`` keys; value = record number."""
    for i in range(start, start + count):
        put(log, (b"k%d" % (i % keys), b"v%d" % i), now=now)


def stored_batches(log: Log) -> list[tuple[BatchHeader, bytes]]:
    out = []
    for segment in log.segments:
        data = segment.log.read_bytes(0, segment.size)
        out.extend((header, bytes(batch)) for header, batch in iter_batches(data))
    return out


def contents(log: Log) -> list[tuple[int, bytes | None, bytes | None]]:
    return [
        (r.offset, r.key, r.value)
        for _, batch in stored_batches(log)
        for r in decode_records(batch)
    ]


def latest_per_key(rows: list[tuple[int, bytes | None, bytes | None]], end: int) -> list:
    """The compaction model for rows below ``end``: the last row of each key (keyless
    rows all stay), plus every row at or after ``end``."""
    last = {key: offset for offset, key, _ in rows if offset < end and key is not None}
    return [r for r in rows if r[0] >= end or r[1] is None or last[r[1]] == r[0]]


def clean(
    log: Log,
    now: int = 10_000,
    *,
    checkpoint: int | None = None,
    upper_bound: int | None = None,
    config: CleanerConfig | None = None,
) -> CleanResult:
    plan = cleaning_plan(log, checkpoint=checkpoint, upper_bound=upper_bound, now_ms=now)
    return trio.run(lambda: clean_log(log, plan, now_ms=now, config=config))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".cleaned", ".swap")))


def open_log(tmp_path: Path, config: LogConfig = COMPACT, name: str = "t-0") -> Log:
    return Log.open(tmp_path / name, config, now_ms=0)


# -- planning (pure) -------------------------------------------------------------------------


def seg(base: int, size: int = 100, largest: int = 1_000, first: int = 1_000) -> SegmentInfo:
    return SegmentInfo(base, size, largest, first)


def plan(segments: list[SegmentInfo], **overrides: object) -> CleaningPlan:
    args: dict[str, object] = dict(
        log_start_offset=0,
        log_end_offset=segments[-1].base_offset + 10,
        checkpoint=None,
        upper_bound=None,
        now_ms=100_000,
        min_cleanable_dirty_ratio=0.5,
        min_compaction_lag_ms=0,
        max_compaction_lag_ms=LONG_MAX,
        delete_horizon_ms=None,
    )
    args.update(overrides)
    return plan_cleaning(segments, **args)  # type: ignore[arg-type]


FOUR = [seg(0), seg(10), seg(20), seg(30)]  # the last is active


def test_plan_dirty_ratio_against_min_cleanable_dirty_ratio() -> None:
    # Checkpoint at 20: 200 clean bytes, 100 dirty (segment 20; 30 is active).
    assert plan(FOUR, checkpoint=20).dirty_ratio == pytest.approx(1 / 3)
    assert plan(FOUR, checkpoint=20, min_cleanable_dirty_ratio=0.33).due
    assert not plan(FOUR, checkpoint=20, min_cleanable_dirty_ratio=0.34).due
    fresh = plan(FOUR)
    assert (fresh.first_dirty_offset, fresh.first_uncleanable_offset) == (0, 30)
    assert (fresh.clean_bytes, fresh.cleanable_bytes, fresh.due) == (0, 300, True)
    assert not plan(FOUR, checkpoint=30).due  # nothing dirty outside the active segment


def test_plan_never_counts_the_active_segment_or_data_past_the_upper_bound() -> None:
    only_active = plan([seg(0, size=10_000)])
    assert (only_active.cleanable_bytes, only_active.due) == (0, False)
    capped = plan(FOUR, upper_bound=15)
    assert capped.first_uncleanable_offset == 15
    assert capped.cleanable_bytes == 200  # segments 0 and 10 overlap [0, 15)
    assert not plan(FOUR, upper_bound=0).due


def test_plan_checkpoint_outside_the_log_resets_to_the_log_start() -> None:
    assert plan(FOUR, checkpoint=5, log_start_offset=8).first_dirty_offset == 8
    assert plan(FOUR, checkpoint=500).first_dirty_offset == 0
    assert plan(FOUR, checkpoint=25).first_dirty_offset == 25


def test_plan_min_compaction_lag_stops_at_the_first_young_segment() -> None:
    young = [seg(0, largest=1_000), seg(10, largest=99_500), seg(20, largest=1_000), seg(30)]
    lagged = plan(young, min_compaction_lag_ms=1_000)
    assert lagged.first_uncleanable_offset == 10
    assert lagged.cleanable_bytes == 100
    assert plan(young, min_compaction_lag_ms=400).first_uncleanable_offset == 30
    assert not plan(young, min_compaction_lag_ms=200_000).due


def test_plan_max_compaction_lag_makes_a_log_due_whatever_its_ratio() -> None:
    old = [seg(0, first=50_000), seg(10, first=60_000), seg(20)]
    assert not plan(old, checkpoint=10, min_cleanable_dirty_ratio=0.9).due
    overdue = plan(old, checkpoint=10, min_cleanable_dirty_ratio=0.9, max_compaction_lag_ms=30_000)
    assert overdue.due and overdue.max_compaction_delay_ms == 10_000
    assert "max.compaction.lag.ms" in (overdue.reason or "")
    assert not plan(
        old, checkpoint=10, min_cleanable_dirty_ratio=0.9, max_compaction_lag_ms=50_000
    ).due


def test_plan_a_passed_delete_horizon_makes_a_log_due() -> None:
    clean_log_plan = dict(checkpoint=30)
    assert not plan(FOUR, **clean_log_plan, delete_horizon_ms=100_001).due
    assert plan(FOUR, **clean_log_plan, delete_horizon_ms=100_000).due


# -- what survives a pass --------------------------------------------------------------------


def test_latest_value_per_key_with_offsets_kept(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, 100, keys=7)
    before = contents(log)
    active_base = log.active_segment.base_offset
    result = clean(log)
    assert result.completed and result.end_offset == active_base
    assert contents(log) == latest_per_key(before, active_base)
    assert result.records_removed == len(before) - len(contents(log))
    assert log.log_end_offset == 100 and log.log_start_offset == 0
    assert log.active_segment.base_offset == active_base
    assert leftovers(log.dir) == []


def test_the_active_segment_is_never_cleaned(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(cleanup_policy=("compact",)))
    fill(log, 50, keys=2)  # one big active segment
    before = stored_batches(log)
    result = clean(log)
    assert result.groups_swapped == 0 and stored_batches(log) == before


def test_nothing_at_or_past_the_upper_bound_is_touched(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, 100, keys=3)
    before = contents(log)
    result = clean(log, upper_bound=40)
    assert result.end_offset == 40
    assert contents(log) == latest_per_key(before, 40)
    assert [r for r in contents(log) if r[0] >= 40] == [r for r in before if r[0] >= 40]


def test_batches_keep_their_offsets_codec_producer_fields_and_leader_epoch(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    rows = [(b"a", b"1", [], 5), (b"b", b"2", [], 6), (b"c", b"3", [], 7), (b"a", b"4", [], 8)]
    batch = build_batch(
        rows, compression=Compression.ZSTD, producer_id=77, producer_epoch=3, base_sequence=10
    )
    log.append(bytearray(batch), 4, 1_000)
    put(log, (b"b", b"new"), (b"c", b"new"))  # supersedes b and c: offsets 4, 5
    log.roll(1_000)
    clean(log)
    (first, first_bytes), (second, _) = stored_batches(log)
    assert (first.base_offset, first.last_offset, first.records_count) == (0, 3, 1)
    assert first.compression is Compression.ZSTD
    assert (first.producer_id, first.producer_epoch, first.base_sequence) == (77, 3, 10)
    assert first.partition_leader_epoch == 4
    assert [(r.offset, r.key, r.timestamp) for r in decode_records(first_bytes)] == [(3, b"a", 8)]
    assert (second.base_offset, second.last_offset) == (4, 5)


def test_a_batch_that_keeps_everything_is_copied_byte_for_byte(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    put(log, (b"x", b"1"), (b"y", b"2"))
    put(log, (b"x", b"3"))
    put(log, (b"z", b"4"))
    kept = stored_batches(log)[2][1]
    log.roll(1_000)
    clean(log)
    assert [bytes(b) for _, b in stored_batches(log)][-1] == kept
    assert contents(log) == [(1, b"y", b"2"), (2, b"x", b"3"), (3, b"z", b"4")]


def test_log_append_time_batches_keep_their_timestamps(tmp_path: Path) -> None:
    log = open_log(tmp_path, replace(COMPACT, message_timestamp_type="LogAppendTime"))
    put(log, (b"a", b"1"), (b"b", b"2"), now=5_000)
    put(log, (b"a", b"3"), now=6_000)
    log.roll(7_000)
    clean(log)
    header, batch = stored_batches(log)[0]
    assert header.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert header.max_timestamp == 5_000
    assert [(r.offset, r.timestamp) for r in decode_records(batch)] == [(1, 5_000)]


def test_control_and_transactional_batches_are_kept_as_they_are(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    txn = build_batch(
        [(b"k", b"txn", [], 1)], producer_id=9, producer_epoch=0, is_transactional=True
    )
    marker = build_end_transaction_batch(
        EndTransactionMarker(ControlRecordType.COMMIT, 0),
        producer_id=9,
        producer_epoch=0,
        timestamp=1,
    )
    log.append(bytearray(txn), 0, 1_000)
    log.append(bytearray(marker), 0, 1_000)
    put(log, (b"k", b"plain"))
    put(log, (b"k", b"later"))
    log.roll(1_000)
    before = stored_batches(log)
    clean(log)
    after = stored_batches(log)
    # Both kept byte for byte; the transactional record is not in the key map, so it
    # does not go, but "plain" still goes for "later".
    assert [b for _, b in after[:2]] == [b for _, b in before[:2]]
    marker_record = EndTransactionMarker(ControlRecordType.COMMIT, 0)
    assert contents(log) == [
        (0, b"k", b"txn"),
        (1, marker_record.key(), marker_record.value()),
        (3, b"k", b"later"),
    ]


def test_keyless_records_stay(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    put(log, (None, b"a"), (b"k", b"1"))
    put(log, (None, b"b"), (b"k", b"2"))
    log.roll(1_000)
    clean(log)
    assert contents(log) == [(0, None, b"a"), (2, None, b"b"), (3, b"k", b"2")]


def test_tombstones_get_a_delete_horizon_then_go_after_delete_retention_ms(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    put(log, (b"gone", b"1"), (b"kept", b"1"))
    put(log, (b"gone", None))
    log.roll(1_000)
    first = clean(log, now=10_000)
    assert contents(log) == [(1, b"kept", b"1"), (2, b"gone", None)]
    header = stored_batches(log)[1][0]
    assert header.has_delete_horizon and header.base_timestamp == 10_000 + 1_000
    assert first.delete_horizon_ms == 11_000
    # Before the horizon the tombstone stays (and keeps its horizon).
    clean(log, now=10_999, checkpoint=first.end_offset)
    assert contents(log)[-1] == (2, b"gone", None)
    assert stored_batches(log)[1][0].base_timestamp == 11_000
    last = clean(log, now=11_000, checkpoint=first.end_offset)
    assert contents(log) == [(1, b"kept", b"1")]
    assert last.delete_horizon_ms is None


def test_delete_retention_ms_sets_the_horizon(tmp_path: Path) -> None:
    config = replace(COMPACT, delete_retention_ms=60_000)
    log = open_log(tmp_path, config)
    put(log, (b"t", None))
    log.roll(1_000)
    clean(log, now=10_000)
    assert stored_batches(log)[0][0].base_timestamp == 70_000
    clean(log, now=69_999, checkpoint=1)
    assert contents(log) == [(0, b"t", None)]
    clean(log, now=70_000, checkpoint=1)
    assert contents(log) == []


def test_compaction_is_idempotent(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, 80, keys=5)
    first = clean(log)
    once = contents(log)
    assert len(once) < 80
    again = clean(log, checkpoint=first.end_offset)
    assert contents(log) == once
    assert again.records_removed == 0
    from_scratch = clean(log)  # the whole log as dirty again
    assert contents(log) == once and from_scratch.records_removed == 0


def test_a_small_dedupe_buffer_cleans_in_several_passes(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, 120, keys=40)
    before = contents(log)
    target = latest_per_key(before, log.active_segment.base_offset)
    tight = CleanerConfig(dedupe_buffer_size=20 * (4 + 130))  # about 20 keys per pass
    checkpoint = None
    ends = []
    for _ in range(20):
        result = clean(log, checkpoint=checkpoint, config=tight)
        ends.append(result.end_offset)
        checkpoint = result.end_offset
        if checkpoint == log.active_segment.base_offset:
            break
    assert len(ends) > 2 and ends == sorted(ends)
    assert contents(log) == target


def test_the_dedupe_buffer_is_spent_on_distinct_keys_not_records(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, 600, keys=40)
    room_for_50_keys = CleanerConfig(dedupe_buffer_size=50 * (4 + 130))
    result = clean(log, config=room_for_50_keys)
    assert result.end_offset == log.active_segment.base_offset
    assert len(contents(log)) < 40 + 20


def test_groups_respect_segment_bytes(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for i in range(300):  # three of every four records are superseded at once
        put(log, (b"key-%04d" % (i // 4), b"x" * 20))
    before = contents(log)
    segments_before = len(log.segments)
    first = clean(log)
    # A fresh segment is as big as segment.bytes allows: each is a group of its own.
    assert first.groups_swapped == segments_before - 1
    expected = latest_per_key(before, log.active_segment.base_offset)
    assert contents(log) == expected
    second = clean(log)  # the small cleaned segments now merge
    assert second.groups_swapped >= 1
    assert len(log.segments) < segments_before
    assert all(s.size <= COMPACT.segment_bytes for s in log.segments)
    assert contents(log) == expected


# -- indexes, reads and lookups after a pass --------------------------------------------------


def test_indexes_of_cleaned_segments_equal_a_rebuild(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for i in range(150):
        put(log, (b"k%d" % (i % 10), b"v" * (i % 30)), now=1_000 + i)
    clean(log)
    built = [(s.offset_index.all_entries(), s.time_index.all_entries()) for s in log.segments]
    assert any(offsets for offsets, _ in built[:-1])
    log.close()
    rebuilt_log = Log.open(log.dir, COMPACT, now_ms=0, recovery_point=0, had_clean_shutdown=False)
    rebuilt = [
        (s.offset_index.all_entries(), s.time_index.all_entries()) for s in rebuilt_log.segments
    ]
    assert rebuilt == built


def test_reads_and_lookups_across_gaps(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for i in range(60):
        put(log, (b"k%d" % (i % 4), b"v%d" % i), now=1_000 + i)
    clean(log)
    rows = contents(log)
    offsets = [o for o, _, _ in rows]
    for wanted in range(log.log_end_offset):
        data = log.read(wanted, 1 << 20).read_bytes()
        first = next(
            r.offset for _, b in iter_batches(data) for r in decode_records(b) if r.offset >= wanted
        )
        assert first == min(o for o in offsets if o >= wanted)
        found = log.offset_for_timestamp(1_000 + wanted)
        assert found is not None and found.offset == min(o for o in offsets if o >= wanted)


# -- the owner/thread handoff ----------------------------------------------------------------


def job_for(log: Log, now: int = 10_000) -> CleaningJob:
    plan_ = cleaning_plan(log, checkpoint=None, upper_bound=None, now_ms=now)
    return CleaningJob(log, plan_, now, CleanerConfig())


def test_a_swap_is_refused_after_a_truncation(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, 60, keys=3)
    job = job_for(log)
    job.build_offset_map()
    group = job.clean_next_group()
    assert group is not None
    log.truncate_to(55)
    with pytest.raises(ValueError, match="changed"):
        log.replace_segments(group.old, group.new, job.generation)
    job.discard_pending()
    assert leftovers(log.dir) == []


def test_a_swap_is_refused_when_retention_deleted_the_segments(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, 60, keys=3)
    job = job_for(log)
    job.build_offset_map()
    group = job.clean_next_group()
    assert group is not None
    log.delete_records_before(log.segments[2].base_offset)
    with pytest.raises(ValueError, match="changed"):
        log.replace_segments(group.old, group.new, job.generation)


def big_log(tmp_path: Path, records: int, keys: int) -> Log:
    log = open_log(tmp_path, replace(COMPACT, segment_bytes=1 << 20))
    for i in range(records):
        put(log, (b"k%d" % (i % keys), b"v" * 200))
    log.roll(1_000)
    return log


async def when_cleaning_starts(log: Log) -> None:
    """Wait (real-time deadline) until the pass's thread has created a cleaned file."""
    deadline = time.monotonic() + 30
    while not leftovers(log.dir):
        assert time.monotonic() < deadline, "the pass never started writing"
        await trio.sleep(0.001)


def test_a_truncation_during_a_pass_makes_it_incomplete(tmp_path: Path) -> None:
    log = big_log(tmp_path, 8000, keys=4000)
    before = contents(log)
    plan_ = cleaning_plan(log, checkpoint=None, upper_bound=None, now_ms=10_000)
    results: list[CleanResult] = []

    async def main() -> None:
        async def run_pass() -> None:
            config = CleanerConfig(io_buffer_size=1024)
            results.append(await clean_log(log, plan_, now_ms=10_000, config=config))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_pass)
            await when_cleaning_starts(log)
            log.truncate_to(1_000)  # the owner truncates while the thread works

    trio.run(main)
    assert not results[0].completed
    assert leftovers(log.dir) == []
    assert log.log_end_offset == 1_000
    assert contents(log) == before[:1_000]


def test_appends_go_on_while_a_pass_runs(tmp_path: Path) -> None:
    log = open_log(tmp_path, replace(COMPACT, segment_bytes=64 * 1024))
    for i in range(3000):
        put(log, (b"k%d" % (i % 50), b"v" * 100))
    log.roll(1_000)
    plan_ = cleaning_plan(log, checkpoint=None, upper_bound=None, now_ms=10_000)
    appended_during = 0

    async def main() -> CleanResult:
        nonlocal appended_during
        done = trio.Event()

        async def producer() -> None:
            nonlocal appended_during
            while not done.is_set():
                put(log, (b"late", b"x"))
                appended_during += 1
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer)
            result = await clean_log(
                log, plan_, now_ms=10_000, config=CleanerConfig(io_buffer_size=4096)
            )
            done.set()
        return result

    result = trio.run(main)
    assert result.completed and appended_during > 0
    rows = contents(log)
    assert [r for r in rows if r[1] == b"late"] == [
        (o, b"late", b"x") for o in range(3000, 3000 + appended_during)
    ]
    assert len([r for r in rows if r[0] < 3000]) == 50


def test_cancelling_a_pass_stops_its_thread_and_leaves_no_files(tmp_path: Path) -> None:
    log = big_log(tmp_path, 8000, keys=4000)
    before = contents(log)
    plan_ = cleaning_plan(log, checkpoint=None, upper_bound=None, now_ms=10_000)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            config = CleanerConfig(io_buffer_size=1024)
            nursery.start_soon(lambda: clean_log(log, plan_, now_ms=10_000, config=config))
            await when_cleaning_starts(log)
            nursery.cancel_scope.cancel()

    trio.run(main)
    # trio.run returned only after the thread stopped: nothing of the pass remains.
    assert leftovers(log.dir) == []
    assert contents(log) == before


# -- crash protocol, in-process (real SIGKILLs are in the integration test) -------------------


CARRY_CONFIG = replace(COMPACT, segment_bytes=600)


def carry_log(tmp_path: Path, name: str) -> Log:
    """~100-byte batches: S0 (6 batches) keeps only a0; S1 (3 batches) keeps nothing and
    fits beside S0's output; S2 (6 batches) keeps everything and does not fit there;
    S3 rewrites the x keys."""
    log = open_log(tmp_path, CARRY_CONFIG, name=name)
    layout = [
        [b"a0", b"x0", b"x1", b"x2", b"x3", b"x4"],
        [b"x0", b"x1", b"x2"],
        [b"b%d" % i for i in range(6)],
        [b"x%d" % i for i in range(6)],
        [b"c0"],
    ]
    for keys in layout:
        for key in keys:
            put(log, (key, b"v" * 28))
        log.roll(1_000)
    assert [s.base_offset for s in log.segments] == [0, 6, 9, 15, 21, 22]
    return log


def test_a_segment_that_keeps_nothing_never_ends_a_group(tmp_path: Path) -> None:
    log = carry_log(tmp_path, "t-0")
    job = job_for(log)
    job.build_offset_map()
    groups = []
    while (group := job.clean_next_group()) is not None:
        groups.append(([s.base_offset for s in group.old], group.new.next_offset))
        log.replace_segments(group.old, group.new, job.generation)
        job.swapped(group)
    # S1 is carried into the second group, so each swap's range covers what it replaces.
    assert groups == [([0], 1), ([6, 9], 15)]
    assert all(bases[-1] < next_offset for bases, next_offset in groups)


@pytest.mark.parametrize("stage", ["cleaned", "swap", "half-deleted"])
def test_recovery_keeps_either_the_old_or_the_new_segments(tmp_path: Path, stage: str) -> None:
    """A kill during the first group's swap, at each stage of the protocol."""
    log = carry_log(tmp_path, "t-0")
    before = contents(log)
    twin = carry_log(tmp_path, "t-1")
    job = job_for(twin)
    job.build_offset_map()
    first = job.clean_next_group()
    assert first is not None
    twin.replace_segments(first.old, first.new, job.generation)
    after_first_group = contents(twin)
    assert after_first_group != before

    job = job_for(log)
    job.build_offset_map()
    group = job.clean_next_group()
    assert group is not None
    if stage in ("swap", "half-deleted"):
        group.new.change_file_suffixes(CLEANED_SUFFIX, SWAP_SUFFIX)  # the commit point
    if stage == "half-deleted":
        group.old[0].rename_to_deleted()
    recovered = Log.open(log.dir, CARRY_CONFIG, now_ms=0, recovery_point=0)
    assert leftovers(log.dir) == []
    assert contents(recovered) == (before if stage == "cleaned" else after_first_group)


# -- the service in a LogManager -------------------------------------------------------------

TP = TopicPartition("compacted", 0)


def manager_with_log(tmp_path: Path, config: LogConfig = COMPACT, **options: object) -> LogManager:
    manager = LogManager([tmp_path], topic_configs={TP.topic: config}, **options)  # type: ignore[arg-type]
    manager.get_or_create_log(TP)
    return manager


def test_clean_once_cleans_the_compacted_log_and_checkpoints_it(tmp_path: Path) -> None:
    manager = manager_with_log(tmp_path, clock_ms=lambda: 10_000)
    other = manager.get_or_create_log(TopicPartition("plain", 0), LogConfig(segment_bytes=1024))
    log = manager.get_log(TP)
    assert log is not None
    fill(log, 60, keys=3)
    fill(other, 60, keys=3)
    other_before = stored_batches(other)
    result = trio.run(manager.cleaner.clean_once)
    assert result is not None and result.completed
    assert len(contents(log)) < 60
    assert stored_batches(other) == other_before  # cleanup.policy=delete is not compacted
    saved = CleanerOffsetCheckpoint(tmp_path).snapshot()
    assert saved == {("compacted", 0): result.end_offset}
    assert (
        tmp_path / CLEANER_OFFSET_CHECKPOINT
    ).read_text() == f"0\n1\ncompacted 0 {result.end_offset}\n"
    assert trio.run(manager.cleaner.clean_once) is None  # nothing dirty any more
    manager.close()
    reopened = LogManager([tmp_path], topic_configs={TP.topic: COMPACT}, clock_ms=lambda: 10_000)
    assert reopened.cleaner.checkpoint(TP) == result.end_offset
    assert trio.run(reopened.cleaner.clean_once) is None


def test_min_cleanable_dirty_ratio_decides_whether_the_service_cleans(tmp_path: Path) -> None:
    config = replace(COMPACT, min_cleanable_dirty_ratio=0.9)
    manager = manager_with_log(tmp_path, config, clock_ms=lambda: 10_000)
    log = manager.get_log(TP)
    assert log is not None
    fill(log, 60, keys=30)
    log.roll(1_000)
    first = trio.run(manager.cleaner.clean_once)
    assert first is not None  # all dirty: ratio 1.0
    fill(log, 10, keys=30, start=60)  # a little dirt on a big clean part
    log.roll(1_000)
    assert manager.cleaner.plan(TP, log, 10_000).dirty_ratio < 0.9
    assert trio.run(manager.cleaner.clean_once) is None
    manager.update_topic_config(TP.topic, COMPACT)  # min.cleanable.dirty.ratio 0.01
    assert trio.run(manager.cleaner.clean_once) is not None


def test_min_compaction_lag_ms_keeps_young_records(tmp_path: Path) -> None:
    config = replace(COMPACT, min_compaction_lag_ms=5_000)
    now = [10_000]
    manager = manager_with_log(tmp_path, config, clock_ms=lambda: now[0])
    log = manager.get_log(TP)
    assert log is not None
    for i in range(60):
        put(log, (b"k%d" % (i % 3), b"v%d" % i), now=1_000 if i < 30 else 9_000)
    before = contents(log)
    first = trio.run(manager.cleaner.clean_once)
    assert first is not None
    assert first.end_offset <= 30  # stops before the first segment newer than the lag
    assert [r for r in contents(log) if r[0] >= first.end_offset] == [
        r for r in before if r[0] >= first.end_offset
    ]
    now[0] = 20_000
    second = trio.run(manager.cleaner.clean_once)
    assert second is not None and second.end_offset == log.active_segment.base_offset
    assert contents(log) == latest_per_key(before, second.end_offset)


def test_max_compaction_lag_ms_forces_a_pass(tmp_path: Path) -> None:
    config = replace(COMPACT, min_cleanable_dirty_ratio=1.0, max_compaction_lag_ms=5_000)
    now = [3_000]
    manager = manager_with_log(tmp_path, config, clock_ms=lambda: now[0])
    log = manager.get_log(TP)
    assert log is not None
    fill(log, 60, keys=3)  # record timestamps 1000
    assert trio.run(manager.cleaner.clean_once) is None  # ratio can never exceed 1.0
    now[0] = 6_001
    result = trio.run(manager.cleaner.clean_once)
    assert result is not None and result.records_removed > 0


def test_the_service_removes_tombstones_when_their_horizon_passes(tmp_path: Path) -> None:
    now = [10_000]
    manager = manager_with_log(tmp_path, clock_ms=lambda: now[0])
    log = manager.get_log(TP)
    assert log is not None
    put(log, (b"a", b"1"))
    put(log, (b"a", None))
    log.roll(1_000)
    assert trio.run(manager.cleaner.clean_once) is not None
    assert contents(log) == [(1, b"a", None)]
    now[0] = 10_999
    assert trio.run(manager.cleaner.clean_once) is None
    now[0] = 11_000  # delete.retention.ms (1000) after the first pass
    assert trio.run(manager.cleaner.clean_once) is not None
    assert contents(log) == []


def test_the_run_loop_cleans_after_its_backoff_and_deleting_forgets(tmp_path: Path) -> None:
    async def main() -> None:
        manager = manager_with_log(
            tmp_path,
            clock_ms=lambda: int(trio.current_time() * 1000) + 10_000,
            cleaner_config=CleanerConfig(backoff_ms=30_000),
        )
        log = manager.get_log(TP)
        assert log is not None
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            fill(log, 60, keys=3)
            deadline = time.monotonic() + 30
            while manager.cleaner.checkpoint(TP) is None:
                assert time.monotonic() < deadline, "the cleaner never ran"
                await trio.sleep(1)
            assert len(contents(log)) < 60
            nursery.cancel_scope.cancel()
        # Outside run: deleting a log while a flush job runs is a LogManager race of its own.
        manager.delete_log(TP)
        manager.get_or_create_log(TP)  # the same name again starts dirty from 0
        assert manager.cleaner.checkpoint(TP) is None

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_failing_log_is_marked_uncleanable(tmp_path: Path) -> None:
    manager = manager_with_log(tmp_path, clock_ms=lambda: 10_000)
    log = manager.get_log(TP)
    assert log is not None
    fill(log, 60, keys=3)
    victim = log.segments[1].log.path
    with open(victim, "r+b") as f:
        f.seek(70)
        f.write(b"\xff\xff")  # inside the first batch's records: a CRC mismatch
    assert trio.run(manager.cleaner.clean_once) is None
    assert TP in manager.cleaner.uncleanable
    assert trio.run(manager.cleaner.clean_once) is None
    assert leftovers(log.dir) == []


def test_cleaner_offset_checkpoint_file(tmp_path: Path) -> None:
    checkpoint = CleanerOffsetCheckpoint(tmp_path)
    assert checkpoint.get(("t", 0)) is None
    checkpoint.set(("t", 0), 42)
    checkpoint.set(("u", 3), 7)
    checkpoint.write(checkpoint.snapshot())
    assert CleanerOffsetCheckpoint(tmp_path).snapshot() == {("t", 0): 42, ("u", 3): 7}
    assert checkpoint.remove(("t", 0)) and not checkpoint.remove(("t", 0))
    (tmp_path / CLEANER_OFFSET_CHECKPOINT).write_text("0\n5\nbroken\n")
    assert CleanerOffsetCheckpoint(tmp_path).snapshot() == {}


def test_discard_segment_removes_the_cleaned_files(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    fill(log, 60, keys=3)
    job = job_for(log)
    job.build_offset_map()
    group = job.clean_next_group()
    assert group is not None and len(leftovers(log.dir)) == 3
    discard_segment(group.new)
    assert leftovers(log.dir) == []


def test_cleaner_config_checks_and_a_zero_io_buffer(tmp_path: Path) -> None:
    for bad in ({"backoff_ms": -1}, {"dedupe_buffer_size": 0}, {"io_buffer_size": -1}):
        with pytest.raises(ValueError, match=r"log\.cleaner\."):
            CleanerConfig(**bad)  # type: ignore[arg-type]
    log = open_log(tmp_path)
    fill(log, 60, keys=3)
    before = contents(log)
    clean(log, config=CleanerConfig(io_buffer_size=0))  # Kafka allows 0; a floor applies
    assert contents(log) == latest_per_key(before, log.active_segment.base_offset)


def test_compact_delete_logs_are_both_compacted_and_retained(tmp_path: Path) -> None:
    config = replace(COMPACT, cleanup_policy=("compact", "delete"), retention_ms=5_000)
    now = [10_000]
    manager = manager_with_log(tmp_path, config, clock_ms=lambda: now[0])
    log = manager.get_log(TP)
    assert log is not None
    for i in range(60):
        put(log, (b"k%d" % (i % 3), b"v%d" % i), now=1_000 if i < 30 else 9_000)
    # retention.ms removes the segments whose newest record is older than 5 s...
    deleted, _ = manager.run_retention()
    assert deleted > 0 and log.log_start_offset > 0
    remaining = contents(log)
    assert all(offset >= 24 for offset, _, _ in remaining)
    # ...and the cleaner compacts what is left.
    result = trio.run(manager.cleaner.clean_once)
    assert result is not None and result.records_removed > 0
    assert result.first_dirty_offset == log.log_start_offset
    assert contents(log) == latest_per_key(remaining, log.active_segment.base_offset)
