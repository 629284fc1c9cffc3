"""Native (C) vs pure-Python twin speed for klog.native; rows for scripts/bench_storage.py.

``native_rows()`` measures batch scanning (MB/s of v2 batches, CRC-32C included) and
record encode/decode (records/s) with both implementations on the same inputs in the
same run, and returns ``(operation, twin, native, native / twin)`` rows. The workloads are
the ones the broker and the client meet: segments of 1 KiB and 16 KiB batches and a mix
of 1-16 KiB, and batches of 100 records with 100-byte values. Each figure is the best of
several timed repeats, the two implementations taking turns. Run this file directly to
print the table alone:

    python scripts/_bench_native.py

On a shared or noisy machine, ``--runs N`` measures the whole table N times and reports
each row's best rates and the range and median of its per-run ratios. ``--breakdown``
splits the 16 KiB scan into its CRC-32C and its per-batch work on each side, and prints
the ratio native could reach if its per-batch work cost nothing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import statistics
import struct
import time
from collections.abc import Callable
from types import ModuleType

import crc32c

from klog import _native_py

_AFTER_CRC = struct.Struct(">hiqqqhii")
_BEFORE_CRC = struct.Struct(">qiibI")
SEGMENT_BYTES = 8 << 20
RECORDS_PER_BATCH = 100


def _batch(base_offset: int, records: bytes, count: int) -> bytes:
    after = _AFTER_CRC.pack(0, count - 1, 0, 0, -1, -1, -1, count) + records
    head = _BEFORE_CRC.pack(base_offset, 9 + len(after), 0, 2, crc32c.crc32c(after))
    return head + after


def _segment(sizes: Callable[[], int]) -> bytes:
    """About SEGMENT_BYTES of valid batches whose sizes come from sizes()."""
    parts = []
    total = offset = 0
    while total < SEGMENT_BYTES:
        b = _batch(offset, os.urandom(max(0, sizes() - 61)), 1)
        parts.append(b)
        total += len(b)
        offset += 1
    return b"".join(parts)


def _records(with_headers: bool) -> list[tuple[int, int, bytes, bytes, list]]:
    headers = [("trace-id", os.urandom(16)), ("source", b"bench")] if with_headers else []
    return [(i, i * 3, b"key-%06d" % i, os.urandom(100), headers) for i in range(RECORDS_PER_BATCH)]


def _reps_for(fn: Callable[[], object], min_seconds: float) -> int:
    """How many calls of fn take at least min_seconds."""
    fn()
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        if time.perf_counter() - t0 >= min_seconds:
            return reps
        reps *= 2


def _best_rates(
    fns: list[Callable[[], object]], work: float, min_seconds: float = 0.3
) -> list[float]:
    """Work units per second of each fn: the best of 5 timings of it repeated for
    min_seconds. The timings take turns, so a drift in the machine's speed during the
    measurement falls on every fn alike and not on whichever ran last."""
    reps = [_reps_for(fn, min_seconds / 5) for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(5):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(reps[i]):
                fn()
            best[i] = min(best[i], (time.perf_counter() - t0) / reps[i])
    return [work / b for b in best]


def _workloads() -> list[tuple[str, Callable[[ModuleType], Callable[[], object]], float]]:
    rng = random.Random(7)
    segments = {
        "1 KiB": _segment(lambda: 1024),
        "16 KiB": _segment(lambda: 16384),
        "1-16 KiB mix": _segment(lambda: rng.randint(1024, 16384)),
    }
    rows: list[tuple[str, Callable[[ModuleType], Callable[[], object]], float]] = []
    for name, seg in segments.items():
        rows.append(
            (f"scan_batches, {name} batches (MB/s)", lambda m, s=seg: lambda: m.scan_batches(s),
             len(seg) / 1e6)
        )  # fmt: skip
    for label, with_headers in (("", False), (", 2 headers", True)):
        recs = _records(with_headers)
        encoded = _native_py.encode_records(recs)
        rows.append(
            (f"encode_records, 100-byte values{label} (records/s)",
             lambda m, r=recs: lambda: m.encode_records(r), RECORDS_PER_BATCH)
        )  # fmt: skip
        rows.append(
            (f"decode_records, 100-byte values{label} (records/s)",
             lambda m, e=encoded: lambda: m.decode_records(e, RECORDS_PER_BATCH, 0, 0),
             RECORDS_PER_BATCH)
        )  # fmt: skip
    return rows


def native_rows() -> list[tuple[str, float, float, float]]:
    """(operation, twin rate, native rate, native / twin); native is NaN if not built."""
    try:
        c_impl: ModuleType | None = importlib.import_module("klog._native")
    except ImportError:
        c_impl = None
    out = []
    for name, make, work in _workloads():
        if c_impl is None:
            twin, fast = _best_rates([make(_native_py)], work)[0], float("nan")
        else:
            twin, fast = _best_rates([make(_native_py), make(c_impl)], work)
        out.append((name, twin, fast, fast / twin))
    return out


def breakdown_rows() -> list[tuple[str, float, float]]:
    """Nanoseconds per 16 KiB batch, (part, twin, native): the whole scan, the CRC-32C
    of the same bytes computed in one call (what each side's CRC code costs), and the
    rest (walking, checks and the result tuples). The last row is the scan ratio with
    native's rest taken as zero: the most any per-batch saving can give."""
    c_impl = importlib.import_module("klog._native")
    segment = _segment(lambda: 16384)
    batches = len(_native_py.scan_batches(segment)[0])
    # One batch holding the same bytes: scanning it is a single CRC-32C call on each side.
    one_batch = _batch(0, os.urandom(len(segment) - 61), 1)
    scan_twin, scan_native, crc_twin, crc_native = (
        len(segment) / rate / batches * 1e9
        for rate in _best_rates(
            [
                lambda: _native_py.scan_batches(segment),
                lambda: c_impl.scan_batches(segment),
                lambda: _native_py.scan_batches(one_batch),
                lambda: c_impl.scan_batches(one_batch),
            ],
            len(segment),
        )
    )
    return [
        ("scan, ns per 16 KiB batch", scan_twin, scan_native),
        ("  CRC-32C of its bytes", crc_twin, crc_native),
        ("  the rest: walk, checks, result tuple", scan_twin - crc_twin, scan_native - crc_native),
        ("ratio now / if native's rest were free", scan_twin / scan_native, scan_twin / crc_native),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="klog.native: C module vs pure-Python twin")
    parser.add_argument(
        "--runs", type=int, default=1, help="measure the table this many times (default 1)"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="where the 16 KiB scan's time goes, each side"
    )
    args = parser.parse_args(argv)
    if args.breakdown:
        print(f"{'16 KiB batches':<40}  {'twin':>8}  {'native':>8}")
        for part, twin, fast in breakdown_rows():
            unit = "x" if part.startswith("ratio") else ""
            print(f"{part:<40}  {twin:>7.1f}{unit or ' '}  {fast:>7.1f}{unit}")
        return
    runs = args.runs
    tables = [native_rows() for _ in range(max(1, runs))]
    width = max(len(r[0]) for r in tables[0])
    if len(tables) == 1:
        print(f"{'operation':<{width}}  {'twin':>12}  {'native':>12}  {'ratio':>7}")
        for name, twin, fast, ratio in tables[0]:
            print(f"{name:<{width}}  {twin:>12,.0f}  {fast:>12,.0f}  {ratio:>6.1f}x")
        return
    print(
        f"{'operation':<{width}}  {'best twin':>12}  {'best native':>12}  "
        f"{'ratio median':>12}  {f'range of {len(tables)} runs':>17}"
    )
    for i, (name, *_) in enumerate(tables[0]):
        rows = [table[i] for table in tables]
        ratios = [r[3] for r in rows]
        print(
            f"{name:<{width}}  {max(r[1] for r in rows):>12,.0f}  {max(r[2] for r in rows):>12,.0f}"
            f"  {statistics.median(ratios):>11.1f}x  {min(ratios):>8.1f}x - {max(ratios):.1f}x"
        )


if __name__ == "__main__":
    main()
