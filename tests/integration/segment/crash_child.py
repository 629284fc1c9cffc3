"""Child process of the crash tests: appends forever through a LogManager with an
fsync per append (flush.messages=1) and reports every acknowledged batch on stdout as
``<base offset> <last offset> <crc>``, one line per batch, after its fsync returned.

Usage: python crash_child.py LOG_DIR SEED LEADER_EPOCH
"""

from __future__ import annotations

import random
import struct
import sys

import trio

from klog.segment import LogConfig, LogManager, TopicPartition
from klog.wire.records import CRC_POS, build_batch

CONFIG = LogConfig(
    flush_messages=1,
    segment_bytes=4 << 20,
    index_interval_bytes=4096,
    segment_index_bytes=16 * 1024,
    max_message_bytes=2 << 20,
    retention_ms=-1,  # the records' timestamps are from 1970
    retention_bytes=16 << 20,  # keeps the test's disk use small
)
TP = TopicPartition("crash", 0)


def random_batch(rng: random.Random) -> bytearray:
    count = rng.choice([1, 3, 20])
    # Mostly small batches; large ones make a kill in the middle of a write likely.
    size = rng.choice([10, 200, 2_000, 100_000, 1_000_000]) // count + 1
    return bytearray(
        build_batch([(b"k%d" % i, rng.randbytes(size), [], 1_000 + i) for i in range(count)])
    )


async def main(log_dir: str, seed: int, epoch: int) -> None:
    rng = random.Random(seed)
    manager = LogManager([log_dir], CONFIG, checkpoint_interval_ms=300, flush_check_interval_ms=100)
    log = manager.get_or_create_log(TP)
    out = sys.stdout.buffer
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        out.write(b"ready\n")
        out.flush()
        while True:
            data = random_batch(rng)
            info = log.append(data, leader_epoch=epoch, now_ms=0)
            await manager.flush_if_due(log)
            (crc,) = struct.unpack_from(">I", data, CRC_POS)
            out.write(b"%d %d %d\n" % (info.base_offset, info.last_offset, crc))
            out.flush()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
