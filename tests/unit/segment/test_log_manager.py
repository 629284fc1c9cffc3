"""LogManager: log dirs, startup recovery, schedules on trio's MockClock, shutdown."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from klog.segment import KafkaStorageError, LogConfig, LogManager, TopicPartition
from klog.segment.checkpoint import OffsetCheckpointFile

TP = TopicPartition("orders", 0)


def mock_clock_ms() -> int:
    """Wall-clock ms that follow trio's (mock) clock, for retention decisions."""
    return int(trio.current_time() * 1000)


async def wait_for(condition: Callable[[], bool]) -> None:
    """Poll a condition on the virtual clock. The deadline is real time: while a worker
    thread runs, MockClock's autojump lets virtual time race ahead, so a virtual
    deadline would measure nothing."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "condition not reached within 60 s"
        await trio.sleep(0.05)


def run(test: Callable[[], Awaitable[None]]) -> None:
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


def test_new_partitions_go_to_the_least_loaded_dir(tmp_path: Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    manager = LogManager(dirs)
    for partition in range(7):
        manager.get_or_create_log(TopicPartition("t", partition))
    counts = [len([p for p in d.iterdir() if p.is_dir()]) for d in dirs]
    assert sorted(counts) == [2, 2, 3]
    assert (dirs[0] / "t-0").is_dir() and (dirs[1] / "t-1").is_dir()
    assert manager.get_or_create_log(TopicPartition("t", 0)) is manager.get_log(
        TopicPartition("t", 0)
    )
    with pytest.raises(ValueError):
        manager.get_or_create_log(TopicPartition("../x", 0))


def test_startup_loads_logs_and_leaves_others_alone(tmp_path: Path, batch) -> None:
    manager = LogManager([tmp_path / "a", tmp_path / "b"])
    for partition in range(2):
        log = manager.get_or_create_log(TopicPartition("t", partition))
        log.append(batch(3), 0, 0)
    manager.close()
    (tmp_path / "a" / "__cluster_metadata-0").mkdir()
    (tmp_path / "a" / "lost+found").mkdir()
    (tmp_path / "a" / "meta.properties").write_text("node.id=1\n")
    again = LogManager([tmp_path / "a", tmp_path / "b"])
    assert sorted(again.logs) == [("t", 0), ("t", 1)]
    assert all(log.log_end_offset == 3 for log in again.logs.values())


def test_a_partition_in_two_dirs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a" / "t-0").mkdir(parents=True)
    (tmp_path / "b" / "t-0").mkdir(parents=True)
    with pytest.raises(KafkaStorageError, match="both"):
        LogManager([tmp_path / "a", tmp_path / "b"])


def test_clean_shutdown_writes_checkpoints_and_the_marker(tmp_path: Path, batch) -> None:
    manager = LogManager([tmp_path], LogConfig(segment_bytes=300))
    log = manager.get_or_create_log(TP)
    for _ in range(10):
        log.append(batch(2), 3, 0)
    log.delete_records_before(5, now_ms=0)
    manager.close(broker_epoch=12)
    marker = tmp_path / ".kafka_cleanshutdown"
    assert json.loads(marker.read_text()) == {"version": 0, "brokerEpoch": 12}
    assert OffsetCheckpointFile(tmp_path / "recovery-point-offset-checkpoint").read() == {
        ("orders", 0): 20
    }
    assert OffsetCheckpointFile(tmp_path / "log-start-offset-checkpoint").read() == {
        ("orders", 0): 5
    }
    assert (tmp_path / "orders-0" / "leader-epoch-checkpoint").read_text() == "0\n1\n3 5\n"
    again = LogManager([tmp_path], LogConfig(segment_bytes=300))
    log = again.get_log(TP)
    assert log is not None
    assert (log.log_start_offset, log.log_end_offset, log.recovery_point) == (5, 20, 20)
    assert not marker.exists()  # a crash from now on must be recovered


def test_unclean_start_recovers_from_the_checkpointed_recovery_point(tmp_path: Path, batch) -> None:
    manager = LogManager([tmp_path], LogConfig(segment_bytes=300))
    log = manager.get_or_create_log(TP)
    for _ in range(10):
        log.append(batch(2), 0, 0)
    active = log.active_segment
    with open(active.log.path, "ab") as f:
        f.write(b"\x00" * 30)  # a torn write; no clean shutdown follows
    OffsetCheckpointFile(tmp_path / "recovery-point-offset-checkpoint").write({TP: 14})
    again = LogManager([tmp_path], LogConfig(segment_bytes=300))
    recovered = again.get_log(TP)
    assert recovered is not None
    assert recovered.log_end_offset == 20
    assert recovered.recovery_point == 14
    assert recovered.active_segment.size == active.size


def test_corrupt_checkpoints_mean_recover_everything(tmp_path: Path, batch) -> None:
    manager = LogManager([tmp_path])
    manager.get_or_create_log(TP).append(batch(2), 0, 0)
    manager.close()
    (tmp_path / ".kafka_cleanshutdown").unlink()
    (tmp_path / "recovery-point-offset-checkpoint").write_text("garbage")
    again = LogManager([tmp_path])
    log = again.get_log(TP)
    assert log is not None and log.recovery_point == 0 and log.log_end_offset == 2


def test_retention_flush_checkpoint_and_deletion_schedules(tmp_path: Path, batch) -> None:
    config = LogConfig(segment_bytes=300, retention_ms=60_000, file_delete_delay_ms=30_000)

    async def main() -> None:
        manager = LogManager(
            [tmp_path],
            config,
            clock_ms=mock_clock_ms,
            retention_check_interval_ms=300_000,
            checkpoint_interval_ms=5_000,
        )
        log = manager.get_or_create_log(TP)
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            for _ in range(20):
                log.append(batch(1, timestamp=mock_clock_ms()), 0, mock_clock_ms())
            assert len(log.segments) > 3
            old_files = [
                Path(item.path)
                for segment in log.segments[:-1]
                for item in (segment.log, segment.offset_index, segment.time_index)
            ]
            # A roll asks for a flush of the old segments; the flusher obliges.
            await wait_for(lambda: log.recovery_point >= log.active_segment.base_offset)
            checkpoint = OffsetCheckpointFile(tmp_path / "recovery-point-offset-checkpoint")
            await wait_for(lambda: checkpoint.read().get(TP, 0) >= log.active_segment.base_offset)
            # Everything but the active segment expires after retention.ms.
            await wait_for(lambda: len(log.segments) == 1)
            assert log.log_start_offset == log.active_segment.base_offset
            assert mock_clock_ms() > 60_000
            # Their files (renamed *.deleted meanwhile) go after file.delete.delay.ms.
            await wait_for(
                lambda: (
                    not any(
                        p.exists() or p.with_name(p.name + ".deleted").exists() for p in old_files
                    )
                )
            )
            assert mock_clock_ms() >= 90_000
            start = OffsetCheckpointFile(tmp_path / "log-start-offset-checkpoint")
            await wait_for(lambda: start.read().get(TP) == log.log_start_offset)
            nursery.cancel_scope.cancel()

    run(main)


def test_retention_respects_the_high_watermark(tmp_path: Path, batch) -> None:
    watermarks = {TP: 3}
    manager = LogManager(
        [tmp_path],
        LogConfig(segment_bytes=300, retention_bytes=0),
        high_watermark=lambda tp: watermarks.get(tp),
    )
    log = manager.get_or_create_log(TP)
    for _ in range(12):
        log.append(batch(1), 0, 0)
    bases = [s.base_offset for s in log.segments]
    deleted, _ = manager.run_retention()
    assert log.segments[0].base_offset == max(b for b in bases if b <= 3)
    assert deleted == bases.index(log.segments[0].base_offset)
    watermarks[TP] = log.log_end_offset
    manager.run_retention()
    assert len(log.segments) == 1


def test_flush_if_due_fsyncs_in_a_thread(tmp_path: Path, batch) -> None:
    async def main() -> None:
        manager = LogManager([tmp_path], LogConfig(flush_messages=1))
        log = manager.get_or_create_log(TP)
        for i in range(5):
            log.append(batch(1), 0, 0)
            assert await manager.flush_if_due(log)
            assert log.recovery_point == i + 1
        assert not await manager.flush_if_due(log)

    run(main)


def test_delete_log_renames_then_removes(tmp_path: Path, batch) -> None:
    async def main() -> None:
        manager = LogManager(
            [tmp_path], LogConfig(file_delete_delay_ms=20_000), clock_ms=mock_clock_ms
        )
        log = manager.get_or_create_log(TP)
        log.append(batch(2), 0, 0)
        piece = log.read(0, 100)
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            manager.delete_log(TP)
            assert manager.get_log(TP) is None
            [renamed] = [p for p in tmp_path.iterdir() if p.name.endswith("-delete")]
            assert renamed.name.startswith("orders-0.")
            assert piece.read_bytes()  # a fetch in flight keeps working
            await wait_for(lambda: not renamed.exists())
            assert mock_clock_ms() >= 20_000
            nursery.cancel_scope.cancel()
        assert "orders" not in (tmp_path / "recovery-point-offset-checkpoint").read_text()

    run(main)


def test_leftover_delete_dirs_are_removed_at_startup(tmp_path: Path) -> None:
    leftover = tmp_path / "old-0.abc-delete"
    leftover.mkdir()
    (leftover / "00000000000000000000.log").write_bytes(b"x")

    async def main() -> None:
        manager = LogManager([tmp_path], clock_ms=mock_clock_ms)
        assert manager.logs == {}
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            await wait_for(lambda: not leftover.exists())
            nursery.cancel_scope.cancel()

    run(main)


def test_update_topic_config_reaches_loaded_logs(tmp_path: Path) -> None:
    manager = LogManager([tmp_path])
    log = manager.get_or_create_log(TP)
    other = manager.get_or_create_log(TopicPartition("other", 0))
    manager.update_topic_config("orders", LogConfig(retention_ms=5))
    assert log.config.retention_ms == 5
    assert other.config.retention_ms == LogConfig().retention_ms
    assert manager.get_or_create_log(TopicPartition("orders", 1)).config.retention_ms == 5
    assert os.path.isdir(tmp_path / "orders-1")


def test_retention_reports_when_the_next_segment_expires(tmp_path: Path, batch) -> None:
    now = [0]
    manager = LogManager(
        [tmp_path], LogConfig(segment_bytes=300, retention_ms=1_000), clock_ms=lambda: now[0]
    )
    log = manager.get_or_create_log(TP)
    for i in range(8):
        log.append(batch(1, timestamp=100 * i), 0, 0)
    first_max = log.segments[0].max_timestamp
    assert manager.run_retention() == (0, first_max + 1_001)
    now[0] = first_max + 1_001
    deleted, _ = manager.run_retention()
    assert deleted == 1
