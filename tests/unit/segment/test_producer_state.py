"""Idempotent producers' state: Kafka's sequence and epoch rules, snapshots, and how a
``Log`` keeps the state through appends, duplicates, restarts, truncation and expiry."""

from __future__ import annotations

import struct
from pathlib import Path

import crc32c
import pytest
import trio
import trio.testing

from klog.segment import InvalidRecordError, Log, LogConfig, LogManager, TopicPartition
from klog.segment.errors import (
    InvalidProducerEpochError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
)
from klog.segment.producer_state import (
    INT32_MAX,
    AppendOrigin,
    BatchMetadata,
    CorruptSnapshotError,
    ProducerBatch,
    ProducerEntry,
    ProducerStateManager,
    decode_snapshot,
    encode_snapshot,
    next_sequence,
    snapshot_path,
)
from klog.wire.records import build_batch

CLIENT = AppendOrigin.CLIENT
SMALL = LogConfig(segment_bytes=400, index_interval_bytes=100, segment_index_bytes=4096)


def pbatch(
    pid: int, epoch: int, seq: int, count: int = 1, offset: int = 0, ts: int = 1_000
) -> ProducerBatch:
    return ProducerBatch(
        pid, epoch, seq, next_sequence(seq, count - 1), offset, offset + count - 1, ts
    )


def idempotent(
    pid: int,
    epoch: int,
    seq: int,
    count: int = 1,
    ts: int = 1_000,
    transactional: bool = False,
) -> bytearray:
    return bytearray(
        build_batch(
            [(b"k", b"v%d" % i, [], ts) for i in range(count)],
            producer_id=pid,
            producer_epoch=epoch,
            base_sequence=seq,
            is_transactional=transactional,
        )
    )


def plain(count: int = 1, ts: int = 1_000) -> bytearray:
    return bytearray(build_batch([(b"k", b"v", [], ts) for _ in range(count)]))


def append(log: Log, data: bytearray, now_ms: int = 1_000):
    return log.append(data, 0, now_ms, CLIENT)


# -- the rules (the class on its own) ----------------------------------------------------


def test_an_unknown_producer_may_start_at_any_sequence() -> None:
    state = ProducerStateManager(Path("/nonexistent"))
    updated = state.prepare([pbatch(7, 3, 42, count=2)])
    assert isinstance(updated, dict)
    state.commit(updated)
    entry = state.entry(7)
    assert entry is not None
    assert (entry.epoch, entry.last_seq, entry.batches[-1].last_offset) == (3, 43, 1)


def test_prepare_changes_nothing_until_commit() -> None:
    state = ProducerStateManager(Path("/nonexistent"))
    state.prepare([pbatch(1, 0, 0)])
    assert state.entry(1) is None


@pytest.mark.parametrize(
    ("seq", "error"),
    [(1, None), (2, OutOfOrderSequenceError), (0, None), (5, OutOfOrderSequenceError)],
)
def test_a_known_producer_must_continue_its_sequence(seq: int, error: type | None) -> None:
    state = ProducerStateManager(Path("/nonexistent"))
    state.commit(state.prepare([pbatch(1, 0, 0)]))  # type: ignore[arg-type]
    batch = pbatch(1, 0, seq, offset=1)
    if seq == 0:
        # Same epoch and sequence range as the stored batch: a duplicate, not an error.
        assert state.prepare([batch]) == BatchMetadata(0, 0, 0, 0, 1_000)
    elif error is None:
        assert isinstance(state.prepare([batch]), dict)
    else:
        with pytest.raises(error):
            state.prepare([batch])


def test_older_epoch_is_fenced_newer_epoch_must_start_at_zero() -> None:
    state = ProducerStateManager(Path("/nonexistent"))
    state.commit(state.prepare([pbatch(1, 5, 0, count=3)]))  # type: ignore[arg-type]
    with pytest.raises(InvalidProducerEpochError):
        state.prepare([pbatch(1, 4, 3, offset=3)])
    with pytest.raises(OutOfOrderSequenceError):
        state.prepare([pbatch(1, 6, 3, offset=3)])
    updated = state.prepare([pbatch(1, 6, 0, offset=3)])
    assert isinstance(updated, dict)
    state.commit(updated)
    # The new epoch starts a new history: the old epoch's batch no longer counts.
    assert state.entry(1).batches == (BatchMetadata(0, 0, 3, 3, 1_000),)  # type: ignore[union-attr]


def test_sequence_wraps_past_int32_max() -> None:
    state = ProducerStateManager(Path("/nonexistent"))
    state.commit(state.prepare([pbatch(1, 0, INT32_MAX - 1, count=2)]))  # type: ignore[arg-type]
    assert state.entry(1).last_seq == INT32_MAX  # type: ignore[union-attr]
    with pytest.raises(OutOfOrderSequenceError):
        state.prepare([pbatch(1, 0, 1, offset=2)])
    wrapped = pbatch(1, 0, 0, count=3, offset=2)
    state.commit(state.prepare([wrapped]))  # type: ignore[arg-type]
    assert state.entry(1).last_seq == 2  # type: ignore[union-attr]
    # A batch that itself crosses the wrap.
    assert next_sequence(INT32_MAX - 1, 3) == 1


def test_only_the_last_five_batches_are_duplicates() -> None:
    state = ProducerStateManager(Path("/nonexistent"))
    for seq in range(7):
        state.commit(state.prepare([pbatch(1, 0, seq, offset=seq)]))  # type: ignore[arg-type]
    assert [b.first_seq for b in state.entry(1).batches] == [2, 3, 4, 5, 6]  # type: ignore[union-attr]
    assert state.prepare([pbatch(1, 0, 2, offset=99)]) == BatchMetadata(2, 2, 2, 2, 1_000)
    with pytest.raises(OutOfOrderSequenceError):
        state.prepare([pbatch(1, 0, 1, offset=99)])


def test_a_duplicate_needs_the_exact_sequence_range() -> None:
    state = ProducerStateManager(Path("/nonexistent"))
    state.commit(state.prepare([pbatch(1, 0, 0, count=3)]))  # type: ignore[arg-type]
    with pytest.raises(OutOfOrderSequenceError):
        state.prepare([pbatch(1, 0, 0, count=2, offset=3)])


def test_batches_of_one_request_are_checked_in_order() -> None:
    state = ProducerStateManager(Path("/nonexistent"))
    state.commit(state.prepare([pbatch(1, 0, 0)]))  # type: ignore[arg-type]
    ok = state.prepare([pbatch(1, 0, 1, offset=1), pbatch(1, 0, 2, offset=2)])
    assert isinstance(ok, dict) and ok[1].last_seq == 2
    with pytest.raises(OutOfOrderSequenceError):
        state.prepare([pbatch(1, 0, 1, offset=1), pbatch(1, 0, 3, offset=2)])


def test_coordinator_appends_only_check_the_epoch() -> None:
    state = ProducerStateManager(Path("/nonexistent"))
    coordinator = AppendOrigin.COORDINATOR
    state.commit(state.prepare([pbatch(1, 2, 0)], coordinator))  # type: ignore[arg-type]
    assert isinstance(state.prepare([pbatch(1, 2, 9, offset=1)], coordinator), dict)
    with pytest.raises(InvalidProducerEpochError):
        state.prepare([pbatch(1, 1, 1, offset=1)], coordinator)


def test_expiry_uses_the_last_batch_timestamp() -> None:
    state = ProducerStateManager(Path("/nonexistent"))
    state.apply([pbatch(1, 0, 0, ts=100), pbatch(2, 0, 0, offset=1, ts=500)])
    assert state.remove_expired(now_ms=1_099, expiration_ms=1_000) == 0
    assert state.remove_expired(now_ms=1_100, expiration_ms=1_000) == 1
    assert list(state.producers) == [2]


# -- snapshot files ----------------------------------------------------------------------


def test_snapshot_round_trip_keeps_five_batches_per_producer() -> None:
    entries = [
        ProducerEntry(
            1,
            3,
            tuple(
                BatchMetadata(s, s + 1, 10 + 2 * s, 11 + 2 * s, 100 + s) for s in range(0, 10, 2)
            ),
            108,
        ),
        ProducerEntry(2, 0, (BatchMetadata(INT32_MAX, 1, 50, 52, 7),), 7),
        ProducerEntry(3, 4, (), 9),
    ]
    assert decode_snapshot(encode_snapshot(entries)) == entries


def test_snapshot_has_kafkas_version_1_layout() -> None:
    entry = ProducerEntry(77, 2, (BatchMetadata(5, 7, 100, 102, 1234),), 1234)
    data = encode_snapshot([entry])
    body = struct.pack(">i", 1) + struct.pack(">qhiqiqiq", 77, 2, 7, 102, 2, 1234, -1, -1)
    assert data == struct.pack(">hI", 1, crc32c.crc32c(body)) + body


def test_a_kafka_reader_sees_the_last_batch_of_each_producer() -> None:
    """Kafka keeps the last entry it reads per producer id; klog writes the newest last."""
    batches = tuple(BatchMetadata(s, s, s, s, s) for s in range(3))
    data = encode_snapshot([ProducerEntry(1, 0, batches, 2)])
    last_per_pid = {}
    for fields in struct.iter_unpack(">qhiqiqiq", data[10:]):
        last_per_pid[fields[0]] = fields
    assert last_per_pid[1][2:4] == (2, 2)  # last sequence, last offset


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:-1],
        lambda d: d[:4],
        lambda d: d[:-1] + bytes([d[-1] ^ 1]),
        lambda d: b"\x00\x02" + d[2:],
    ],
    ids=["short", "no-count", "bit-flip", "version"],
)
def test_damaged_snapshots_are_refused(damage) -> None:
    data = encode_snapshot([ProducerEntry(1, 0, (BatchMetadata(0, 0, 0, 0, 0),), 0)])
    with pytest.raises(CorruptSnapshotError):
        decode_snapshot(damage(data))


# -- a Log ------------------------------------------------------------------------------


def test_a_retried_batch_gets_its_original_offsets_and_is_not_written(open_log) -> None:
    log = open_log()
    append(log, plain(2))
    first = append(log, idempotent(9, 0, 0, count=3))
    end, size = log.log_end_offset, log.size
    again = append(log, idempotent(9, 0, 0, count=3))
    assert (again.base_offset, again.last_offset, again.batch_count) == (2, 4, 0)
    assert (first.base_offset, first.last_offset) == (2, 4)
    assert (log.log_end_offset, log.size) == (end, size)


def test_a_gap_or_an_old_epoch_writes_nothing(open_log) -> None:
    log = open_log()
    append(log, idempotent(9, 1, 0))
    with pytest.raises(OutOfOrderSequenceError):
        append(log, idempotent(9, 1, 2))
    with pytest.raises(InvalidProducerEpochError):
        append(log, idempotent(9, 0, 1))
    assert log.log_end_offset == 1
    assert append(log, idempotent(9, 1, 1)).base_offset == 1


def test_one_bad_batch_refuses_the_whole_append(open_log) -> None:
    log = open_log()
    append(log, idempotent(9, 0, 0))
    with pytest.raises(OutOfOrderSequenceError):
        append(log, idempotent(9, 0, 1) + idempotent(8, 0, 0) + idempotent(9, 0, 5))
    assert log.log_end_offset == 1
    assert log.producer_state.entry(8) is None
    assert log.producer_state.entry(9).last_seq == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (idempotent(9, 0, -1), InvalidRecordError),
        (idempotent(9, 0, 0, transactional=True), InvalidTxnStateError),
    ],
    ids=["no-sequence", "transactional"],
)
def test_client_batches_kafka_refuses(open_log, data: bytearray, error: type) -> None:
    log = open_log()
    with pytest.raises(error):
        append(log, data)
    assert log.log_end_offset == 0


def test_plain_batches_leave_the_state_alone(open_log) -> None:
    log = open_log()
    append(log, plain(3))
    assert log.producer_state.producers == {}


def test_log_append_time_duplicates_answer_the_stamped_time(open_log) -> None:
    log = open_log(LogConfig(message_timestamp_type="LogAppendTime"))
    written = append(log, idempotent(9, 0, 0), now_ms=5_000)
    again = append(log, idempotent(9, 0, 0), now_ms=6_000)
    assert written.log_append_time == again.log_append_time == 5_000


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "unclean"])
def test_duplicates_are_detected_after_a_restart(log_dir: Path, clean: bool) -> None:
    log = Log.open(log_dir, SMALL, now_ms=0)
    for seq in range(12):  # several rolls
        append(log, idempotent(9, 0, seq))
    assert len(log.segments) > 2
    if clean:
        log.flush()
        log.close()
    reopened = Log.open(log_dir, SMALL, had_clean_shutdown=clean, now_ms=2_000)
    for seq in range(7, 12):
        assert append(reopened, idempotent(9, 0, seq)).batch_count == 0
    assert append(reopened, idempotent(9, 0, 12)).base_offset == 12


def test_a_restart_reads_the_snapshot_instead_of_the_segments_before_it(log_dir: Path) -> None:
    log = Log.open(log_dir, SMALL, now_ms=0)
    for seq in range(12):
        append(log, idempotent(9, 0, seq))
    active = log.active_segment.base_offset
    assert snapshot_path(log_dir, active).exists()
    # A snapshot that disagrees with the log wins: proof the segments before it are
    # not scanned, only the active one after it.
    forged = ProducerEntry(5, 4, (BatchMetadata(0, 0, 0, 0, 1_000),), 1_000)
    snapshot_path(log_dir, active).write_bytes(encode_snapshot([forged]))
    reopened = Log.open(log_dir, SMALL, now_ms=2_000)
    assert reopened.producer_state.entry(5) == forged
    scanned = reopened.producer_state.entry(9)
    assert scanned is not None and scanned.batches[-1].last_offset == 11
    assert all(b.first_offset >= active for b in scanned.batches)


def test_a_corrupt_snapshot_is_skipped_and_the_log_scanned(log_dir: Path) -> None:
    log = Log.open(log_dir, SMALL, now_ms=0)
    for seq in range(12):
        append(log, idempotent(9, 0, seq))
    for offset in log.producer_state.snapshot_offsets:
        snapshot_path(log_dir, offset).write_bytes(b"\x00\x01garbage")
    reopened = Log.open(log_dir, SMALL, now_ms=2_000)
    assert reopened.producer_state.entry(9).last_seq == 11  # type: ignore[union-attr]
    assert not any(log_dir.glob("*.snapshot"))


def test_no_snapshot_after_a_clean_shutdown_skips_the_scan(log_dir: Path) -> None:
    """Kafka's upgrade rule: data from before snapshots existed is not scanned."""
    log = Log.open(log_dir, SMALL, now_ms=0)
    append(log, idempotent(9, 0, 0))
    log.flush()
    for path in log_dir.glob("*.snapshot"):
        path.unlink()
    assert (
        Log.open(log_dir, SMALL, had_clean_shutdown=True, now_ms=0).producer_state.producers == {}
    )
    assert 9 in Log.open(log_dir, SMALL, now_ms=0).producer_state.producers


def test_snapshots_beyond_the_log_end_are_removed_on_load(log_dir: Path) -> None:
    log = Log.open(log_dir, SMALL, now_ms=0)
    append(log, idempotent(9, 0, 0))
    log.flush()
    bogus = snapshot_path(log_dir, 50)
    bogus.write_bytes(encode_snapshot([ProducerEntry(9, 7, (), 1_000)]))
    reopened = Log.open(log_dir, SMALL, now_ms=0)
    assert not bogus.exists()
    assert reopened.producer_state.entry(9).epoch == 0  # type: ignore[union-attr]


def test_truncation_rebuilds_the_state_from_what_remains(log_dir: Path) -> None:
    log = Log.open(log_dir, SMALL, now_ms=0)
    for seq in range(12):
        append(log, idempotent(9, 0, seq))
    log.truncate_to(9, now_ms=1_000)
    assert not [o for o in log.producer_state.snapshot_offsets if o > 9]
    assert log.producer_state.entry(9).last_seq == 8  # type: ignore[union-attr]
    # The truncated batch is new again; the one before it is still a duplicate.
    assert append(log, idempotent(9, 0, 8)).batch_count == 0
    assert append(log, idempotent(9, 0, 9)).base_offset == 9


def test_truncating_fully_forgets_every_producer(log_dir: Path) -> None:
    log = Log.open(log_dir, SMALL, now_ms=0)
    for seq in range(12):
        append(log, idempotent(9, 0, seq))
    log.truncate_fully_and_start_at(100, now_ms=1_000)
    assert log.producer_state.producers == {}
    assert not any(log_dir.glob("*.snapshot"))
    assert append(log, idempotent(9, 0, 3)).base_offset == 100


def test_deleting_records_keeps_producers_until_they_expire(log_dir: Path) -> None:
    """As Kafka: the log start offset passing a producer's batches does not forget it."""
    log = Log.open(log_dir, SMALL, now_ms=0)
    for seq in range(12):
        append(log, idempotent(9, 0, seq))
    append(log, plain(1))
    log.delete_records_before(12, now_ms=1_000)
    assert log.log_start_offset == 12
    assert append(log, idempotent(9, 0, 11)).batch_count == 0
    assert log.remove_expired_producers(now_ms=1_000 + 86_400_000) == 1
    assert append(log, idempotent(9, 0, 11)).base_offset == 13  # unknown: accepted


def test_snapshots_of_deleted_segments_go_with_them(log_dir: Path) -> None:
    log = Log.open(log_dir, LogConfig(**{**SMALL.__dict__, "file_delete_delay_ms": 0}), now_ms=0)
    for seq in range(12):
        append(log, idempotent(9, 0, seq))
    before = log.producer_state.snapshot_offsets
    log.delete_records_before(log.active_segment.base_offset, now_ms=1_000)
    remaining = [o for o in before if o >= log.log_start_offset]
    assert log.producer_state.snapshot_offsets == remaining
    due = log.due_deletions(1_000)
    assert {p.name for p in due if ".snapshot" in p.name} == {
        f"{o:020d}.snapshot.deleted" for o in before if o not in remaining
    }


def test_follower_appends_record_producers_without_checking(open_log) -> None:
    log = open_log()
    data = idempotent(9, 3, 40, count=2)
    struct.pack_into(">q", data, 0, 5)
    log.append_as_follower(data, now_ms=0)
    entry = log.producer_state.entry(9)
    assert entry is not None and (entry.epoch, entry.last_seq) == (3, 41)
    assert entry.batches[-1][2:4] == (5, 6)


def test_expired_producers_are_left_out_when_loading(log_dir: Path) -> None:
    log = Log.open(log_dir, SMALL, now_ms=0)
    append(log, idempotent(9, 0, 0, ts=1_000))
    append(log, idempotent(8, 0, 0, ts=50_000))
    log.flush()
    log.close()
    reopened = Log.open(
        log_dir, SMALL, had_clean_shutdown=True, now_ms=60_000, producer_id_expiration_ms=20_000
    )
    assert list(reopened.producer_state.producers) == [8]


def test_the_log_manager_expires_idle_producers_periodically(tmp_path: Path) -> None:
    """producer.id.expiration.ms checked every producer.id.expiration.check.interval.ms,
    on trio's MockClock (the log's clock follows it)."""

    def clock_ms() -> int:
        return int(trio.current_time() * 1000)

    async def main() -> None:
        manager = LogManager(
            [tmp_path],
            clock_ms=clock_ms,
            producer_id_expiration_ms=50_000,
            producer_id_expiration_check_interval_ms=10_000,
        )
        log = manager.get_or_create_log(TopicPartition("t", 0))
        append(log, idempotent(9, 0, 0, ts=clock_ms()), now_ms=clock_ms())
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            await trio.sleep(45)
            assert 9 in log.producer_state.producers
            await trio.sleep(15)  # the check at 50 s finds it idle for 50 s
            assert log.producer_state.producers == {}
            append(log, idempotent(8, 0, 0, ts=clock_ms()), now_ms=clock_ms())
            manager.producer_id_expiration_ms = 5_000
            assert log.producer_id_expiration_ms == 5_000
            await trio.sleep(15)  # past the check at 70 s: waking at 70 s too could run first
            assert log.producer_state.producers == {}
            nursery.cancel_scope.cancel()
        manager.close()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
