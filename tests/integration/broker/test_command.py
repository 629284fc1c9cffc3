"""``klog-server`` as a user runs it: defaults, properties file, ``--override``, ``KLOG_*``
variables, config mistakes, signals, and recovery after SIGKILL.

Each test starts the real command (``python -m klog.cli.server``, what the console script
runs) with its own argv, environment and working directory, which the shared
``KlogNode`` fixture does not vary. Clients are real (confluent-kafka) except where a test
needs a request to stay in flight, which is a raw ``klog.wire`` Fetch.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from klog.wire import (
    CLOSED,
    ClientConnection,
    FetchRequest,
    Response,
    build_batch,
)

LISTENING = re.compile(r"klog listening on (\S+):(\d+)")
DATA_IN = re.compile(r"klog data in (.+)")
CLEAN_SHUTDOWN_MARKER = ".kafka_cleanshutdown"
EPHEMERAL = "PLAINTEXT://127.0.0.1:0"
START_TIMEOUT_S = 30.0
COMMAND = [sys.executable, "-m", "klog.cli.server"]


def base_env() -> dict[str, str]:
    """The test's environment without KLOG_* config variables (they would leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLOG_")}
    env["PYTHONUNBUFFERED"] = "1"
    for keep in ("KLOG_NO_NATIVE", "KLOG_EXPECT_NATIVE"):
        if keep in os.environ:
            env[keep] = os.environ[keep]
    return env


class Server:
    """One ``klog-server`` process with the argv, environment and cwd a test chooses."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.cwd = cwd
        self.env = {**base_env(), **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.bootstrap = ""
        self._changed = threading.Condition()

    def start(self) -> Server:
        self.lines = []
        self.proc = subprocess.Popen(
            COMMAND + self.args,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        match = self.wait_for_line(LISTENING)
        self.bootstrap = f"{match.group(1)}:{match.group(2)}"
        return self

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = START_TIMEOUT_S):
        """The first output line matching ``pattern``; fails if the process ends first."""
        assert self.proc is not None

        def found():
            for line in self.lines:
                match = pattern.search(line)
                if match:
                    return match
            return None

        with self._changed:
            ended = self._changed.wait_for(lambda: found() or self.proc.poll() is not None, timeout)
            match = found()
        if match is None:
            state = "exited" if ended else "timed out"
            raise AssertionError(f"{state} before {pattern.pattern!r}:\n{self.text()}")
        return match

    def line_index(self, pattern: re.Pattern[str]) -> int:
        return next(i for i, line in enumerate(self.lines) if pattern.search(line))

    def text(self) -> str:
        return "".join(self.lines)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = START_TIMEOUT_S) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def servers():
    started: list[Server] = []

    def make(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Server:
        server = Server(args, cwd, env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


def run_to_exit(args: list[str], cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        COMMAND + args,
        cwd=cwd,
        env={**base_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def describe(bootstrap: str, topic: str, partitions: int = -1):
    """Create ``topic`` (broker default partition count unless given); return its metadata
    and the cluster's broker ids."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic].result(timeout=30)
    metadata = admin.list_topics(topic, timeout=30)
    return metadata.topics[topic], sorted(metadata.brokers)


def port_is_free(host: str, port: int) -> bool:
    probe = socket.socket()
    try:
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return False
        raise
    finally:
        probe.close()
    return True


# -- the forms of the command ------------------------------------------------------------


def test_no_arguments_starts_the_embedded_default(servers, tmp_path) -> None:
    # Nothing but the cwd is chosen; the listener is only moved off 9092 when something
    # else on this machine already holds it.
    free = port_is_free("127.0.0.1", 9092)
    args = [] if free else ["--override", f"listeners={EPHEMERAL}"]
    server = servers(args, cwd=tmp_path).start()
    if free:
        assert server.bootstrap == "127.0.0.1:9092"
    data_dir = Path(server.wait_for_line(DATA_IN).group(1).strip())
    assert (tmp_path / data_dir).resolve() == (tmp_path / "klog-data").resolve()
    assert (tmp_path / "klog-data" / "meta.properties").is_file()
    topic, brokers = describe(server.bootstrap, "defaults")
    assert (len(topic.partitions), brokers) == (1, [1])  # num.partitions=1, node.id=1
    assert topic.partitions[0].leader == 1
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert (tmp_path / "klog-data" / "defaults-0").is_dir()


def test_properties_file(servers, tmp_path) -> None:
    properties = tmp_path / "server.properties"
    properties.write_text(
        "# a Kafka-style file\n"
        f"listeners = {EPHEMERAL}\n"
        f"log.dirs={tmp_path / 'from-file'}\n"
        "node.id: 4\n"
        "num.partitions=3\n"
    )
    server = servers([str(properties)], cwd=tmp_path).start()
    topic, brokers = describe(server.bootstrap, "filed")
    assert (len(topic.partitions), brokers) == (3, [4])
    assert (tmp_path / "from-file" / "filed-2").is_dir()
    assert not (tmp_path / "klog-data").exists()


def test_environment_variables(servers, tmp_path) -> None:
    env = {
        "KLOG_LISTENERS": EPHEMERAL,
        "KLOG_LOG_DIRS": str(tmp_path / "from-env"),
        "KLOG_NODE_ID": "5",
        "KLOG_NUM_PARTITIONS": "2",
    }
    server = servers([], cwd=tmp_path, env=env).start()
    topic, brokers = describe(server.bootstrap, "environ")
    assert (len(topic.partitions), brokers) == (2, [5])
    assert (tmp_path / "from-env" / "environ-1").is_dir()


def test_repeated_overrides_win_over_environment_and_file(servers, tmp_path) -> None:
    properties = tmp_path / "server.properties"
    properties.write_text("listeners=PLAINTEXT://127.0.0.1:1\nnum.partitions=3\nnode.id=4\n")
    env = {"KLOG_NUM_PARTITIONS": "4", "KLOG_NODE_ID": "6"}
    args = [
        str(properties),
        "--override",
        f"listeners={EPHEMERAL}",
        "--override",
        f"log.dirs={tmp_path / 'overridden'}",
        "--override",
        "num.partitions=5",
    ]
    server = servers(args, cwd=tmp_path, env=env).start()
    topic, brokers = describe(server.bootstrap, "layered")
    # num.partitions: file 3 < env 4 < override 5; node.id: file 4 < env 6.
    assert (len(topic.partitions), brokers) == (5, [6])


@pytest.mark.parametrize(
    ("args", "env", "must_name"),
    [
        (["--override", "num.partition=3"], {}, ["num.partition", "num.partitions"]),
        (["--override", "listener=PLAINTEXT://:1"], {}, ["listener", "listeners"]),
        (["--override", "log.retention.hour=1"], {}, ["log.retention.hours"]),
        (["--override", "num.partitions"], {}, ["num.partitions", "key=value"]),
        (["--override", "=3"], {}, ["key=value"]),
        (["--override", "num.partitions=three"], {}, ["num.partitions", "three"]),
        (["--override", "num.partitions=0"], {}, ["num.partitions"]),
        (["--override", "retention.ms=1"], {}, ["retention.ms", "log.retention.ms"]),
        ([], {"KLOG_NUM_PARTITION": "3"}, ["KLOG_NUM_PARTITION", "KLOG_NUM_PARTITIONS"]),
        ([], {"KLOG_NODE_ID": "x"}, ["KLOG_NODE_ID", "node.id"]),
    ],
    ids=[
        "typo",
        "singular",
        "hour",
        "no-equals",
        "no-key",
        "bad-int",
        "below-minimum",
        "topic-key",
        "env-typo",
        "env-bad-value",
    ],
)
def test_config_mistakes_are_one_line_exit_2(tmp_path, args, env, must_name) -> None:
    result = run_to_exit(args, tmp_path, env)
    assert result.returncode == 2, result
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    assert message.startswith("klog-server: "), message
    for name in must_name:
        assert name in message, message
    assert result.stdout == ""
    assert not (tmp_path / "klog-data").exists()


def test_properties_file_mistake_names_file_and_line(tmp_path) -> None:
    properties = tmp_path / "server.properties"
    properties.write_text("node.id=1\n\n# comment\nlog.segment.byte=1000\n")
    result = run_to_exit([str(properties)], tmp_path)
    assert result.returncode == 2, result
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    assert f"{properties}:4" in message and "log.segment.bytes" in message, message


def test_missing_properties_file(tmp_path) -> None:
    result = run_to_exit([str(tmp_path / "nope.properties")], tmp_path)
    assert result.returncode == 2, result
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    assert "nope.properties" in message


# -- signals and recovery ----------------------------------------------------------------


def data_args(data_dir: Path) -> list[str]:
    return ["--override", f"listeners={EPHEMERAL}", "--override", f"log.dirs={data_dir}"]


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    failures: list[object] = []
    for i in range(count):
        producer.produce(
            topic,
            value=b"v%d" % i,
            on_delivery=lambda err, _msg: failures.append(err) if err else None,
        )
    assert producer.flush(30) == 0
    assert failures == []


def end_offset(bootstrap: str, topic: str) -> int:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "ends"})
    try:
        _, high = consumer.get_watermark_offsets(
            confluent_kafka.TopicPartition(topic, 0), timeout=30
        )
    finally:
        consumer.close()
    return high


class PendingFetch:
    """A raw Fetch long poll left in flight on its own connection."""

    def __init__(self, bootstrap: str, topic: str, offset: int, max_wait_ms: int) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=START_TIMEOUT_S)
        self.conn = ClientConnection(client_id="pending")
        partition = FetchRequest.FetchPartition(
            partition=0, fetch_offset=offset, partition_max_bytes=1 << 20
        )
        request = FetchRequest(
            replica_id=-1,
            max_wait_ms=max_wait_ms,
            min_bytes=1,
            max_bytes=1 << 20,
            isolation_level=0,
            session_id=0,
            session_epoch=-1,
            topics=[FetchRequest.FetchTopic(topic=topic, partitions=[partition])],
            forgotten_topics_data=[],
            rack_id="",
        )
        _, data = self.conn.send_request(request, 12)
        self.sock.sendall(data)

    def response(self):
        while True:
            event = self.conn.next_event()
            if isinstance(event, Response):
                return event.body
            if event is CLOSED:
                raise ConnectionError("broker closed the connection with the fetch in flight")
            self.conn.receive_data(self.sock.recv(1 << 16))

    def close(self) -> None:
        self.sock.close()


SHUTTING_DOWN = re.compile(r"shutting down")
SHUTDOWN_COMPLETE = re.compile(r"shutdown complete")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signal_drains_in_flight_requests_and_exits_0(servers, tmp_path, signum) -> None:
    data_dir = tmp_path / "data"
    server = servers(data_args(data_dir), cwd=tmp_path).start()
    describe(server.bootstrap, "drained", partitions=1)
    produce(server.bootstrap, "drained", 10)
    pending = PendingFetch(server.bootstrap, "drained", offset=10, max_wait_ms=1500)
    try:
        # The fetch is waiting for data that will never come; the signal must not cut it.
        describe(server.bootstrap, "barrier", partitions=1)
        server.signal(signum)
        response = pending.response()
    finally:
        pending.close()
    assert response.error_code == 0
    (partition,) = response.responses[0].partitions
    assert (partition.error_code, partition.high_watermark) == (0, 10)
    assert server.wait() == 0, server.text()
    server.wait_for_line(SHUTDOWN_COMPLETE)
    assert server.line_index(SHUTTING_DOWN) < server.line_index(SHUTDOWN_COMPLETE)
    assert "Traceback" not in server.text()
    marker = data_dir / CLEAN_SHUTDOWN_MARKER
    assert marker.is_file() and marker.read_bytes()


def test_second_signal_exits_at_once(servers, tmp_path) -> None:
    data_dir = tmp_path / "data"
    server = servers(data_args(data_dir), cwd=tmp_path).start()
    describe(server.bootstrap, "stuck", partitions=1)
    # A minute-long poll in flight keeps the first shutdown draining.
    pending = PendingFetch(server.bootstrap, "stuck", offset=0, max_wait_ms=60_000)
    try:
        describe(server.bootstrap, "barrier", partitions=1)
        server.signal(signal.SIGTERM)
        server.wait_for_line(SHUTTING_DOWN)
        assert server.proc.poll() is None, "the first shutdown did not wait for the fetch"
        server.signal(signal.SIGTERM)
        code = server.wait(timeout=10)
    finally:
        pending.close()
    assert code == 128 + signal.SIGTERM, server.text()
    assert "shutdown complete" not in server.text()
    assert not (data_dir / CLEAN_SHUTDOWN_MARKER).exists()


TORN_TAIL = build_batch([(b"k", b"torn", [], 1_700_000_000_000)])[:40]
RECOVERY_CUT = re.compile(r"recovery of \S+ removed 40 bytes")


def append_torn_tail(data_dir: Path, topic: str) -> Path:
    """A half-written batch at the end of the active segment, as a crash mid-write leaves."""
    (segment,) = sorted((data_dir / f"{topic}-0").glob("*.log"))
    with segment.open("ab") as f:
        f.write(TORN_TAIL)
    return segment


def test_startup_after_sigkill_recovers_before_serving(servers, tmp_path) -> None:
    data_dir = tmp_path / "data"
    server = servers(data_args(data_dir), cwd=tmp_path).start()
    describe(server.bootstrap, "crashed", partitions=1)
    produce(server.bootstrap, "crashed", 25)
    server.kill()
    assert not (data_dir / CLEAN_SHUTDOWN_MARKER).exists()
    segment = append_torn_tail(data_dir, "crashed")
    torn_size = segment.stat().st_size

    server.start()
    # The scan cut the torn batch, and did so before the listener was announced.
    assert server.line_index(RECOVERY_CUT) < server.line_index(LISTENING), server.text()
    assert segment.stat().st_size == torn_size - len(TORN_TAIL)
    assert end_offset(server.bootstrap, "crashed") == 25
    produce(server.bootstrap, "crashed", 5)
    assert end_offset(server.bootstrap, "crashed") == 30


def test_restart_after_clean_shutdown_skips_recovery(servers, tmp_path) -> None:
    data_dir = tmp_path / "data"
    server = servers(data_args(data_dir), cwd=tmp_path).start()
    describe(server.bootstrap, "tidy", partitions=1)
    produce(server.bootstrap, "tidy", 25)
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    marker = data_dir / CLEAN_SHUTDOWN_MARKER
    assert marker.is_file()
    # Planted after the clean stop: a scan would cut it, so its survival shows startup
    # trusted the marker and skipped the scan (DESIGN.md section 3).
    segment = append_torn_tail(data_dir, "tidy")
    torn_size = segment.stat().st_size

    server.start()
    assert not RECOVERY_CUT.search(server.text()), server.text()
    assert segment.stat().st_size == torn_size
    assert not marker.exists(), "the marker must be consumed so a later crash recovers"
    server.kill()
