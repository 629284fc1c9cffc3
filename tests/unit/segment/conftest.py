"""Fixtures for storage tests: batch builders and small log configurations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from klog.segment import Log, LogConfig
from klog.wire.records import build_batch

BatchFactory = Callable[..., bytearray]


def make_batch(
    count: int = 1,
    timestamp: int = 1_000,
    value_size: int = 10,
    timestamps: list[int] | None = None,
) -> bytearray:
    """A producer-style batch (base offset 0) of ``count`` records; record ``i`` has
    timestamp ``timestamps[i]`` or ``timestamp + i``."""
    stamps = timestamps or [timestamp + i for i in range(count)]
    return bytearray(
        build_batch([(b"k%d" % i, bytes(value_size), [], stamps[i]) for i in range(count)])
    )


@pytest.fixture
def batch() -> BatchFactory:
    return make_batch


@pytest.fixture
def small_config() -> LogConfig:
    """Segments of ~1 KiB and an index entry every ~100 bytes, so tests roll often."""
    return LogConfig(segment_bytes=1024, index_interval_bytes=100, segment_index_bytes=4096)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "topic-0"


@pytest.fixture
def open_log(log_dir: Path) -> Callable[..., Log]:
    def opener(config: LogConfig | None = None, **kwargs: object) -> Log:
        return Log.open(log_dir, config or LogConfig(), now_ms=0, **kwargs)  # type: ignore[arg-type]

    return opener
