"""SIGKILL during log cleaning: a child process runs a cleaning pass over a prepared
compacted log (cleaner_crash_child.py) and is killed at a random moment; the log is then
reopened with full recovery, as a restarted broker would, and must hold exactly

    the first k groups of the pass cleaned and everything after them untouched

for some k (0 = the pre-clean log, all groups = the post-clean log): no leftover
``.cleaned``/``.swap`` files, no record lost that the pass keeps, no record that was
never written, offsets unchanged, and reads from every kept offset answer correctly.
The moments are spread over the whole pass (measured by one uninterrupted run)."""

from __future__ import annotations

import os
import random
import runpy
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from klog.segment import Log
from klog.wire.records import decode_records, iter_batches

CHILD = Path(__file__).with_name("cleaner_crash_child.py")
CHILD_API = runpy.run_path(str(CHILD))
CONFIG = CHILD_API["CONFIG"]
ROUNDS = 16

Row = tuple[int, bytes | None, bytes | None]


def rows_of(directory: Path) -> tuple[list[Row], list[int]]:
    """Reopen with full recovery; the rows and the segments' base offsets."""
    log = Log.open(directory, CONFIG, now_ms=0, recovery_point=0)
    rows: list[Row] = []
    for segment in log.segments:
        for _, batch in iter_batches(segment.log.read_bytes(0, segment.size)):
            rows.extend((r.offset, r.key, r.value) for r in decode_records(batch))
    # Every kept record is where a consumer asking for its offset finds it.
    for offset, key, value in rows[:: max(1, len(rows) // 50)]:
        first = next(iter_batches(log.read(offset, 1 << 16).read_bytes()))[1]
        assert (offset, key, value) in [(r.offset, r.key, r.value) for r in decode_records(first)]
    bases = [s.base_offset for s in log.segments]
    log.close()
    return rows, bases


def run_child(directory: Path, kill_after: float | None) -> tuple[bool, float]:
    """Run the child; SIGKILL it ``kill_after`` seconds after it is ready (None: let it
    finish). Returns (finished, seconds from ready to done or kill)."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(directory)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None and child.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    output = b""
    ready_at = None
    deadline = time.monotonic() + 60
    try:
        while b"done" not in output:
            now = time.monotonic()
            assert now < deadline, f"child stuck: {output!r}"
            if ready_at is not None and kill_after is not None and now >= ready_at + kill_after:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
                return False, now - ready_at
            timeout = 0.5 if ready_at is None or kill_after is None else ready_at + kill_after - now
            if selector.select(timeout=max(0.0, timeout)):
                chunk = os.read(child.stdout.fileno(), 4096)
                if not chunk:
                    raise AssertionError(f"child exited: {child.stderr.read()!r}")
                output += chunk
                if ready_at is None and b"ready\n" in output:
                    ready_at = time.monotonic()
        assert ready_at is not None
        finished_after = time.monotonic() - ready_at
        assert child.wait(timeout=30) == 0
        return True, finished_after
    finally:
        selector.close()
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


def split_point(rows: list[Row], bases: list[int], pre: list[Row], post: list[Row]) -> int:
    """The offset below which ``rows`` is the cleaned log and from which it is the
    original one; fails if there is none."""
    for boundary in [*bases, 1 << 62]:
        if [r for r in rows if r[0] < boundary] == [r for r in post if r[0] < boundary] and [
            r for r in rows if r[0] >= boundary
        ] == [r for r in pre if r[0] >= boundary]:
            return boundary
    raise AssertionError("the log is neither the old nor the new one at any group boundary")


@pytest.mark.slow
def test_sigkill_during_cleaning_leaves_the_old_or_the_new_segments(tmp_path: Path) -> None:
    rng = random.Random(20_240_611)
    template = tmp_path / "template" / "compacted-0"
    CHILD_API["prepare"](template, seed=7)
    pre, _ = rows_of(template)

    full = tmp_path / "full" / "compacted-0"
    shutil.copytree(template, full)
    finished, duration = run_child(full, None)
    assert finished
    post, _ = rows_of(full)
    assert len(post) < len(pre) // 10
    assert set(post) <= set(pre)

    outcomes = []
    for round_ in range(ROUNDS):
        directory = tmp_path / f"round-{round_}" / "compacted-0"
        shutil.copytree(template, directory)
        finished, _ = run_child(directory, rng.uniform(0, duration * 1.1))
        in_flight = [p.name for p in directory.iterdir() if p.name.endswith((".cleaned", ".swap"))]
        rows, bases = rows_of(directory)
        assert not [n for n in os.listdir(directory) if n.endswith((".cleaned", ".swap"))]
        boundary = split_point(rows, bases, pre, post)
        assert set(post) <= set(rows) <= set(pre)
        outcomes.append("done" if finished else "untouched" if rows == pre else "partial")
        outcomes[-1] += f"@{boundary}" if outcomes[-1] == "partial" else ""
        outcomes[-1] += f" (recovered {len(in_flight)} in-flight files)" if in_flight else ""
    # The kills landed at different stages of the pass, not all before or after it.
    assert len({o.split("@")[0] for o in outcomes}) >= 2, outcomes
