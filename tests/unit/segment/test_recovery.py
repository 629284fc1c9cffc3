"""Recovery after unclean stops and corruption: always exactly the valid prefix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from klog import _native_py, native
from klog.segment import Log, LogConfig
from klog.segment.filenames import INDEX_SUFFIXES
from klog.wire.records import build_batch, iter_batches

CONFIG = LogConfig(segment_bytes=2048, index_interval_bytes=200, segment_index_bytes=4096)


@pytest.fixture(autouse=True, params=["native", "twin"])
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every recovery test with klog.native's chosen scanner and with the twin."""
    if request.param == "twin":
        monkeypatch.setattr(native, "scan_batches", _native_py.scan_batches)
    return request.param


def build(directory: Path, batches: int = 60) -> tuple[Log, list[tuple[int, bytes]]]:
    """A log of ``batches`` batches of 3 records; returns it and (segment base, bytes)."""
    log = Log.open(directory, CONFIG, now_ms=0)
    for i in range(batches):
        data = bytearray(build_batch([(b"k", bytes(40), [], 5_000 + 3 * i + j) for j in range(3)]))
        log.append(data, leader_epoch=i // 20, now_ms=0)
    files = [(s.base_offset, Path(s.log.path).read_bytes()) for s in log.segments]
    return log, files


def contents(log: Log) -> bytes:
    return b"".join(Path(s.log.path).read_bytes() for s in log.segments)


def index_snapshot(log: Log) -> list[tuple[list, list]]:
    return [(s.offset_index.all_entries(), s.time_index.all_entries()) for s in log.segments]


def index_files(directory: Path) -> dict[str, bytes]:
    """The index files' bytes, as a closed log leaves them."""
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.suffix in INDEX_SUFFIXES}


def assert_consistent(log: Log) -> None:
    """Indexes point at real batches; reads find every offset; state matches files."""
    expected_next = log.segments[0].base_offset
    for segment in log.segments:
        data = Path(segment.log.path).read_bytes()
        headers = [h for h, _ in iter_batches(data)]
        assert sum(h.size for h in headers) == len(data)
        if headers:
            assert headers[0].base_offset >= expected_next
            expected_next = headers[-1].next_offset
        for offset, position in segment.offset_index.all_entries():
            header = segment.log.read_header(position)
            assert header is not None and header.base_offset <= offset <= header.last_offset
        for timestamp, offset in segment.time_index.all_entries():
            assert offset < segment.next_offset and timestamp <= segment.max_timestamp
    assert log.log_end_offset == expected_next
    for offset in range(log.log_start_offset, log.log_end_offset):
        header = next(iter_batches(log.read(offset, 1).read_bytes()))[0]
        assert header.base_offset <= offset <= header.last_offset


def crash(log: Log) -> None:
    """An unclean stop: nothing is closed or trimmed (the active index stays
    preallocated); the page cache keeps what was written, as after kill -9."""
    assert os.path.getsize(log.active_segment.offset_index.path) == CONFIG.segment_index_bytes


def test_unclean_reopen_rebuilds_the_same_indexes(tmp_path: Path) -> None:
    log, files = build(tmp_path / "t-0")
    before = index_snapshot(log)
    crash(log)
    reopened = Log.open(log.dir, CONFIG)
    assert contents(reopened) == b"".join(data for _, data in files)
    assert reopened.log_end_offset == 180
    # Rolled segments keep the roll-time time index entry; the active one gets the same
    # rule as appends, so the rebuilt indexes match what appends built.
    assert index_snapshot(reopened)[:-1] == before[:-1]
    assert index_snapshot(reopened)[-1][0] == before[-1][0]
    assert_consistent(reopened)
    assert [tuple(e) for e in reopened.leader_epoch_cache.entries()] == [(0, 0), (1, 60), (2, 120)]


def valid_prefix(files: list[tuple[int, bytes]], cut_segment: int, cut_at: int) -> bytes:
    return b"".join(data for _, data in files[:cut_segment]) + files[cut_segment][1][:cut_at]


def batch_starts(data: bytes) -> list[int]:
    starts, position = [], 0
    for header, _ in iter_batches(data):
        starts.append(position)
        position += header.size
    return starts


@pytest.mark.parametrize("which", ["last", "middle"])
def test_flipped_byte_truncates_from_that_batch(tmp_path: Path, which: str) -> None:
    log, files = build(tmp_path / "t-0")
    active = log.active_segment
    starts = batch_starts(files[-1][1])
    victim = starts[-1] if which == "last" else starts[len(starts) // 2]
    with open(active.log.path, "r+b") as f:
        f.seek(victim + 70)
        byte = f.read(1)
        f.seek(victim + 70)
        f.write(bytes([byte[0] ^ 0x40]))
    crash(log)
    reopened = Log.open(log.dir, CONFIG)
    assert contents(reopened) == valid_prefix(files, len(files) - 1, victim)
    assert_consistent(reopened)


def test_torn_last_batch_is_removed(tmp_path: Path) -> None:
    log, files = build(tmp_path / "t-0")
    last_start = batch_starts(files[-1][1])[-1]
    os.truncate(log.active_segment.log.path, last_start + 30)
    crash(log)
    reopened = Log.open(log.dir, CONFIG)
    assert contents(reopened) == valid_prefix(files, len(files) - 1, last_start)
    assert_consistent(reopened)
    # Appends continue right after the valid prefix.
    info = reopened.append(bytearray(build_batch([(b"k", b"v", [], 1)])), 5, 0)
    assert info.base_offset == reopened.log_end_offset - 1


def test_trailing_zeros_after_a_crash_are_removed(tmp_path: Path) -> None:
    log, files = build(tmp_path / "t-0")
    with open(log.active_segment.log.path, "ab") as f:
        f.write(bytes(4096))  # a preallocated or half-written tail
    reopened = Log.open(log.dir, CONFIG)
    assert contents(reopened) == b"".join(data for _, data in files)


def test_corruption_in_an_earlier_unflushed_segment_drops_later_segments(tmp_path: Path) -> None:
    log, files = build(tmp_path / "t-0")
    assert len(files) >= 3
    second = log.segments[1]
    victim = batch_starts(files[1][1])[1]
    with open(second.log.path, "r+b") as f:
        f.seek(victim + 8)
        f.write(b"\x7f\xff\xff\xff")  # absurd batch length
    reopened = Log.open(log.dir, CONFIG, recovery_point=0)
    assert contents(reopened) == valid_prefix(files, 1, victim)
    assert len(reopened.segments) == 2
    assert not any(p.name.startswith(f"{files[2][0]:020d}") for p in log.dir.iterdir())
    assert_consistent(reopened)


def test_segments_below_the_recovery_point_are_not_scanned(tmp_path: Path) -> None:
    log, _ = build(tmp_path / "t-0")
    log.flush()
    first = log.segments[0]
    # Damage record bytes (not the header) of a flushed segment: only a scan would see it.
    with open(first.log.path, "r+b") as f:
        f.seek(100)
        f.write(b"\xff")
    reopened = Log.open(log.dir, CONFIG, recovery_point=log.recovery_point)
    assert reopened.log_end_offset == 180
    rescanned = Log.open(log.dir, CONFIG, recovery_point=0)
    assert rescanned.log_end_offset < 10


def test_clean_shutdown_skips_the_scan(tmp_path: Path) -> None:
    log, _ = build(tmp_path / "t-0")
    log.flush()
    log.close()
    active = log.segments[-1]
    with open(active.log.path, "r+b") as f:
        f.seek(active.size - 5)
        f.write(b"\xff")
    assert Log.open(log.dir, CONFIG, had_clean_shutdown=True).log_end_offset == 180
    assert Log.open(log.dir, CONFIG, had_clean_shutdown=False).log_end_offset == 177


@pytest.mark.parametrize("clean", [True, False])
@pytest.mark.parametrize(
    "damage",
    ["garbage offset index", "garbage time index", "missing time index", "missing offset index"],
)
def test_bad_index_files_are_rebuilt(tmp_path: Path, clean: bool, damage: str) -> None:
    log, files = build(tmp_path / "t-0")
    log.flush()
    log.close()
    before = index_files(log.dir)
    target = log.segments[1]  # a rolled segment, below the recovery point
    path = target.time_index.path if "time" in damage else target.offset_index.path
    if damage.startswith("missing"):
        os.unlink(path)
    else:
        path.write_bytes(os.urandom(os.path.getsize(path) or 96))
    reopened = Log.open(log.dir, CONFIG, recovery_point=180, had_clean_shutdown=clean)
    assert contents(reopened) == b"".join(data for _, data in files)
    assert_consistent(reopened)
    reopened.close()
    assert index_files(log.dir) == before  # byte for byte what appends and rolls wrote


def test_leftover_files_are_resolved(tmp_path: Path) -> None:
    log, files = build(tmp_path / "t-0")
    log.flush()
    log.close()
    directory = log.dir
    (directory / "00000000000000000007.log.deleted").write_bytes(b"old")
    (directory / "00000000000000000007.index.deleted").write_bytes(b"old")
    (directory / "00000000000000000000.log.cleaned").write_bytes(b"partial")
    (directory / "00000000000000099999.index").write_bytes(b"orphan")
    (directory / "leader-epoch-checkpoint.tmp").write_bytes(b"torn")
    reopened = Log.open(directory, CONFIG, had_clean_shutdown=True)
    names = {p.name for p in directory.iterdir()}
    assert not any(n.endswith((".deleted", ".cleaned", ".tmp")) for n in names)
    assert "00000000000000099999.index" not in names
    assert contents(reopened) == b"".join(data for _, data in files)


def test_swap_files_replace_the_segments_they_cover(tmp_path: Path) -> None:
    log, files = build(tmp_path / "t-0")
    log.flush()
    log.close()
    directory = log.dir
    first, second = files[0][0], files[1][0]
    # A finished compaction of the first two segments into one, not yet swapped in.
    merged = files[0][1] + files[1][1]
    (directory / f"{first:020d}.log.swap").write_bytes(merged)
    (directory / f"{first:020d}.index.swap").write_bytes(b"stale")
    reopened = Log.open(directory, CONFIG, had_clean_shutdown=True)
    assert [s.base_offset for s in reopened.segments][:2] == [first, files[2][0]]
    assert not any(p.name.startswith(f"{second:020d}") for p in directory.iterdir())
    assert not any(p.name.endswith(".swap") for p in directory.iterdir())
    assert contents(reopened) == b"".join(data for _, data in files)
    assert_consistent(reopened)


def test_stale_epoch_checkpoint_is_repaired_from_batches(tmp_path: Path) -> None:
    log, _ = build(tmp_path / "t-0")
    (log.dir / "leader-epoch-checkpoint").write_text("0\n2\n0 0\n9 150\n")
    reopened = Log.open(log.dir, CONFIG)
    assert [tuple(e) for e in reopened.leader_epoch_cache.entries()] == [(0, 0), (1, 60), (2, 120)]


def test_log_below_its_start_offset_starts_empty(tmp_path: Path) -> None:
    log, _ = build(tmp_path / "t-0")
    reopened = Log.open(log.dir, CONFIG, log_start_offset=500)
    assert (reopened.log_start_offset, reopened.log_end_offset) == (500, 500)
    assert [s.base_offset for s in reopened.segments] == [500]
    assert reopened.leader_epoch_cache.entries() == []


def test_checkpointed_log_start_offset_is_restored(tmp_path: Path) -> None:
    log, _ = build(tmp_path / "t-0")
    reopened = Log.open(log.dir, CONFIG, log_start_offset=100)
    assert reopened.log_start_offset == 100
    assert reopened.leader_epoch_cache.entries()[0] == (1, 100)
