"""Log cleaner benchmark: one pass over a compacted log of ``--size`` MiB and ``--keys``
keys (100-record batches), per codec and value size. Prints a table:

* ``decode s``: the limit measured in the same run, reading every segment and decoding
  every record once (what any pass must at least do, here twice: map, then copy);
* ``clean s`` and its ratio to that limit, MiB/s and records/s;
* ``loop gap``: the longest time trio's event loop went without running a 1 ms timer
  while the pass ran (what produce/fetch would wait: the GIL, never the cleaner itself);
* ``swap``: the longest ``Log.replace_segments`` (renames and one directory fsync, on the
  event loop).

Usage: python scripts/bench_cleaner.py [--size 100] [--keys 10000] [--segment-mib 64]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import trio

from klog import native
from klog.segment import Log, LogConfig
from klog.segment.cleaner import clean_log, cleaning_plan
from klog.wire.compression import Compression
from klog.wire.records import build_batch, decode_record_tuples, iter_batches

CASES = [(Compression.NONE, 100), (Compression.ZSTD, 100), (Compression.NONE, 1000)]


def build(
    directory: Path, size: int, keys: int, codec: Compression, value_size: int, segment: int
) -> tuple[Log, int]:
    rng = random.Random(1)
    config = LogConfig(cleanup_policy=("compact",), segment_bytes=segment)
    log = Log.open(directory, config, now_ms=0)
    records = 0
    half = value_size // 2
    while log.size < size:
        rows = [
            (
                b"key-%06d" % rng.randrange(keys),
                rng.randbytes(half) + bytes(value_size - half),
                [],
                1_000,
            )
            for _ in range(100)
        ]
        log.append(bytearray(build_batch(rows, compression=codec)), 0, 1_000)
        records += 100
    log.roll(1_000)
    log.flush()
    return log, records


def decode_all(log: Log) -> float:
    start = time.perf_counter()
    for segment in log.segments:
        for _, batch in iter_batches(segment.log.read_bytes(0, segment.size)):
            decode_record_tuples(batch)
    return time.perf_counter() - start


def timed_pass(log: Log) -> tuple[float, float, float, int]:
    plan = cleaning_plan(log, checkpoint=None, upper_bound=None, now_ms=10_000)
    swaps: list[float] = []
    replace = log.replace_segments

    def timed_replace(*args: object) -> None:
        start = time.perf_counter()
        replace(*args)  # type: ignore[arg-type]
        swaps.append(time.perf_counter() - start)

    log.replace_segments = timed_replace  # type: ignore[method-assign]
    gaps: list[float] = []

    async def main() -> tuple[float, int]:
        done = trio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await trio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last - 0.001)
                last = now

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            start = time.perf_counter()
            result = await clean_log(log, plan, now_ms=10_000)
            elapsed = time.perf_counter() - start
            done.set()
        return elapsed, result.records_removed

    elapsed, removed = trio.run(main)
    return elapsed, max(gaps, default=0.0), max(swaps, default=0.0), removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100, help="MiB of log to clean")
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--segment-mib", type=int, default=64)
    args = parser.parse_args()
    print(f"native: {native.IMPLEMENTATION}; {args.size} MiB, {args.keys} keys, ", end="")
    print(f"{args.segment_mib} MiB segments")
    columns = [("case", 14), ("records", 10), ("decode s", 10), ("clean s", 9)]
    columns += [("x decode", 9), ("MiB/s", 8), ("rec/s", 10), ("loop gap", 10), ("swap", 8)]
    header = columns[0][0].ljust(columns[0][1])
    header += "".join(name.rjust(width) for name, width in columns[1:])
    print(header)
    print("-" * len(header))
    for codec, value_size in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            log, records = build(
                Path(tmp) / "bench-0",
                args.size << 20,
                args.keys,
                codec,
                value_size,
                args.segment_mib << 20,
            )
            size = log.size
            decode_s = decode_all(log)
            clean_s, gap, swap, _ = timed_pass(log)
            log.close()
        case = f"{codec.name.lower()} {value_size}B"
        print(
            f"{case:<14}{records:>10}{decode_s:>10.2f}{clean_s:>9.2f}{clean_s / decode_s:>9.1f}"
            f"{size / 2**20 / clean_s:>8.0f}{records / clean_s:>10.0f}"
            f"{gap * 1000:>8.1f}ms{swap * 1000:>6.1f}ms"
        )


if __name__ == "__main__":
    main()
