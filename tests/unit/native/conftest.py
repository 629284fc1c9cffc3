"""Fixtures that run the native tests against both implementations of klog.native.

``impl`` is parametrised over the C extension and the pure-Python twin. The C case fails
(not skips) when ``klog._native`` cannot be imported, unless ``KLOG_EXPECT_NATIVE=0`` says
this environment has no compiler: a broken build must not pass silently as "twin only".
``both`` gives ``(c, python)`` for tests that compare the two directly.

``make_batch`` builds Kafka v2 record batches with struct and the crc32c package, independent
of klog.wire.records, so these tests check the native module against the format itself.
"""

from __future__ import annotations

import importlib
import os
import struct
from collections.abc import Callable
from types import ModuleType

import crc32c
import pytest

from klog import _native_py

# attributes .. records_count: the part after the CRC, before the records.
_AFTER_CRC = struct.Struct(">hiqqqhii")
_BEFORE_CRC = struct.Struct(">qiibI")


@pytest.fixture(scope="session")
def expect_native() -> bool:
    """Whether klog._native must have been built here (KLOG_EXPECT_NATIVE=0 says no)."""
    return os.environ.get("KLOG_EXPECT_NATIVE", "1") != "0"


@pytest.fixture(scope="session")
def c_impl(expect_native: bool) -> ModuleType:
    try:
        return importlib.import_module("klog._native")
    except ImportError as exc:
        if expect_native:
            pytest.fail(
                f"klog._native did not import ({exc}); rebuild with `pip install -e .` "
                "or set KLOG_EXPECT_NATIVE=0 where no C compiler exists"
            )
        pytest.skip("KLOG_EXPECT_NATIVE=0 and klog._native is not built")


@pytest.fixture(scope="session", params=["c", "python"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "c":
        return request.getfixturevalue("c_impl")
    return _native_py


@pytest.fixture(scope="session")
def both(c_impl: ModuleType) -> tuple[ModuleType, ModuleType]:
    return c_impl, _native_py


def _make_batch(
    records: bytes = b"",
    *,
    base_offset: int = 0,
    count: int = 0,
    last_offset_delta: int = 0,
    base_timestamp: int = 0,
    max_timestamp: int = 0,
    attributes: int = 0,
    partition_leader_epoch: int = 0,
    magic: int = 2,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
) -> bytes:
    after = (
        _AFTER_CRC.pack(
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        )
        + records
    )
    length = 4 + 1 + 4 + len(after)  # leader epoch, magic, crc
    head = _BEFORE_CRC.pack(
        base_offset, length, partition_leader_epoch, magic, crc32c.crc32c(after)
    )
    return head + after


@pytest.fixture(scope="session")
def make_batch() -> Callable[..., bytes]:
    return _make_batch


def _outcome(fn: Callable[..., object], *args: object, **kwargs: object) -> tuple[str, object]:
    try:
        return "ok", fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        return type(exc).__name__, str(exc)


@pytest.fixture(scope="session")
def outcome() -> Callable[..., tuple[str, object]]:
    """Call and return ("ok", result) or (exception type name, message) for comparisons."""
    return _outcome
