"""MetadataLog on a real segment Log: framing, one batch per append, commit, replay, recovery."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import trio
import trio.testing

from klog.controller import MetadataLog, MetadataLogFailedError, MetadataReplayError
from klog.segment import Log, LogConfig
from klog.wire import ConfigRecord, FeatureLevelRecord, NoOpRecord, TopicRecord
from klog.wire.primitives import encode_unsigned_varint
from klog.wire.records import (
    ControlRecordType,
    build_batch,
    control_record_key,
    decode_records,
    iter_batches,
    parse_batch_header,
)


def topic(name: str) -> TopicRecord:
    return TopicRecord(name=name, topic_id=uuid.uuid4())


def append_all(metadata_log: MetadataLog, batches: list[list[object]]) -> list[int]:
    async def main() -> list[int]:
        return [await metadata_log.append(records) for records in batches]

    return trio.run(main)


def stored_batches(log: Log) -> list[bytes]:
    data = log.read(log.log_start_offset, 1 << 30).read_bytes()
    return [bytes(batch) for _, batch in iter_batches(data)]


BATCHES = [
    [FeatureLevelRecord(name="metadata.version", feature_level=21)],
    [topic("a"), ConfigRecord(resource_type=2, resource_name="a", name="k", value="v")],
    [topic("b"), topic("c"), NoOpRecord()],
]


def test_each_append_is_one_batch_committed_and_replayable(metadata_dir: Path) -> None:
    log = Log.open(metadata_dir)
    metadata_log = MetadataLog(log)
    assert metadata_log.next_offset == 0
    assert append_all(metadata_log, BATCHES) == [0, 2, 5]
    assert metadata_log.next_offset == 6
    # Committed on one node means flushed: the recovery point covers every batch.
    assert log.recovery_point == log.log_end_offset == metadata_log.committed_end == 6
    assert list(metadata_log.replay()) == [(BATCHES[0], 0), (BATCHES[1], 2), (BATCHES[2], 5)]
    assert len(stored_batches(log)) == 3


def test_records_use_kafkas_metadata_frame_and_the_quorum_epoch(metadata_dir: Path) -> None:
    log = Log.open(metadata_dir)
    metadata_log = MetadataLog(log)
    append_all(metadata_log, [BATCHES[1]])
    (batch,) = stored_batches(log)
    header = parse_batch_header(batch)
    assert header.partition_leader_epoch == metadata_log.quorum.epoch == 1
    assert not header.is_control and header.records_count == 2
    first, second = decode_records(batch)
    assert first.key is None and first.headers == []
    # frame version 1, record type (TopicRecord = 2), record version 0, then the body.
    assert first.value == b"\x01\x02\x00" + BATCHES[1][0].encode(0)
    assert second.value[:3] == b"\x01" + encode_unsigned_varint(4) + b"\x00"


def test_reopening_replays_the_same_batches_in_a_new_epoch(metadata_dir: Path) -> None:
    log = Log.open(metadata_dir)
    append_all(MetadataLog(log), BATCHES[:2])
    log.close()
    for clean in (True, False):
        reopened = Log.open(metadata_dir, had_clean_shutdown=clean)
        metadata_log = MetadataLog(reopened)
        assert metadata_log.quorum.epoch == 2
        assert list(metadata_log.replay()) == [(BATCHES[0], 0), (BATCHES[1], 2)]
        reopened.close()
    metadata_log = MetadataLog(Log.open(metadata_dir))
    assert append_all(metadata_log, [BATCHES[2]]) == [5]
    assert [last for _, last in metadata_log.replay()] == [0, 2, 5]
    assert metadata_log.log.leader_epoch_cache.latest_epoch == 2


def test_a_torn_last_batch_is_dropped_on_recovery(metadata_dir: Path) -> None:
    log = Log.open(metadata_dir)
    append_all(MetadataLog(log), BATCHES)
    segment_path = log.active_segment.log.path
    sizes = [len(batch) for batch in stored_batches(log)]
    log.close()
    # A crash in the middle of writing the last batch.
    os.truncate(segment_path, sizes[0] + sizes[1] + sizes[2] // 2)
    recovered = Log.open(metadata_dir, had_clean_shutdown=False)
    metadata_log = MetadataLog(recovered)
    assert list(metadata_log.replay()) == [(BATCHES[0], 0), (BATCHES[1], 2)]
    assert metadata_log.next_offset == 3
    assert append_all(metadata_log, [BATCHES[2]]) == [5]
    assert [last for _, last in metadata_log.replay()] == [0, 2, 5]


def test_replay_spans_segments_and_batches_bigger_than_a_read(metadata_dir: Path) -> None:
    config = LogConfig(segment_bytes=3 << 20, max_message_bytes=8 << 20)
    log = Log.open(metadata_dir, config)
    metadata_log = MetadataLog(log)
    # Strings are at most 32767 bytes: a big batch is many records.
    big = [
        ConfigRecord(resource_type=2, resource_name="t", name=f"k{i}", value="x" * 30_000)
        for i in range(85)
    ]
    small = [[topic(f"t{i}")] for i in range(60)]
    batches = [*small[:30], big, *small[30:], big]
    append_all(metadata_log, batches)
    assert len(log.segments) == 2
    assert max(len(batch) for batch in stored_batches(log)) > 2 << 20
    replayed = list(metadata_log.replay())
    assert [records for records, _ in replayed] == batches
    assert [last for _, last in replayed] == [*range(30), 114, *range(115, 145), 229]


def test_control_batches_are_skipped(metadata_dir: Path) -> None:
    log = Log.open(metadata_dir)
    append_all(MetadataLog(log), [BATCHES[0]])
    leader_change = build_batch(
        [(control_record_key(ControlRecordType.LEADER_CHANGE), b"\x00\x00", (), 0)],
        is_control=True,
    )
    log.append(bytearray(leader_change), 1, 0)
    metadata_log = MetadataLog(log)
    assert append_all(metadata_log, [BATCHES[1]]) == [3]
    assert list(metadata_log.replay()) == [(BATCHES[0], 0), (BATCHES[1], 3)]


@pytest.mark.parametrize(
    ("value", "error"),
    [(None, "has no value"), (b"\x07\x02\x00", "frame version"), (b"\x01\x63\x00", "type 99")],
)
def test_records_that_are_not_metadata_records_fail_replay(
    metadata_dir: Path, value: bytes | None, error: str
) -> None:
    log = Log.open(metadata_dir)
    log.append(bytearray(build_batch([(None, value, (), 0)])), 1, 0)
    with pytest.raises(MetadataReplayError, match=error):
        list(MetadataLog(log).replay())


def test_an_empty_append_is_a_programming_error(metadata_dir: Path) -> None:
    metadata_log = MetadataLog(Log.open(metadata_dir))
    with pytest.raises(ValueError):
        append_all(metadata_log, [[]])


class BrokenQuorum:
    """A quorum whose commits fail: what a failed fsync or a lost election looks like."""

    epoch = 3
    committed_end = 0

    async def commit(self, last_offset: int) -> None:
        raise OSError(5, "Input/output error")


def test_a_failed_commit_stops_all_later_appends(metadata_dir: Path) -> None:
    metadata_log = MetadataLog(Log.open(metadata_dir), BrokenQuorum())
    with pytest.raises(MetadataLogFailedError, match="offsets 0-0") as raised:
        append_all(metadata_log, [BATCHES[0]])
    assert isinstance(raised.value.__cause__, OSError)
    with pytest.raises(MetadataLogFailedError, match="earlier"):
        append_all(metadata_log, [BATCHES[1]])
    assert metadata_log.next_offset == 1
    assert list(metadata_log.replay()) == []


class StuckQuorum:
    """A quorum that never commits (a majority is unreachable)."""

    epoch = 1
    committed_end = 0

    async def commit(self, last_offset: int) -> None:
        await trio.sleep_forever()


def test_a_cancelled_commit_leaves_the_log_failed(metadata_dir: Path) -> None:
    metadata_log = MetadataLog(Log.open(metadata_dir), StuckQuorum())

    async def main() -> None:
        with trio.move_on_after(1) as scope:
            await metadata_log.append(BATCHES[0])
        assert scope.cancelled_caught
        with pytest.raises(MetadataLogFailedError):
            await metadata_log.append(BATCHES[1])

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
