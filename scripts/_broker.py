"""A klog-server subprocess for the benchmark scripts: start, counters, stop.

The broker binds an ephemeral loopback port and prints ``klog listening on HOST:PORT``;
its output goes to a log file next to its data dir (drained continuously so the
broker never blocks on a full pipe).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

LISTENING = re.compile(r"klog listening on (\S+):(\d+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Broker:
    """One klog-server on its own data dir, with its CPU and memory counters."""

    def __init__(self, data_dir: Path, overrides: dict[str, str] | None = None) -> None:
        self.args = [sys.executable, "-m", "klog.cli.server"]
        for key, value in {
            "listeners": "PLAINTEXT://127.0.0.1:0",
            "log.dirs": str(data_dir),
            **(overrides or {}),
        }.items():
            self.args += ["--override", f"{key}={value}"]
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.proc: subprocess.Popen[str] | None = None
        self.bootstrap = ""

    def start(self) -> Broker:
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                match = LISTENING.search(line)
                if match and not ready.is_set():
                    self.bootstrap = f"{match.group(1)}:{match.group(2)}"
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(60) or not self.bootstrap:
            raise RuntimeError(f"broker did not start; see {self.log_path}")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def peak_rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM")

    def stop(self, timeout: float = 120) -> int:
        """SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.proc is None:
            return -1
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
