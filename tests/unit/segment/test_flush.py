"""Flush policy and flush jobs: what is due, what moves the recovery point."""

from __future__ import annotations

import threading

from klog.segment import LeaderEpochFileCache, LogConfig


def test_default_policy_never_flushes_appends(open_log, batch) -> None:
    log = open_log()
    for _ in range(100):
        log.append(batch(1), 0, 0)
    log.flush()  # the epoch checkpoint of the first append
    log.append(batch(1), 0, 0)
    assert not log.flush_due(now_ms=10**12)
    assert log.recovery_point == 100


def test_flush_messages(open_log, batch) -> None:
    log = open_log(LogConfig(flush_messages=3))
    log.append(batch(1), 0, 0)
    log.flush()
    log.append(batch(1), 0, 0)
    assert not log.flush_due(0)
    log.append(batch(2), 0, 0)
    assert log.flush_due(0)
    job = log.start_flush()
    job.run()
    log.finish_flush(job, now_ms=0)
    assert log.recovery_point == 4 and not log.flush_due(0)


def test_flush_ms_counts_from_the_last_flush(open_log, batch) -> None:
    log = open_log(LogConfig(flush_ms=1_000))
    log.append(batch(1), 0, 0)
    log.flush(now_ms=5_000)
    log.append(batch(1), 0, 0)
    assert not log.flush_due(5_999)
    assert log.flush_due(6_000)
    log.flush(now_ms=6_000)
    assert not log.flush_due(10**9)  # nothing unflushed


def test_a_roll_asks_for_a_flush_of_the_old_segment(open_log, batch) -> None:
    log = open_log(LogConfig(segment_bytes=300))
    log.append(batch(1), 0, 0)
    log.flush()
    while len(log.segments) == 1:
        log.append(batch(1), 0, 0)
    assert log.flush_due(0)
    log.flush()
    assert log.recovery_point == log.log_end_offset


def test_flush_writes_the_epoch_checkpoint(open_log, batch) -> None:
    log = open_log()
    log.append(batch(1), 4, 0)
    assert log.flush_due(0)
    path = log.dir / "leader-epoch-checkpoint"
    assert LeaderEpochFileCache(path).entries() == []
    log.flush()
    assert [tuple(e) for e in LeaderEpochFileCache(path).entries()] == [(4, 0)]
    assert not log.flush_due(0)


def test_truncation_during_a_flush_keeps_the_recovery_point_honest(open_log, batch) -> None:
    log = open_log(LogConfig(flush_messages=1))
    for _ in range(10):
        log.append(batch(1), 0, 0)
    job = log.start_flush()
    log.truncate_to(4)
    for _ in range(10):
        log.append(batch(1), 0, 0)
    job.run()
    log.finish_flush(job, 0)
    # The job covered offsets up to 10 of the old history, not the new 4..13: it must
    # not move the recovery point over them.
    assert log.recovery_point == 0
    log.flush()
    assert log.recovery_point == 14


def test_flush_job_runs_in_a_thread_while_the_owner_appends(open_log, batch) -> None:
    log = open_log(LogConfig(segment_bytes=2000))
    for _ in range(50):
        log.append(batch(1), 0, 0)
    job = log.start_flush()
    worker = threading.Thread(target=job.run)
    worker.start()
    for _ in range(50):
        log.append(batch(1), 0, 0)
    worker.join(timeout=30)
    assert not worker.is_alive()
    log.finish_flush(job, 0)
    assert log.recovery_point == 50
    assert log.flush_due(0)  # the 50 appended meanwhile rolled segments
