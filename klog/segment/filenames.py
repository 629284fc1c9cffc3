"""File and directory names of a Kafka log directory.

A segment is named by its base offset as 20 zero-padded decimal digits, so names sort
by offset: ``00000000000000001234.log``, ``.index``, ``.timeindex``. A suffix after the
extension marks a file in transition: ``.deleted`` (waiting for removal), ``.cleaned``
(a compaction output not yet swapped in), ``.swap`` (a finished replacement not yet
renamed into place). Pure functions; safe to share.
"""

from __future__ import annotations

from pathlib import Path

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
DELETED_SUFFIX = ".deleted"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
INDEX_SUFFIXES = (INDEX_SUFFIX, TIME_INDEX_SUFFIX)
SEGMENT_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX)

LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
DELETE_DIR_SUFFIX = "-delete"

_DIGITS = 20


def segment_file(directory: Path, base_offset: int, extension: str, suffix: str = "") -> Path:
    """``<dir>/<20-digit base offset><extension><suffix>``."""
    return directory / f"{base_offset:0{_DIGITS}d}{extension}{suffix}"


def parse_segment_file(name: str) -> tuple[int, str, str] | None:
    """``(base_offset, extension, suffix)`` for a segment file name, else None."""
    digits, dot, rest = name.partition(".")
    if len(digits) != _DIGITS or not digits.isdigit() or not dot:
        return None
    extension, _, suffix = rest.partition(".")
    extension = "." + extension
    if extension not in SEGMENT_SUFFIXES:
        return None
    return int(digits), extension, "." + suffix if suffix else ""


def partition_dir_name(topic: str, partition: int) -> str:
    return f"{topic}-{partition}"


def parse_partition_dir_name(name: str) -> tuple[str, int] | None:
    """``(topic, partition)`` for ``<topic>-<partition>``, else None."""
    topic, dash, number = name.rpartition("-")
    if not dash or not topic or not number.isdigit() or not number.isascii():
        return None
    return topic, int(number)
