"""Kafka's checkpoint files, written atomically.

Text format (Kafka's ``CheckpointFile``)::

    <version>\\n
    <number of entries>\\n
    <entry>\\n ...

Version 0 entries are ``<topic> <partition> <offset>`` for
``recovery-point-offset-checkpoint``, ``log-start-offset-checkpoint`` and
``cleaner-offset-checkpoint`` (one file per log dir), and ``<epoch> <start offset>`` for
a partition's ``leader-epoch-checkpoint``.

A write goes to ``<name>.tmp``, is fsynced, renamed over the old file and the directory
is fsynced, so a reader sees the old or the new contents, never a mix. A missing or
empty file reads as no entries; anything malformed raises ``CorruptCheckpointError``.
The classes hold only a path: safe to share, but writes to one file must not overlap
(the owner serialises them).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

VERSION = 0


class CorruptCheckpointError(ValueError):
    """A checkpoint file does not follow the format; the caller falls back safely."""


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync of the directory."""
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_dir(path.parent)


def _encode(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in [str(VERSION), str(len(lines)), *lines]).encode()


def _decode(path: Path, fields: int) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as exc:
        raise CorruptCheckpointError(f"{path} is not text: {exc}") from exc
    if not text:
        return []
    if not text.endswith("\n"):
        raise CorruptCheckpointError(f"{path} does not end with a newline")
    lines = text[:-1].split("\n")
    if lines[0] != str(VERSION):
        raise CorruptCheckpointError(f"{path} has unrecognised version {lines[0]!r}")
    if len(lines) < 2 or not lines[1].isdigit():
        raise CorruptCheckpointError(f"{path} has a malformed entry count")
    entries = [line.split(" ") for line in lines[2:]]
    if len(entries) != int(lines[1]):
        raise CorruptCheckpointError(f"{path} declares {lines[1]} entries but holds {len(entries)}")
    for entry in entries:
        if len(entry) != fields or not all(_is_int(part) for part in entry[-2:]):
            raise CorruptCheckpointError(f"{path} has a malformed line {' '.join(entry)!r}")
    return entries


def _is_int(text: str) -> bool:
    return text.removeprefix("-").isdigit() and text.isascii()


class OffsetCheckpointFile:
    """Per-partition offsets of one log dir (recovery points, log start offsets)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[tuple[str, int], int]:
        return {
            (topic, int(partition)): int(offset)
            for topic, partition, offset in _decode(self.path, 3)
        }

    def write(self, offsets: Mapping[tuple[str, int], int]) -> None:
        lines = [f"{topic} {partition} {offset}" for (topic, partition), offset in offsets.items()]
        write_atomically(self.path, _encode(lines))


class LeaderEpochCheckpointFile:
    """One partition's ``(epoch, start offset)`` pairs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[tuple[int, int]]:
        return [(int(epoch), int(offset)) for epoch, offset in _decode(self.path, 2)]

    def write(self, entries: Iterable[tuple[int, int]]) -> None:
        write_atomically(self.path, _encode([f"{epoch} {offset}" for epoch, offset in entries]))
