"""Checkpoint files (Kafka's text format, atomic writes) and the leader epoch cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from klog.segment import (
    UNDEFINED_EPOCH,
    UNDEFINED_EPOCH_OFFSET,
    CorruptCheckpointError,
    LeaderEpochCheckpointFile,
    LeaderEpochFileCache,
    OffsetCheckpointFile,
)


def test_offset_checkpoint_format_is_kafkas(tmp_path: Path) -> None:
    path = tmp_path / "recovery-point-offset-checkpoint"
    OffsetCheckpointFile(path).write({("orders", 0): 42, ("my.topic-x", 3): 7})
    assert path.read_text() == "0\n2\norders 0 42\nmy.topic-x 3 7\n"
    assert OffsetCheckpointFile(path).read() == {("orders", 0): 42, ("my.topic-x", 3): 7}
    assert not (tmp_path / "recovery-point-offset-checkpoint.tmp").exists()


def test_leader_epoch_checkpoint_format_is_kafkas(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    LeaderEpochCheckpointFile(path).write([(0, 0), (3, 120)])
    assert path.read_text() == "0\n2\n0 0\n3 120\n"
    assert LeaderEpochCheckpointFile(path).read() == [(0, 0), (3, 120)]


def test_missing_or_empty_checkpoint_reads_as_nothing(tmp_path: Path) -> None:
    assert OffsetCheckpointFile(tmp_path / "absent").read() == {}
    (tmp_path / "empty").write_text("")
    assert LeaderEpochCheckpointFile(tmp_path / "empty").read() == []


@pytest.mark.parametrize(
    "text",
    [
        "1\n0\n",  # unknown version
        "0\n2\na 0 1\n",  # fewer entries than declared
        "0\n1\na 0 1\nb 0 2\n",  # more
        "0\n1\na 0\n",  # short line
        "0\n1\na x 1\n",  # not a number
        "0\n1\na 0 1",  # torn: no final newline
        "0\nx\n",
    ],
)
def test_malformed_checkpoint_raises(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cp"
    path.write_text(text)
    with pytest.raises(CorruptCheckpointError):
        OffsetCheckpointFile(path).read()


def test_write_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "cp"
    checkpoint = OffsetCheckpointFile(path)
    checkpoint.write({("a", 0): 1})
    inode = os.stat(path).st_ino
    checkpoint.write({("a", 0): 2})
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one
    assert checkpoint.read() == {("a", 0): 2}


def cache(tmp_path: Path) -> LeaderEpochFileCache:
    return LeaderEpochFileCache(tmp_path / "leader-epoch-checkpoint")


def test_assign_keeps_epochs_and_offsets_monotonic(tmp_path: Path) -> None:
    epochs = cache(tmp_path)
    assert epochs.assign(1, 0)
    assert not epochs.assign(1, 5)  # same epoch, later offset: nothing to record
    assert epochs.assign(2, 10)
    assert epochs.assign(4, 30)
    # A lower epoch (or an earlier offset) wipes what it contradicts, as Kafka does.
    assert epochs.assign(3, 20)
    assert [tuple(e) for e in epochs.entries()] == [(1, 0), (2, 10), (3, 20)]
    assert epochs.assign(5, 15)
    assert [tuple(e) for e in epochs.entries()] == [(1, 0), (2, 10), (5, 15)]
    with pytest.raises(ValueError):
        epochs.assign(-1, 0)


def test_end_offset_for_matches_kafka(tmp_path: Path) -> None:
    epochs = cache(tmp_path)
    undefined = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
    assert epochs.end_offset_for(0, 100) == undefined
    epochs.assign(2, 10)
    epochs.assign(4, 30)
    epochs.assign(6, 50)
    assert epochs.end_offset_for(UNDEFINED_EPOCH, 99) == undefined
    assert epochs.end_offset_for(6, 99) == (6, 99)  # the latest epoch ends at the LEO
    assert epochs.end_offset_for(4, 99) == (4, 50)
    assert epochs.end_offset_for(5, 99) == (4, 50)  # unknown epoch: the one below it
    assert epochs.end_offset_for(1, 99) == (1, 10)  # below all: the first start offset
    assert epochs.end_offset_for(7, 99) == undefined


def test_epoch_for_offset(tmp_path: Path) -> None:
    epochs = cache(tmp_path)
    epochs.assign(2, 10)
    epochs.assign(4, 30)
    assert epochs.epoch_for_offset(9) is None
    assert epochs.epoch_for_offset(10) == 2
    assert epochs.epoch_for_offset(29) == 2
    assert epochs.epoch_for_offset(1000) == 4


def test_truncation_from_both_ends(tmp_path: Path) -> None:
    epochs = cache(tmp_path)
    for epoch, offset in [(1, 0), (2, 10), (3, 20), (4, 30)]:
        epochs.assign(epoch, offset)
    epochs.truncate_from_end(20)
    assert [tuple(e) for e in epochs.entries()] == [(1, 0), (2, 10)]
    epochs.truncate_from_start(15)
    assert [tuple(e) for e in epochs.entries()] == [(2, 15)]
    epochs.truncate_from_start(5)  # nothing before it to forget
    assert [tuple(e) for e in epochs.entries()] == [(2, 15)]
    epochs.clear()
    assert epochs.latest_epoch is None


def test_cache_persists_only_when_written(tmp_path: Path) -> None:
    epochs = cache(tmp_path)
    epochs.assign(3, 7)
    assert epochs.dirty
    assert LeaderEpochFileCache(epochs.path).entries() == []
    version, entries = epochs.snapshot()
    epochs.assign(4, 9)
    epochs.write_snapshot(entries)
    epochs.mark_written(version)
    assert epochs.dirty  # (4, 9) came after the snapshot
    assert [tuple(e) for e in LeaderEpochFileCache(epochs.path).entries()] == [(3, 7)]
    epochs.write()
    assert not epochs.dirty
    assert [tuple(e) for e in LeaderEpochFileCache(epochs.path).entries()] == [(3, 7), (4, 9)]


def test_corrupt_epoch_checkpoint_loads_empty(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    path.write_text("0\n5\n1 0\n")
    assert LeaderEpochFileCache(path).entries() == []
