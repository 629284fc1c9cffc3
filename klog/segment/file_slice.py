"""Open files shared by segments, flush jobs and readers; regions of them.

``FileHandle`` owns one OS file descriptor and closes it when the last Python reference
to the handle goes away. A segment, a ``FileSlice`` returned by a read, and a flush job
running ``fsync`` in a worker thread can all hold the same handle, so a segment that is
deleted or closed while a fetch is still sending from it never leaves a reader with a
closed (or, worse, reused) descriptor. Nobody closes a handle explicitly.

``FileSlice`` is an immutable byte range ``[position, position + size)`` of a handle's
file: what ``Log.read`` returns and what the server passes to ``sendfile``. The region
holds whole Kafka v2 batches except that, as in Kafka, the last one may be cut short by
the fetch size limit.

Both may be shared between tasks and threads (the fd number never changes while a
reference exists).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


class FileHandle:
    """An OS file descriptor closed when this object is garbage collected."""

    __slots__ = ("_fd", "path")

    def __init__(self, path: Path, flags: int, mode: int = 0o644) -> None:
        self.path = path
        self._fd = -1
        self._fd = os.open(path, flags | os.O_CLOEXEC, mode)

    def fileno(self) -> int:
        return self._fd

    def fsync(self) -> None:
        os.fsync(self._fd)

    def __del__(self, _close: Callable[[int], None] = os.close) -> None:
        # os.close is bound at definition time: at interpreter exit module globals may
        # already be gone when the last handles are collected.
        if self._fd >= 0:
            _close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"FileHandle({str(self.path)!r}, fd={self._fd})"


class FileSlice:
    """A region of an open segment file; keeps the file open while it exists."""

    __slots__ = ("_handle", "position", "size")

    def __init__(self, handle: FileHandle, position: int, size: int) -> None:
        if position < 0 or size < 0:
            raise ValueError(f"bad file slice position={position} size={size}")
        self._handle = handle
        self.position = position
        self.size = size

    @property
    def fd(self) -> int:
        """The descriptor to ``sendfile`` from (valid while this slice exists)."""
        return self._handle.fileno()

    def fileno(self) -> int:
        return self._handle.fileno()

    @property
    def path(self) -> Path:
        """The file's path when it was opened (a deleted segment may have been renamed)."""
        return self._handle.path

    def read_bytes(self) -> bytes:
        """Copy the region into memory: for tests, tools and in-process replication,
        never for the fetch hot path (which uses ``sendfile``)."""
        data = os.pread(self._handle.fileno(), self.size, self.position)
        if len(data) != self.size:
            raise OSError(f"{self.path} ends inside the slice at {self.position}+{self.size}")
        return data

    def __repr__(self) -> str:
        return f"FileSlice({str(self.path)!r}, position={self.position}, size={self.size})"
