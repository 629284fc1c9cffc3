#!/usr/bin/env python3
"""Benchmark the partition log (klog.segment) against limits measured in the same run.

Rows:

* append throughput of 1 MiB and 16 KiB batches through ``Log.append`` (validation with
  CRC-32C, offset patching, indexes, one write per call) versus a raw ``os.write`` loop of
  the same bytes to a file in the same directory. Goals: >= 0.8 of raw for 1 MiB batches,
  >= 0.5 for 16 KiB. Both write to the page cache (the default flush policy), best of
  ``--repeat`` alternating runs.
* ``Log.read`` lookup latency (p50/p99) for random offsets in a 10-million-record log,
  built from batches of 1,000 small records.
* recovery time of a 2 GiB unflushed active segment (16 KiB batches) after an unclean
  stop: ``Log.open`` scanning every batch and rebuilding both indexes (page cache warm).
* native vs twin rows from ``scripts/_bench_native.py`` (batch scanning, record
  encode/decode).

Temporary data goes under ``--dir`` (default: the system temp dir) and is deleted after
each section; peak disk use is about 2.1 GiB.

    python scripts/bench_storage.py [--dir DIR] [--append-mib 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

from klog import native
from klog.segment import Log, LogConfig
from klog.wire.records import build_batch

MIB = 1 << 20
_BASE_OFFSET = struct.Struct(">q")
INT_MAX = (1 << 31) - 1


def make_batch(batch_bytes: int, records: int) -> bytearray:
    """A producer batch of ``records`` random values totalling about ``batch_bytes``."""
    value = max(1, batch_bytes // records - 12)
    rng = random.Random(batch_bytes)
    return bytearray(
        build_batch([(None, rng.randbytes(value), [], 1_700_000_000_000) for _ in range(records)])
    )


def reuse(batch: bytearray) -> None:
    """Make an appended batch look freshly produced again. Append patches only the base
    offset and leader epoch, which the CRC does not cover, so resetting the base offset
    is enough (and costs next to nothing)."""
    _BASE_OFFSET.pack_into(batch, 0, 0)


def append_seconds(directory: Path, batch: bytearray, count: int) -> float:
    log = Log.open(directory / "bench-0", LogConfig(segment_bytes=INT_MAX), now_ms=0)
    start = time.perf_counter()
    for _ in range(count):
        reuse(batch)
        log.append(batch, 0, 0)
    elapsed = time.perf_counter() - start
    log.close()
    shutil.rmtree(directory / "bench-0")
    return elapsed


def raw_write_seconds(directory: Path, batch: bytearray, count: int) -> float:
    path = directory / "raw.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    start = time.perf_counter()
    for _ in range(count):
        os.write(fd, batch)
    elapsed = time.perf_counter() - start
    os.close(fd)
    path.unlink()
    return elapsed


def bench_append(directory: Path, total_mib: int, repeat: int) -> list[tuple[str, ...]]:
    rows = []
    for label, batch_bytes, records, goal in (
        ("append 1 MiB batches", MIB, 64, 0.8),
        ("append 16 KiB batches", 16 * 1024, 16, 0.5),
    ):
        batch = make_batch(batch_bytes, records)
        count = total_mib * MIB // len(batch)
        megabytes = count * len(batch) / MIB
        # A first write run warms the page cache allocator; then the two alternate so
        # neither gets a systematically luckier machine state. Best run of each counts.
        raw_write_seconds(directory, batch, count)
        raw = klog = float("inf")
        for _ in range(repeat):
            raw = min(raw, raw_write_seconds(directory, batch, count))
            klog = min(klog, append_seconds(directory, batch, count))
        ratio = raw / klog
        rows.append(
            (
                label,
                f"{megabytes / klog:,.0f} MiB/s",
                f"{megabytes / raw:,.0f} MiB/s (os.write)",
                f"{ratio:.2f}",
                f">= {goal} {'ok' if ratio >= goal else 'MISSED'}",
            )
        )
    return rows


def bench_read(directory: Path, records_total: int, lookups: int) -> list[tuple[str, ...]]:
    per_batch = 1_000
    config = LogConfig(segment_bytes=64 * MIB)
    log = Log.open(directory / "read-0", config, now_ms=0)
    batch = bytearray(build_batch([(None, b"v%06d" % i, [], 1) for i in range(per_batch)]))
    for _ in range(records_total // per_batch):
        reuse(batch)
        log.append(batch, 0, 0)
    rng = random.Random(1)
    offsets = [rng.randrange(log.log_end_offset) for _ in range(lookups)]
    latencies = []
    for offset in offsets:
        start = time.perf_counter_ns()
        log.read(offset, MIB)
        latencies.append(time.perf_counter_ns() - start)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] / 1000
    p99 = latencies[int(len(latencies) * 0.99)] / 1000
    size = log.size
    segments = len(log.segments)
    log.close()
    shutil.rmtree(directory / "read-0")
    return [
        (
            f"read() lookup, {log.log_end_offset / 1e6:.0f}M records",
            f"p50 {p50:.1f} us, p99 {p99:.1f} us",
            f"{size / MIB:,.0f} MiB in {segments} segments, {lookups:,} random offsets",
            "",
            "",
        )
    ]


def bench_recovery(directory: Path, segment_mib: int) -> list[tuple[str, ...]]:
    batch = make_batch(16 * 1024, 16)
    log = Log.open(directory / "recover-0", LogConfig(segment_bytes=INT_MAX), now_ms=0)
    for _ in range(min(segment_mib * MIB, INT_MAX) // len(batch)):
        reuse(batch)
        log.append(batch, 0, 0)
    size, end, batches = log.size, log.log_end_offset, log.log_end_offset // 16
    del log  # an unclean stop: nothing flushed, closed or trimmed
    start = time.perf_counter()
    recovered = Log.open(directory / "recover-0", LogConfig(segment_bytes=INT_MAX))
    elapsed = time.perf_counter() - start
    assert recovered.log_end_offset == end, (recovered.log_end_offset, end)
    recovered.close()
    shutil.rmtree(directory / "recover-0")
    return [
        (
            f"recovery of {size / (1 << 30):.2f} GiB active segment",
            f"{elapsed:.2f} s ({size / MIB / elapsed:,.0f} MiB/s)",
            f"{batches:,} batches of 16 KiB, page cache warm, scan by klog.native "
            f"({native.IMPLEMENTATION})",
            "",
            "",
        )
    ]


def native_section() -> list[tuple[str, ...]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from _bench_native import native_rows
    except ImportError as exc:
        return [("native vs twin", "missing", f"scripts/_bench_native.py: {exc}", "", "")]
    return [
        (
            f"native vs twin: {name}",
            f"{fast:,.0f}",
            f"{twin:,.0f} (twin)",
            f"{ratio:.1f}x",
            f">= 5x {'ok' if ratio >= 5 else 'MISSED'}",
        )
        for name, twin, fast, ratio in native_rows()
    ]


def print_table(rows: list[tuple[str, ...]]) -> None:
    header = ("benchmark", "klog", "limit / context", "ratio", "goal")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="where temporary data goes")
    parser.add_argument("--append-mib", type=int, default=512, help="bytes per append run")
    parser.add_argument("--repeat", type=int, default=3, help="append runs; best is kept")
    parser.add_argument("--records", type=int, default=10_000_000, help="records in read()")
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--recovery-mib", type=int, default=2048, help="segment to recover")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="klog-bench-", dir=args.dir))
    try:
        rows = bench_append(directory, args.append_mib, args.repeat)
        rows += bench_read(directory, args.records, args.lookups)
        rows += bench_recovery(directory, args.recovery_mib)
        rows += native_section()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"klog.native implementation: {native.IMPLEMENTATION}; data under {directory}")
    print_table(rows)


if __name__ == "__main__":
    main()
