"""Real klog-server processes for integration tests.

Each node is a subprocess started with ``listeners=PLAINTEXT://127.0.0.1:0``; the
server binds an ephemeral port and prints ``klog listening on HOST:PORT``, which the
harness reads, so tests never race for a port. Nodes are killed with real signals.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LISTENING = re.compile(r"klog listening on (\S+):(\d+)")


class KlogNode:
    """One klog-server process and its data directory."""

    def __init__(self, data_dir: Path, overrides: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.overrides = {
            "listeners": "PLAINTEXT://127.0.0.1:0",
            "log.dirs": str(data_dir),
            **(overrides or {}),
        }
        self.proc: subprocess.Popen[str] | None = None
        self.host = ""
        self.port = 0
        self.output: list[str] = []

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> KlogNode:
        args = [sys.executable, "-m", "klog.cli.server"]
        for key, value in self.overrides.items():
            args += ["--override", f"{key}={value}"]
        # Each start has its own event and address: the previous process's output
        # reader may reach its end only now, and must not wake this start (a restart
        # then returned the old port before the new process was listening).
        self.host, self.port = "", 0
        listening = threading.Event()
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        threading.Thread(target=self._pump, args=(self.proc, listening), daemon=True).start()
        if not listening.wait(timeout) or not self.port:
            self.kill()
            raise RuntimeError("klog-server did not start:\n" + "".join(self.output[-50:]))
        return self

    def _pump(self, proc: subprocess.Popen[str], listening: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line)
            match = LISTENING.search(line)
            if match and not listening.is_set():
                self.host, self.port = match.group(1), int(match.group(2))
                listening.set()
        listening.set()  # the process ended without listening: start() says so now

    def stop(self, timeout: float = 30.0) -> int:
        """Graceful stop (SIGTERM); returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, no clean-shutdown marker."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def restart(self) -> KlogNode:
        """Start again on the same data directory (the port may change)."""
        return self.start()

    def log_text(self) -> str:
        return "".join(self.output)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    return wait_for


@pytest.fixture
def klog_node_factory(tmp_path: Path) -> Iterator:
    nodes: list[KlogNode] = []

    def make(overrides: dict[str, str] | None = None, name: str = "node") -> KlogNode:
        node = KlogNode(tmp_path / f"{name}-{len(nodes)}", overrides)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.kill()


@pytest.fixture
def klog_node(klog_node_factory) -> KlogNode:
    return klog_node_factory().start()
