"""Crash tests with real processes: SIGKILL a child that appends with an fsync per
append, at random moments, several times over the same log, and check after each kill
that the reopened log holds every acknowledged batch, no partial batch, and indexes and
leader epochs consistent with the data. Every other round also leaves a torn batch after
the kill, as a write cut short by a power cut would."""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from klog.segment import LogManager, TopicPartition
from klog.wire.records import build_batch, iter_batches

CHILD = Path(__file__).with_name("crash_child.py")
TP = TopicPartition("crash", 0)
ROUNDS = 12


def run_child_until_killed(
    log_dir: Path, seed: int, epoch: int, rng: random.Random
) -> list[tuple[int, int, int]]:
    """Start the child, let it acknowledge batches for a random while, SIGKILL it, and
    return every batch it acknowledged (including lines still in the pipe)."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(log_dir), str(seed), str(epoch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    buffered = b""
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    # Kill after a random number of acknowledgements or a random time, whichever first.
    target_acks = rng.choice([0, 1, 10, 50, 200])
    deadline = time.monotonic() + 30
    kill_at = None
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"child made no progress: {child.stderr.read()!r}")
            if selector.select(timeout=0.05):
                chunk = os.read(child.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"child exited: {child.stderr.read()!r}")
                buffered += chunk
            if kill_at is None and b"ready\n" in buffered:
                kill_at = time.monotonic() + rng.uniform(0.05, 1.0)
            acks = buffered.count(b"\n") - 1
            if kill_at is not None and (acks >= target_acks > 0 or time.monotonic() >= kill_at):
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        buffered += child.stdout.read()
    finally:
        selector.close()
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    lines = buffered.split(b"\n")[1:-1]  # drop "ready" and any torn last line
    return [tuple(int(x) for x in line.split()) for line in lines]  # type: ignore[misc]


def tear_tail(log_dir: Path, rng: random.Random) -> None:
    """What a write cut short leaves (SIGKILL rarely manages it; a power cut does): the
    first part of a batch after the last acknowledged one."""
    active = max((log_dir / f"{TP.topic}-{TP.partition}").glob("*.log"))
    batch = build_batch([(b"torn", rng.randbytes(rng.randrange(1, 5000)), [], 1)])
    with open(active, "ab") as f:
        f.write(batch[: rng.randrange(1, len(batch))])


def check_log(log_dir: Path, acknowledged: dict[int, tuple[int, int]], rng: random.Random) -> int:
    """Reopen like a restarted broker and check every promise; returns the log end."""
    manager = LogManager([log_dir])
    log = manager.get_log(TP)
    assert log is not None
    stored: dict[int, tuple[int, int, int]] = {}
    expected_next = log.segments[0].base_offset
    assert log.log_start_offset == expected_next
    for segment in log.segments:
        data = segment.log.read_bytes(0, segment.size)
        position = 0
        for header, _ in iter_batches(data):  # raises on any partial or corrupt batch
            assert header.base_offset == expected_next, "offsets must be contiguous"
            assert log.leader_epoch_cache.epoch_for_offset(header.base_offset) == (
                header.partition_leader_epoch
            )
            stored[header.base_offset] = (header.last_offset, header.crc, position)
            expected_next = header.last_offset + 1
            position += header.size
        assert position == segment.size
        for offset, index_position in segment.offset_index.all_entries():
            header = segment.log.read_header(index_position)
            assert header is not None and header.base_offset <= offset <= header.last_offset
        for _, offset in segment.time_index.all_entries():
            assert segment.base_offset <= offset < segment.next_offset
    assert log.log_end_offset == expected_next
    for base, (last, crc) in acknowledged.items():
        if last >= log.log_start_offset:  # retention.bytes may have deleted older ones
            assert stored.get(base, (None, None))[:2] == (last, crc), f"lost batch at {base}"
    if acknowledged:
        assert log.log_end_offset >= max(last for last, _ in acknowledged.values()) + 1
    live = range(log.log_start_offset, log.log_end_offset)
    for offset in rng.sample(live, min(50, len(live))):
        header = next(iter_batches(log.read(offset, 1).read_bytes()))[0]
        assert header.base_offset <= offset <= header.last_offset
    return log.log_end_offset


@pytest.mark.slow
def test_acknowledged_batches_survive_sigkill(tmp_path: Path) -> None:
    seed = int(os.environ.get("KLOG_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    acknowledged: dict[int, tuple[int, int]] = {}
    log_dir = tmp_path / "data"
    total_acks = 0
    for round_number in range(ROUNDS):
        acks = run_child_until_killed(log_dir, rng.randrange(1 << 30), round_number, rng)
        total_acks += len(acks)
        for base, last, crc in acks:
            acknowledged[base] = (last, crc)
        if round_number % 2:
            tear_tail(log_dir, rng)
        try:
            check_log(log_dir, acknowledged, rng)
        except AssertionError as exc:
            raise AssertionError(f"round {round_number}, KLOG_CRASH_SEED={seed}: {exc}") from exc
    assert total_acks > ROUNDS, f"the children acknowledged too little to test (seed {seed})"
