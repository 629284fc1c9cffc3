"""The ``.log`` file of a segment: Kafka v2 record batches, back to back.

Bytes are exactly what the producer (or the leader) sent, after the broker patched the
base offset and partition leader epoch. This class appends whole buffers, truncates,
hands out ``FileSlice`` regions, and walks batch *headers* with ``os.pread`` (61 bytes
each, never the records). Full validation (length, magic, CRC-32C) walks a read-only
memory map with ``klog.native.scan_batches``, in windows so memory stays bounded.

Invariants: ``size`` is the file length and every byte below it belongs to an appended
batch (after recovery: a valid one). A failed append leaves the file at its old size.
Owned by one task; its ``handle`` may be fsynced from a worker thread.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from klog import native
from klog.segment.errors import KafkaStorageError
from klog.segment.file_slice import FileHandle, FileSlice
from klog.wire.records import BATCH_HEADER_SIZE, LENGTH_POS, LOG_OVERHEAD

# base_offset, batch_length, partition_leader_epoch, magic, crc, attributes,
# last_offset_delta, base_timestamp, max_timestamp, producer_id, producer_epoch,
# base_sequence, records_count.
_HEADER = struct.Struct(">qiibIhiqqqhii")
_LENGTH = struct.Struct(">i")
# Recovery maps the file and validates this many bytes per scan_batches call.
SCAN_WINDOW = 64 * 1024 * 1024

ScannedBatch = tuple[int, int, int, int, int]
ScanWindow = tuple[list[ScannedBatch], int, tuple[int, str] | None, mmap.mmap | bytes]


class BatchHeader(NamedTuple):
    """The header of one stored batch and where it is."""

    position: int
    size: int
    base_offset: int
    last_offset: int
    partition_leader_epoch: int
    attributes: int
    base_timestamp: int
    max_timestamp: int
    records_count: int


class FileRecords:
    """One segment's ``.log`` file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = FileHandle(path, os.O_RDWR | os.O_CREAT)
        self._size = os.fstat(self._handle.fileno()).st_size

    @property
    def size(self) -> int:
        return self._size

    @property
    def handle(self) -> FileHandle:
        return self._handle

    def append(self, data: memoryview) -> None:
        """Write ``data`` at the end. On failure (e.g. a full disk) cut the file back and
        raise ``KafkaStorageError``."""
        fd = self._handle.fileno()
        written = 0
        total = data.nbytes
        try:
            while written < total:
                n = os.pwrite(fd, data[written:], self._size + written)
                if n == 0:
                    raise OSError(errno.EIO, "pwrite wrote nothing")
                written += n
        except OSError as exc:
            try:
                os.ftruncate(fd, self._size)
            except OSError:
                pass
            raise KafkaStorageError(f"append to {self.path} failed: {exc}") from exc
        self._size += total

    def truncate_to(self, size: int) -> int:
        """Cut the file to ``size`` bytes; returns how many bytes were removed."""
        if size > self._size or size < 0:
            raise ValueError(f"cannot truncate {self.path} of {self._size} bytes to {size}")
        removed = self._size - size
        if removed:
            os.ftruncate(self._handle.fileno(), size)
            self._size = size
        return removed

    def slice(self, position: int, size: int) -> FileSlice:
        return FileSlice(self._handle, position, size)

    def read_bytes(self, position: int, size: int) -> bytes:
        return os.pread(self._handle.fileno(), size, position)

    def read_header(self, position: int) -> BatchHeader | None:
        """The header of the batch at ``position``, or None past the end of the data."""
        if position + BATCH_HEADER_SIZE > self._size:
            return None
        raw = os.pread(self._handle.fileno(), BATCH_HEADER_SIZE, position)
        if len(raw) < BATCH_HEADER_SIZE:
            return None
        (base, length, epoch, _magic, _crc, attributes, delta, base_ts, max_ts, _pid, _pe, _seq,
         count) = _HEADER.unpack(raw)  # fmt: skip
        return BatchHeader(
            position, LOG_OVERHEAD + length, base, base + delta, epoch, attributes, base_ts,
            max_ts, count,
        )  # fmt: skip

    def headers(self, position: int = 0) -> Iterator[BatchHeader]:
        """Headers of the batches from ``position`` to the end of the file."""
        while True:
            header = self.read_header(position)
            if header is None or header.size < BATCH_HEADER_SIZE:
                return
            yield header
            position += header.size

    def search_for_offset(self, offset: int, position: int) -> BatchHeader | None:
        """The first batch at or after ``position`` whose last offset is >= ``offset``."""
        for header in self.headers(position):
            if header.last_offset >= offset:
                return header
        return None

    def search_for_timestamp(
        self, timestamp: int, position: int, min_offset: int
    ) -> BatchHeader | None:
        """The first batch at or after ``position`` with a max timestamp >= ``timestamp``
        and a last offset >= ``min_offset``."""
        for header in self.headers(position):
            if header.max_timestamp >= timestamp and header.last_offset >= min_offset:
                return header
        return None

    def scan(self, start: int = 0) -> Iterator[ScanWindow]:
        """Validate batches from ``start``; yields ``(batches, valid_end, error, buffer)``
        per window, the first three as ``native.scan_batches`` reports them and
        ``buffer`` the read-only mapping the positions refer to (valid until the next
        step). The walk stops after a window with an error; without one the last window
        ends at ``size``."""
        size = self._size
        if start >= size:
            yield [], start, None, b""
            return
        with mmap.mmap(self._handle.fileno(), size, access=mmap.ACCESS_READ) as mapped:
            mapped.madvise(mmap.MADV_SEQUENTIAL)
            position = start
            while True:
                end = min(size, position + SCAN_WINDOW)
                batches, valid_end, error = native.scan_batches(mapped, position, end)
                if error is not None and error[0] == native.SCAN_TRUNCATED and end < size:
                    if valid_end == position:
                        # A single batch larger than the window: scan exactly that batch.
                        length = _LENGTH.unpack_from(mapped, position + LENGTH_POS)[0]
                        end = min(size, position + LOG_OVERHEAD + length)
                        batches, valid_end, error = native.scan_batches(mapped, position, end)
                    else:
                        error = None
                yield batches, valid_end, error, mapped
                if error is not None or valid_end >= size:
                    return
                position = valid_end

    def rename(self, new_path: Path) -> None:
        os.rename(self.path, new_path)
        self.path = new_path

    def fsync(self) -> None:
        self._handle.fsync()
