"""``cleaner-offset-checkpoint``: where the dirty part of each compacted log begins.

One file per log dir, in Kafka's checkpoint text format (see ``checkpoint``)::

    0
    <number of entries>
    <topic> <partition> <first dirty offset>
    ...

The offset is one past what the last cleaning pass covered with its key map: records
below it have been compacted against every key written before it. The cleaner writes
the file (atomically) after each pass; a log without an entry is dirty from its start.
Offsets are only a hint: the reader clamps one outside a log's ``[log start, log end]``
back to the log start, as Kafka does, so a stale entry (after a truncation or a deleted
and re-created topic) costs work, never data.

A missing file reads as no entries; a corrupt one is ignored with a warning. One owner
(the log cleaner task) reads and writes a dir's file; ``write`` blocks (fsync) and runs
in a worker thread with a snapshot of the offsets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from klog.segment.checkpoint import CorruptCheckpointError, OffsetCheckpointFile

_log = logging.getLogger(__name__)

CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"


class CleanerOffsetCheckpoint:
    """One log dir's ``cleaner-offset-checkpoint``, mirrored in memory."""

    def __init__(self, log_dir: Path) -> None:
        self._file = OffsetCheckpointFile(log_dir / CLEANER_OFFSET_CHECKPOINT)
        try:
            self._offsets = self._file.read()
        except CorruptCheckpointError as exc:
            _log.warning("ignoring %s; compacted logs there count as dirty from their start", exc)
            self._offsets = {}

    @property
    def path(self) -> Path:
        return self._file.path

    def get(self, tp: tuple[str, int]) -> int | None:
        """The checkpointed first dirty offset of ``tp``, if any."""
        return self._offsets.get(tuple(tp))  # type: ignore[arg-type]

    def set(self, tp: tuple[str, int], offset: int) -> None:
        self._offsets[(tp[0], tp[1])] = offset

    def remove(self, tp: tuple[str, int]) -> bool:
        """Forget ``tp`` (its log was deleted); True if it had an entry."""
        return self._offsets.pop((tp[0], tp[1]), None) is not None

    def snapshot(self) -> dict[tuple[str, int], int]:
        return dict(self._offsets)

    def write(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Blocking: replace the file with ``offsets`` (a ``snapshot``)."""
        self._file.write(offsets)
