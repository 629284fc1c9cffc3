"""Log.append / append_as_follower: validation, offset assignment, one write, indexes."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import crc32c
import pytest

from klog.segment import (
    CorruptBatchError,
    CrcMismatchError,
    InvalidBatchLengthError,
    InvalidRecordError,
    LogConfig,
    OffsetsOutOfOrderError,
    RecordBatchTooLargeError,
    RecordTooLargeError,
    TruncatedBatchError,
    UnexpectedAppendOffsetError,
    UnsupportedMagicError,
)
from klog.wire.records import (
    CRC_POS,
    RECORDS_COUNT_POS,
    TimestampType,
    build_batch,
    decode_records,
    iter_batches,
)


def stored(log) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(Path(s.log.path).read_bytes() for s in log.segments)


def test_append_assigns_offsets_and_leader_epoch_in_place(open_log, batch) -> None:
    log = open_log()
    first, second = batch(3), batch(2)
    info = log.append(first, leader_epoch=7, now_ms=5)
    assert (info.base_offset, info.last_offset, info.batch_count) == (0, 2, 1)
    assert info.log_append_time == -1
    info = log.append(second, leader_epoch=7, now_ms=5)
    assert (info.base_offset, info.last_offset) == (3, 4)
    assert log.log_end_offset == 5
    headers = [header for header, _ in iter_batches(stored(log))]  # CRCs still valid
    assert [(h.base_offset, h.last_offset, h.partition_leader_epoch) for h in headers] == [
        (0, 2, 7),
        (3, 4, 7),
    ]
    # The caller's buffer was patched, not copied: it is what the file holds.
    assert bytes(second) == stored(log)[len(first) :]
    assert [tuple(e) for e in log.leader_epoch_cache.entries()] == [(7, 0)]


def test_many_batches_in_one_call_are_one_write(open_log, batch) -> None:
    log = open_log()
    data = batch(2) + batch(1) + batch(4, timestamp=9_000)
    info = log.append(data, leader_epoch=0, now_ms=0)
    assert (info.base_offset, info.last_offset, info.batch_count) == (0, 6, 3)
    assert info.max_timestamp == 9_003 and info.offset_of_max_timestamp == 6
    assert info.valid_bytes == len(data) == log.size
    records = [r for _, b in iter_batches(stored(log)) for r in decode_records(b)]
    assert [r.offset for r in records] == list(range(7))


def test_read_only_buffers_are_copied_and_appended(open_log, batch) -> None:
    log = open_log()
    data = bytes(batch(2))
    log.append(data, leader_epoch=1, now_ms=0)
    log.append(data, leader_epoch=1, now_ms=0)
    assert [h.base_offset for h, _ in iter_batches(stored(log))] == [0, 2]


def corrupt(data: bytearray, position: int, value: int) -> bytearray:
    data[position] = value
    return data


@pytest.mark.parametrize(
    ("mutate", "error", "words"),
    [
        (lambda b: corrupt(b, 40, b[40] ^ 0xFF), CrcMismatchError, "CRC"),
        (lambda b: corrupt(b, 16, 1), UnsupportedMagicError, "magic"),
        (lambda b: b[:-3], TruncatedBatchError, "truncated"),
        (lambda b: b + b"\x00" * 5, TruncatedBatchError, "truncated"),
        (lambda b: struct.pack(">qi", 0, 10) + b[12:], InvalidBatchLengthError, "length"),
    ],
)
def test_bad_framing_raises_a_specific_error_and_writes_nothing(
    open_log, batch, mutate, error, words: str
) -> None:
    log = open_log()
    log.append(batch(1), leader_epoch=0, now_ms=0)
    size = log.size
    with pytest.raises(error, match=words) as caught:
        log.append(mutate(batch(2)), 0, 0)
    assert isinstance(caught.value, CorruptBatchError)
    assert log.size == size and log.log_end_offset == 1


def test_error_names_the_position_of_the_bad_batch(open_log, batch) -> None:
    log = open_log()
    good = batch(1)
    bad = batch(1)
    bad[50] ^= 1
    with pytest.raises(CrcMismatchError) as caught:
        log.append(good + bad, 0, 0)
    assert caught.value.position == len(good)
    assert str(len(good)) in str(caught.value)
    assert log.size == 0  # the good batch before it is not written either


def test_client_batch_rules(open_log, batch) -> None:
    log = open_log()
    with pytest.raises(InvalidRecordError, match="no record batches"):
        log.append(b"", 0, 0)
    nonzero = bytearray(build_batch([(b"k", b"v", [], 1)], base_offset=5))
    with pytest.raises(InvalidRecordError, match="base offset 5"):
        log.append(nonzero, 0, 0)
    miscounted = batch(3)
    struct.pack_into(">i", miscounted, RECORDS_COUNT_POS, 2)
    struct.pack_into(">I", miscounted, CRC_POS, crc32c.crc32c(bytes(miscounted[21:])))
    with pytest.raises(InvalidRecordError, match="2 records"):
        log.append(miscounted, 0, 0)
    assert log.log_end_offset == 0


def test_size_limits(open_log, batch) -> None:
    log = open_log(LogConfig(max_message_bytes=200, segment_bytes=1000))
    with pytest.raises(RecordTooLargeError, match=r"max\.message\.bytes"):
        log.append(batch(1, value_size=300), 0, 0)
    with pytest.raises(RecordBatchTooLargeError, match=r"segment\.bytes"):
        log.append(b"".join(batch(1, value_size=100) for _ in range(8)), 0, 0)
    log.append(batch(1, value_size=100), 0, 0)
    assert log.log_end_offset == 1


def test_log_append_time_stamps_batches_and_fixes_the_crc(open_log, batch) -> None:
    log = open_log(LogConfig(message_timestamp_type="LogAppendTime"))
    info = log.append(batch(2, timestamp=100), leader_epoch=0, now_ms=777_000)
    assert info.log_append_time == 777_000 and info.max_timestamp == 777_000
    [(header, data)] = list(iter_batches(stored(log)))
    assert header.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert header.max_timestamp == 777_000
    assert [r.timestamp for r in decode_records(data)] == [777_000, 777_000]


def test_follower_append_keeps_offsets_and_epochs(open_log) -> None:
    log = open_log()
    leader_data = build_batch(
        [(b"a", b"1", [], 10), (b"b", b"2", [], 11)], base_offset=0, partition_leader_epoch=3
    ) + build_batch([(b"c", b"3", [], 12)], base_offset=5, partition_leader_epoch=4)
    info = log.append_as_follower(leader_data, now_ms=0)
    assert (info.base_offset, info.last_offset) == (0, 5)
    assert log.log_end_offset == 6
    assert stored(log) == leader_data  # byte for byte
    assert [tuple(e) for e in log.leader_epoch_cache.entries()] == [(3, 0), (4, 5)]
    with pytest.raises(UnexpectedAppendOffsetError):
        log.append_as_follower(build_batch([(b"x", b"y", [], 1)], base_offset=4), now_ms=0)
    backwards = build_batch([(b"x", b"y", [], 1)], base_offset=9) + build_batch(
        [(b"x", b"y", [], 1)], base_offset=8
    )
    with pytest.raises(OffsetsOutOfOrderError):
        log.append_as_follower(backwards, now_ms=0)
    assert log.log_end_offset == 6


def test_indexes_get_an_entry_per_index_interval(open_log, batch) -> None:
    log = open_log(LogConfig(index_interval_bytes=300))
    sizes = []
    for i in range(20):
        data = batch(2, timestamp=1000 + i * 10)
        sizes.append(len(data))
        log.append(data, 0, 0)
    segment = log.active_segment
    entries = segment.offset_index.all_entries()
    # Kafka's rule: an entry once more than index.interval.bytes were appended since the
    # previous one; it names the batch's last offset and the batch's position.
    expected, since, position = [], 0, 0
    for i, size in enumerate(sizes):
        if since > 300:
            expected.append((2 * i + 1, position))
            since = 0
        since += size
        position += size
    assert entries == expected
    assert segment.time_index.all_entries() == [
        (1000 + (offset // 2) * 10 + 1, offset) for offset, _ in expected
    ]


def test_full_disk_leaves_the_log_unchanged(tmp_path: Path, batch) -> None:
    """Real ENOSPC-like failure: RLIMIT_FSIZE in a child makes the write fail part-way."""
    script = f"""
import resource, signal, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
from klog.segment import Log, LogConfig, KafkaStorageError
from klog.wire.records import build_batch
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
log = Log.open({str(tmp_path / "t-0")!r}, LogConfig(), now_ms=0)
log.append(bytearray(build_batch([(b"k", bytes(1000), [], 1)])), 0, 0)
size = log.size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 5000, size + 5000))
try:
    log.append(bytearray(build_batch([(b"k", bytes(20000), [], 2)])), 0, 0)
except KafkaStorageError as exc:
    assert log.size == size and log.log_end_offset == 1, (log.size, size)
    log.append(bytearray(build_batch([(b"k", bytes(100), [], 3)])), 0, 0)
    print("ok", repr(exc.__cause__))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok") and "File too large" in result.stdout
    segment = tmp_path / "t-0" / "00000000000000000000.log"
    assert [h.base_offset for h, _ in iter_batches(segment.read_bytes())] == [0, 1]
    assert os.path.getsize(segment) < 5000
