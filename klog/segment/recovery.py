"""Loading a partition directory after a clean or unclean stop (Kafka's LogLoader).

Steps, in order:

1. Resolve leftovers of interrupted operations: ``*.deleted`` and ``*.cleaned`` files
   and ``*.tmp`` checkpoint files are removed, index files without a ``.log`` are removed,
   and ``*.log.swap`` files (finished replacements) win: the segments they replace are
   removed and the swap files renamed into place (their indexes are rebuilt).
2. Open every segment. An index that is missing or fails its sanity checks is rebuilt
   by scanning its segment.
3. Unless the log was shut down cleanly, scan (and re-index) every segment from the one
   holding the recovery point to the end. Leader epoch entries from that segment on are
   dropped and re-derived from the scanned batches (each carries its epoch).
   The first invalid or torn batch and everything after it (including later segments)
   is removed; nothing before it is touched.

Runs before the log is shared with anyone; blocking file I/O (callers in async code run
it in a worker thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from klog.segment.config import LogConfig
from klog.segment.errors import CorruptIndexError
from klog.segment.file_records import FileRecords
from klog.segment.filenames import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    INDEX_SUFFIXES,
    LOG_SUFFIX,
    SWAP_SUFFIX,
    parse_segment_file,
    segment_file,
)
from klog.segment.leader_epoch import LeaderEpochFileCache
from klog.segment.segment import Segment

_log = logging.getLogger(__name__)


class LoadedLog(NamedTuple):
    segments: list[Segment]
    log_end_offset: int
    log_start_offset: int
    recovery_point: int


def _ignore_epoch(epoch: int, base_offset: int) -> None:
    """Epoch callback for segments whose history the epoch cache already holds."""


def resolve_leftovers(directory: Path) -> None:
    """Step 1: finish or undo what a crash interrupted."""
    swaps: list[Path] = []
    log_bases: set[int] = set()
    for path in directory.iterdir():
        if not path.is_file():
            continue
        name = path.name
        parsed = parse_segment_file(name)
        if name.endswith((DELETED_SUFFIX, CLEANED_SUFFIX, ".tmp")):
            path.unlink()
        elif parsed is not None and parsed[2] == SWAP_SUFFIX:
            if parsed[1] == LOG_SUFFIX:
                swaps.append(path)
            else:
                path.unlink()
        elif parsed is not None and parsed[1] == LOG_SUFFIX and not parsed[2]:
            log_bases.add(parsed[0])
    for path in directory.iterdir():
        parsed = parse_segment_file(path.name)
        if parsed and parsed[1] in INDEX_SUFFIXES and not parsed[2] and parsed[0] not in log_bases:
            _log.info("removing orphaned index file %s", path)
            path.unlink()
    if not swaps:
        return
    low = high = None
    for swap in swaps:
        base = parse_segment_file(swap.name)[0]  # type: ignore[index]
        end = base
        for header in FileRecords(swap).headers():
            end = header.last_offset + 1
        low = base if low is None else min(low, base)
        high = end if high is None else max(high, end)
    for path in directory.iterdir():
        parsed = parse_segment_file(path.name)
        if parsed and not parsed[2] and low <= parsed[0] < high:  # type: ignore[operator]
            _log.info("removing %s, replaced by a swap segment", path)
            path.unlink()
    for swap in swaps:
        base = parse_segment_file(swap.name)[0]  # type: ignore[index]
        swap.rename(segment_file(directory, base, LOG_SUFFIX))


def _segment_bases(directory: Path) -> list[int]:
    bases = []
    for path in directory.iterdir():
        parsed = parse_segment_file(path.name)
        if parsed is not None and parsed[1] == LOG_SUFFIX and not parsed[2]:
            bases.append(parsed[0])
    return sorted(bases)


def _remove_segment(segment: Segment) -> None:
    segment.offset_index.close(trim=False)
    segment.time_index.close(trim=False)
    for path in (segment.log.path, segment.offset_index.path, segment.time_index.path):
        path.unlink(missing_ok=True)


def load_log(
    directory: Path,
    config: LogConfig,
    epochs: LeaderEpochFileCache,
    *,
    recovery_point: int,
    log_start_offset: int,
    had_clean_shutdown: bool,
    now_ms: int,
    jitter: Callable[[], int],
) -> LoadedLog:
    """Steps 1-3 above; returns the segments (the last one active) and the offsets."""
    resolve_leftovers(directory)
    segments = [
        Segment(directory, base, config, now_ms, jitter()) for base in _segment_bases(directory)
    ]
    # Segments from this index on are past the recovery point and get scanned.
    first_unflushed = len(segments)
    if not had_clean_shutdown:
        first_unflushed = 0
        for index, segment in enumerate(segments):
            if segment.base_offset <= recovery_point:
                first_unflushed = index
    if first_unflushed < len(segments):
        # The scan re-derives every epoch change from the scanned batches themselves.
        epochs.truncate_from_end(segments[first_unflushed].base_offset)
    keep = len(segments)
    for index, segment in enumerate(segments):
        if index < first_unflushed:
            try:
                segment.load()
                continue
            except CorruptIndexError as exc:
                _log.warning("rebuilding the indexes of %s: %s", segment.log.path, exc)
                on_epoch = _ignore_epoch
        else:
            on_epoch = _assigner(epochs)
        truncated, problem = segment.recover(on_epoch)
        if problem is not None:
            _log.warning(
                "recovery of %s removed %d bytes from the first invalid batch on: %s",
                segment.log.path,
                truncated,
                problem,
            )
            keep = index + 1
            break
    for segment in segments[keep:]:
        _log.warning("removing %s, which follows an invalid batch", segment.log.path)
        _remove_segment(segment)
    del segments[keep:]

    log_end_offset = segments[-1].next_offset if segments else log_start_offset
    if log_end_offset < log_start_offset:
        if segments:
            _log.warning(
                "%s ends at offset %d, below its log start offset %d: starting empty",
                directory,
                log_end_offset,
                log_start_offset,
            )
        for segment in segments:
            _remove_segment(segment)
        segments = []
        epochs.clear()
        log_end_offset = log_start_offset
    if not segments:
        segments.append(Segment.create(directory, log_start_offset, config, now_ms, jitter()))
    for segment in segments[:-1]:
        segment.on_become_inactive()
    segments[-1].resize_indexes()
    log_start_offset = max(log_start_offset, segments[0].base_offset)
    epochs.truncate_from_end(log_end_offset)
    epochs.truncate_from_start(log_start_offset)
    if had_clean_shutdown:
        recovery_point = log_end_offset
    return LoadedLog(
        segments, log_end_offset, log_start_offset, min(recovery_point, log_end_offset)
    )


def _assigner(epochs: LeaderEpochFileCache) -> Callable[[int, int], None]:
    """The epoch hook for the scanned segments, which come in offset order after
    ``truncate_from_end`` removed every entry from the first scanned offset on: so the
    epoch in force at a scanned batch is always the latest one, and comparing with it
    costs nothing per batch (Kafka's recovery compares with the latest epoch too)."""

    def on_epoch(epoch: int, base_offset: int) -> None:
        # A batch that agrees with the history changes nothing; one that does not (a
        # newer epoch, or a stale checkpoint) wins, since the data is the truth.
        if epoch >= 0 and epochs.latest_epoch != epoch:
            epochs.assign(epoch, base_offset)

    return on_epoch
