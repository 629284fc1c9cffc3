"""Deleting a log while its flush waits for a worker thread does not crash the manager."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from klog.segment import LogConfig, LogManager, TopicPartition

TP = TopicPartition("doomed", 0)


def test_flush_of_a_log_deleted_under_it_returns_quietly(tmp_path: Path, batch) -> None:
    async def main() -> None:
        manager = LogManager([tmp_path], LogConfig())
        log = manager.get_or_create_log(TP)
        log.append(batch(3), 7, 0)  # a new epoch: the flush job writes a checkpoint file
        # Hold every worker-thread token so the flush's thread cannot start until the
        # directory has been renamed away by delete_log.
        limiter = trio.to_thread.current_default_thread_limiter()
        holders = [object() for _ in range(int(limiter.total_tokens))]
        for holder in holders:
            await limiter.acquire_on_behalf_of(holder)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.flush, log)
            await trio.testing.wait_all_tasks_blocked()
            manager.delete_log(TP)
            for holder in holders:
                limiter.release_on_behalf_of(holder)
        assert manager.get_log(TP) is None
        assert not (tmp_path / "doomed-0").exists()

    trio.run(main)
