"""The one place that chooses between the C extension ``klog._native`` and its twin.

The C module (built from ``native/_native.c``) is used when it imports; ``KLOG_NO_NATIVE=1``
forces the pure-Python twin ``klog._native_py``. If the C module is missing or broken the
twin is used and one warning is logged at import. Both implementations have identical
behaviour, so callers never need to know which one runs; ``IMPLEMENTATION`` ("c" or
"python") says which one did, for startup logs and tests.

Functions (formats and exact contracts in ``klog._native_py``):

* ``scan_batches(buf, start=0, end=None, max_batch_bytes=None)`` -> ``(batches, valid_end,
  error)``: walk Kafka v2 record batches, checking length, magic and CRC-32C; each batch is
  ``(base_offset, last_offset_delta, max_timestamp, position, size)``; ``error`` is
  ``(SCAN_* code, message)`` for the first invalid batch, else None.
* ``sendfile_slice(sock_fd, file_fd, offset, count)`` -> bytes sent to a non-blocking
  socket before it would block (0 if it was not writable); ``OSError`` on socket errors,
  and ``OSError(ENODATA)`` if the file ends inside the slice (truncated under a reader).
* ``encode_records(records)`` / ``decode_records(buf, count, base_offset, base_timestamp)``:
  the v2 records that follow an uncompressed batch header.

Stateless; safe to share between tasks and threads.
"""

from __future__ import annotations

import logging
import os

from klog import _native_py

if os.environ.get("KLOG_NO_NATIVE", "") not in ("", "0"):
    _impl = _native_py
else:
    try:
        from klog import _native as _impl  # type: ignore[attr-defined, no-redef]
    except ImportError as exc:
        logging.getLogger(__name__).warning(
            "klog._native is unavailable (%s); using the pure-Python twin, which is slower", exc
        )
        _impl = _native_py

IMPLEMENTATION: str = _impl.IMPLEMENTATION
SCAN_TRUNCATED: int = _native_py.SCAN_TRUNCATED
SCAN_BAD_LENGTH: int = _native_py.SCAN_BAD_LENGTH
SCAN_BAD_MAGIC: int = _native_py.SCAN_BAD_MAGIC
SCAN_BAD_CRC: int = _native_py.SCAN_BAD_CRC

scan_batches = _impl.scan_batches
sendfile_slice = _impl.sendfile_slice
encode_records = _impl.encode_records
decode_records = _impl.decode_records

__all__ = [
    "IMPLEMENTATION",
    "SCAN_BAD_CRC",
    "SCAN_BAD_LENGTH",
    "SCAN_BAD_MAGIC",
    "SCAN_TRUNCATED",
    "decode_records",
    "encode_records",
    "scan_batches",
    "sendfile_slice",
]
