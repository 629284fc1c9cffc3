"""Fixtures for the bundled client's integration tests: one real klog-server per test,
an Admin client on it, and a factory of fresh topics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from klog.client import Admin


@pytest.fixture
def bootstrap(klog_node) -> str:
    return klog_node.bootstrap


@pytest.fixture
def admin(bootstrap: str) -> Iterator[Admin]:
    with Admin(bootstrap, default_api_timeout_ms=20000) as client:
        yield client


@pytest.fixture
def new_topic(admin: Admin) -> Callable[..., str]:
    def make(partitions: int = 1, configs: dict[str, str] | None = None) -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        admin.create_topic(name, partitions, 1, configs)
        return name

    return make


def _consume_all(consumer, count: int, timeout: float = 20.0) -> list:
    """Poll until ``count`` records arrived (or fail after ``timeout`` seconds)."""
    records: list = []
    deadline = time.monotonic() + timeout
    while len(records) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"got {len(records)} of {count} records in {timeout}s")
        records += consumer.poll(0.5)
    return records


@pytest.fixture(name="consume_all")
def consume_all_fixture() -> Callable[..., list]:
    return _consume_all
