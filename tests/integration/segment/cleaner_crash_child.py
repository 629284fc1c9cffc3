"""Child process of the cleaner crash test: opens a prepared compacted log and runs one
full cleaning pass over it (``clean_log``: key map and cleaned groups in worker threads,
one ``.cleaned`` -> ``.swap`` -> final swap per group), printing ``ready`` before and
``done <groups swapped>`` after. The parent SIGKILLs it somewhere in between.

Usage: python cleaner_crash_child.py LOG_DIR

The parent also loads this file (``runpy.run_path``) for ``CONFIG``, ``NOW_MS`` and
``prepare``, so both sides agree on the log's layout.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import trio

from klog.segment import Log, LogConfig
from klog.segment.cleaner import clean_log, cleaning_plan
from klog.wire.records import build_batch

CONFIG = LogConfig(
    cleanup_policy=("compact",),
    segment_bytes=24 * 1024,
    index_interval_bytes=1024,
    segment_index_bytes=64 * 1024,
    retention_ms=-1,
)
NOW_MS = 1_000_000


def prepare(directory: Path, seed: int, records: int = 16_000, keys: int = 500) -> None:
    """A cleanly closed log of one-to-four-record batches over ``keys`` keys, about 5%
    tombstones; every value names its offset so a misplaced record cannot pass."""
    rng = random.Random(seed)
    log = Log.open(directory, CONFIG, now_ms=0)
    offset = 0
    while offset < records:
        rows = []
        for _ in range(rng.randint(1, 4)):
            key = b"key-%d" % rng.randrange(keys)
            value = None if rng.random() < 0.05 else b"%d:" % (offset + len(rows)) + bytes(80)
            rows.append((key, value, [], 1_000 + offset))
        log.append(bytearray(build_batch(rows)), 0, 1_000)
        offset += len(rows)
    log.roll(1_000)
    log.flush()
    log.close()


async def main(directory: str) -> None:
    log = Log.open(Path(directory), CONFIG, now_ms=NOW_MS, had_clean_shutdown=True)
    plan = cleaning_plan(log, checkpoint=None, upper_bound=None, now_ms=NOW_MS)
    print("ready", flush=True)
    result = await clean_log(log, plan, now_ms=NOW_MS)
    print(f"done {result.groups_swapped}", flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
