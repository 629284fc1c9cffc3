"""Consumer groups against a real klog node: members are real client processes.

Each ``Member`` runs ``consumer_child.py`` (confluent-kafka, kafka-python or aiokafka) in
a subprocess and collects the JSON events it prints, so a test can SIGKILL a member as
it would crash in production. ``members`` kills whatever a test leaves running.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from klog.wire import ConsumerProtocolSubscription
from klog.wire.versioned import encode_versioned
from tests.integration.conftest import KlogNode, wait_for

CHILD = Path(__file__).with_name("consumer_child.py")
TIMEOUT = 60.0

# Groups start at once and __consumer_offsets is small, so nodes start quickly.
GROUP_NODE = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "8"}


class Member:
    """One consumer process and what it reported."""

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.config = config
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["e"] == kind]

    def assignment(self) -> set[tuple[str, int]]:
        changes = self.of("assignment")
        return {tuple(p) for p in changes[-1]["partitions"]} if changes else set()

    def records(self) -> list[tuple[str, int, int, str]]:
        return [(e["t"], e["p"], e["o"], e["v"]) for e in self.of("record")]

    def committed(self) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for e in self.of("committed"):
            out[(e["t"], e["p"])] = e["o"]
        return out

    def stop(self) -> None:
        """SIGTERM: the member leaves the group and closes cleanly."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: self.of("closed"), TIMEOUT, what=f"{self.name} to close")
        self.proc.wait(TIMEOUT)

    def kill(self) -> None:
        """SIGKILL: no LeaveGroup, no commit; the coordinator must notice on its own."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)

    def __repr__(self) -> str:
        return f"Member({self.name}, assignment={sorted(self.assignment())})"


@pytest.fixture
def group_node(klog_node_factory) -> KlogNode:
    return klog_node_factory(GROUP_NODE).start()


@pytest.fixture
def members() -> Iterator[Callable[..., Member]]:
    started: list[Member] = []

    def spawn(name: str, bootstrap: str, group: str, topics: list[str], **config: Any) -> Member:
        member = Member(
            name,
            {
                "client": "confluent",
                "bootstrap": bootstrap,
                "group": group,
                "topics": topics,
                "session_timeout_ms": 6000,
                "commit": True,
                **config,
            },
        )
        started.append(member)
        return member

    yield spawn
    for member in started:
        member.kill()


def subscription_bytes(*topics: str) -> bytes:
    """JoinGroup metadata of a consumer subscribing to ``topics``."""
    return encode_versioned(ConsumerProtocolSubscription(topics=list(topics)), 0)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, name: str, partitions: int) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(TIMEOUT)
    return name


def produce(bootstrap: str, topic: str, partitions: int, values: list[str]) -> None:
    """Values go round-robin over the partitions, so each gets its share."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, value in enumerate(values):
        producer.produce(topic, value=value.encode(), partition=i % partitions)
    assert producer.flush(TIMEOUT) == 0


def all_partitions(topic: str, partitions: int) -> set[tuple[str, int]]:
    return {(topic, p) for p in range(partitions)}


def settled(group: list[Member], expected: set[tuple[str, int]]) -> bool:
    """Every partition is assigned to exactly one member of ``group``, and every member
    has some (so a member that has not joined yet does not look settled)."""
    assignments = [m.assignment() for m in group]
    seen = [tp for assignment in assignments for tp in assignment]
    return all(assignments) and len(seen) == len(set(seen)) and set(seen) == expected
