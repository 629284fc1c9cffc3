#!/usr/bin/env python3
"""Benchmark a klog broker against this machine's limits, measured in the same run.

Not a test: it prints the command used and Markdown tables (MB = 10^6 bytes).

1. Limits: sequential buffered file write on the data disk (no fsync: what the broker
   does between flushes); loopback TCP between two processes; ``sendfile`` from the page
   cache to a loopback socket (a second process reads and discards).
2. A broker subprocess (``python -m klog.cli.server``) on its own temp data dir.
3. Produce with confluent-kafka: 1 KiB records, 1 partition, linger.ms=5, acks=1 and
   acks=all, ``--records`` each (default 2,000,000). Goal: MB/s >= 0.5 x file write.
4. Consume the acks=1 topic back with the confluent-kafka consumer, and with a raw fetch
   loop (klog.wire Fetch v12 over a plain socket, bytes discarded, only batch headers
   read to find the next offset): the broker's serving rate. Goal: >= 0.8 x sendfile.
5. Latency: 5,000 records/s for 20 s, acks=all, linger.ms=0 and 5; librdkafka's own
   produce()-to-acknowledgement time per record. Goal: p99 <= 5 ms.
6. Broker CPU seconds per GB produced and per GB fetched (utime+stime of
   ``/proc/<pid>/stat``); peak RSS (VmHWM of ``/proc/<pid>/status``). Goal: <= 150 MB.

``--py-spy DIR`` records a py-spy profile of the broker for every phase (collapsed stacks,
``DIR/<phase>.txt``) and prints the hottest lines.

    python scripts/bench_broker.py [--records 2000000] [--latency-seconds 20] [--py-spy DIR]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import platform
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import confluent_kafka
from _broker import CLOCK_TICKS, Broker
from confluent_kafka.admin import AdminClient, NewTopic

from klog import native
from klog.wire import (
    ClientConnection,
    FetchRequest,
    FetchResponse,
    ProduceRequest,
    ProduceResponse,
    ResponseHeader,
)
from klog.wire.records import build_batch

MB = 1_000_000
GB = 1_000_000_000
CHUNK = 1 << 20
FETCH_VERSION = 12  # flexible: request header v2, response header v1
PRODUCE_VERSION = 9  # flexible as well
# What librdkafka builds under load with its default batch.size (1,000,000 bytes).
RAW_PRODUCE_BATCH_RECORDS = 960
# Requests the raw produce loop keeps in flight, as librdkafka's default
# max.in.flight.requests.per.connection (5).
RAW_PRODUCE_IN_FLIGHT = 5
CORRELATION_ID_POS = 8  # size prefix, api key, api version
# Batch header fields the raw fetch loop reads: base offset, batch length, last offset delta.
BATCH_PREFIX = struct.Struct(">qi")
LAST_OFFSET_DELTA = struct.Struct(">i")
LAST_OFFSET_DELTA_POS = 23
LOG_OVERHEAD = 12
LIMIT_RUNS = 3
# Receive buffer of the limit sinks: as large as the raw fetch loop's, so that both
# receivers pay the same per-syscall overhead.
SINK_BUFFER = 8 << 20


# -- machine limits --------------------------------------------------------------------


def measure_file_write(directory: Path, size: int) -> float:
    """Bytes/s of sequential 1 MiB buffered writes (page cache, no fsync), close included."""
    block = os.urandom(CHUNK)
    path = directory / "limit-file-write"
    start = time.perf_counter()
    with path.open("wb") as f:
        for _ in range(size // CHUNK):
            f.write(block)
    elapsed = time.perf_counter() - start
    path.unlink()
    return size / elapsed


def warm_page_cache(directory: Path, size: int) -> int:
    """Write and delete ``size`` bytes (at most 80% of available memory); returns the size.

    In a VM the hypervisor may back a guest page only when it is first touched, which
    makes the first write into never-used memory several times slower. The limits are
    best-of-runs (warm) and the phases write gigabytes of fresh page cache, so without
    this the phases, not the limits, would pay for that first touch."""
    available = int(Path("/proc/meminfo").read_text().split("MemAvailable:")[1].split()[0])
    size = min(size, available * 1024 * 8 // 10) // CHUNK * CHUNK
    block = os.urandom(CHUNK)
    path = directory / "warm-page-cache"
    with path.open("wb") as f:
        for _ in range(size // CHUNK):
            f.write(block)
    path.unlink()
    return size


def _sink(port: int, expected: int) -> None:
    """Child process: read ``expected`` bytes into one reused buffer, then ack one byte."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        buffer = memoryview(bytearray(SINK_BUFFER))
        received = 0
        while received < expected:
            n = sock.recv_into(buffer)
            if not n:
                raise ConnectionError("sender closed early")
            received += n
        sock.sendall(b"k")


@contextmanager
def _sink_process(expected: int) -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        context = multiprocessing.get_context("spawn")
        child = context.Process(target=_sink, args=(server.getsockname()[1], expected))
        child.start()
        conn, _ = server.accept()
        try:
            yield conn
            if conn.recv(1) != b"k":
                raise ConnectionError("sink did not acknowledge")
        finally:
            conn.close()
            child.join(30)


def measure_tcp(size: int) -> float:
    block = memoryview(os.urandom(CHUNK))
    size = size // CHUNK * CHUNK
    with _sink_process(size) as conn:
        start = time.perf_counter()
        for _ in range(size // CHUNK):
            conn.sendall(block)
        conn.recv(1, socket.MSG_PEEK)  # the sink's ack: everything arrived
        elapsed = time.perf_counter() - start
    return size / elapsed


def measure_sendfile(directory: Path, size: int) -> float:
    """Bytes/s of os.sendfile from a page-cached file (written, then read once)."""
    path = directory / "limit-sendfile"
    file_size = min(size, 1 << 30) // CHUNK * CHUNK
    with path.open("wb") as f:
        block = os.urandom(CHUNK)
        for _ in range(file_size // CHUNK):
            f.write(block)
    with path.open("rb") as f:
        while f.read(8 * CHUNK):
            pass
    rounds = max(1, size // file_size)
    total = rounds * file_size
    with path.open("rb") as f, _sink_process(total) as conn:
        start = time.perf_counter()
        for _ in range(rounds):
            offset = 0
            while offset < file_size:
                offset += os.sendfile(conn.fileno(), f.fileno(), offset, file_size - offset)
        conn.recv(1, socket.MSG_PEEK)
        elapsed = time.perf_counter() - start
    path.unlink()
    return total / elapsed


# -- the broker ------------------------------------------------------------------------


@dataclass
class Phase:
    """What one phase moved and what it cost."""

    name: str
    records: int = 0
    bytes: int = 0
    seconds: float = 0.0
    broker_cpu: float = 0.0
    client_cpu: float = 0.0
    other_cpu: float = 0.0  # everything else on the machine: other load skews the numbers
    latencies: list[float] = field(default_factory=list)

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds


def client_cpu_seconds() -> float:
    """This process with its librdkafka threads (and children, none while phases run)."""
    times = os.times()
    return times.user + times.system


def machine_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@contextmanager
def measured(phase: Phase, broker: Broker, profile_dir: Path | None) -> Iterator[Phase]:
    spy = _start_py_spy(broker.pid, profile_dir, phase.name) if profile_dir else None
    cpu0, client0, machine0 = broker.cpu_seconds(), client_cpu_seconds(), machine_cpu_seconds()
    start = time.perf_counter()
    yield phase
    phase.seconds = time.perf_counter() - start
    phase.broker_cpu = broker.cpu_seconds() - cpu0
    phase.client_cpu = client_cpu_seconds() - client0
    phase.other_cpu = machine_cpu_seconds() - machine0 - phase.broker_cpu - phase.client_cpu
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(120)


def _start_py_spy(pid: int, directory: Path, name: str) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(directory / f"{name}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # py-spy attaches before the phase starts; a benchmark, not a test
    return spy


# -- phases ----------------------------------------------------------------------------


def create_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(
        timeout=30
    )


def produce(bootstrap: str, topic: str, records: int, value: bytes, acks: str, phase: Phase):
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "linger.ms": 5,
            "compression.type": "none",
            "enable.idempotence": False,
            "queue.buffering.max.messages": 1_000_000,
            # Acknowledgements still gate flush(); only failures cost a Python callback.
            "delivery.report.only.error": True,
        }
    )
    failed: list[object] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failed.append(err)

    produce_one = producer.produce
    for _ in range(records):
        while True:
            try:
                produce_one(topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.001)
    if producer.flush(600) != 0 or failed:
        raise RuntimeError(f"{len(failed)} records failed, e.g. {failed[:1]}")
    phase.records = records
    phase.bytes = records * len(value)


def client_ceiling(records: int, value: bytes, phase: Phase) -> None:
    """The producing thread's own ceiling: produce() into a queue no broker ever drains.

    Every produce phase above pays at least this per record in this process, whatever
    the broker does, so it bounds what a broker can be measured at with this client."""
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": "127.0.0.1:1",  # nothing listens there
            "log_level": 0,
            "queue.buffering.max.messages": records,
            "queue.buffering.max.kbytes": 2**31 - 1,
        }
    )
    produce_one = producer.produce
    for _ in range(records):
        produce_one("ceiling", value)
    phase.records = records
    phase.bytes = records * len(value)
    producer.purge()
    producer.flush(0)


def raw_produce(bootstrap: str, topic: str, records: int, value: bytes, acks: int, phase: Phase):
    """The broker's ingest rate: pipelined Produce requests of prebuilt ~1 MB batches.

    The batches are what librdkafka would send; building them is left out so that the
    client costs nothing per record and the broker alone sets the pace."""
    batch = build_batch([(None, value, [], 0)] * RAW_PRODUCE_BATCH_RECORDS)
    body = ProduceRequest(
        transactional_id=None,
        acks=acks,
        timeout_ms=30_000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)],
            )
        ],
    )
    frame = bytearray(ClientConnection("bench-raw-produce").send_request(body, PRODUCE_VERSION)[1])
    host, port = bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    buffer = bytearray(CHUNK)
    requests = -(-records // RAW_PRODUCE_BATCH_RECORDS)
    sent = answered = 0
    while answered < requests:
        while sent < requests and sent - answered < RAW_PRODUCE_IN_FLIGHT:
            sent += 1
            struct.pack_into(">i", frame, CORRELATION_ID_POS, sent)
            sock.sendall(frame)
        size = _recv_frame(sock, buffer)
        _, position = ResponseHeader.decode_from(memoryview(buffer)[:size], 0, 1)
        response, _ = ProduceResponse.decode_from(buffer[:size], position, PRODUCE_VERSION)
        (partition,) = response.responses[0].partition_responses
        if partition.error_code:
            raise RuntimeError(f"produce error {partition.error_code}")
        answered += 1
    sock.close()
    phase.records = requests * RAW_PRODUCE_BATCH_RECORDS
    phase.bytes = phase.records * len(value)


def consume(bootstrap: str, topic: str, records: int, phase: Phase) -> None:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    consumer.assign([confluent_kafka.TopicPartition(topic, 0, 0)])
    seen = 0
    size = 0
    deadline = time.monotonic() + 600
    while seen < records:
        messages = consumer.consume(num_messages=10_000, timeout=1.0)
        for message in messages:
            if message.error() is not None:
                raise RuntimeError(message.error())
            size += len(message.value())
        seen += len(messages)
        if time.monotonic() > deadline:
            raise RuntimeError(f"consumer stalled at {seen} of {records}")
    consumer.close()
    phase.records = records
    phase.bytes = size


def raw_fetch(bootstrap: str, topic: str, end_offset: int, fetch_bytes: int, phase: Phase):
    """Fetch [0, end_offset) with back-to-back Fetch requests; read batch headers only."""
    host, port = bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    buffer = bytearray(fetch_bytes + CHUNK)
    offset = 0
    received = 0
    correlation_id = 0
    while offset < end_offset:
        correlation_id += 1
        request = _fetch_frame(topic, offset, fetch_bytes, correlation_id)
        sock.sendall(request)
        size = _recv_frame(sock, buffer)
        received += 4 + size
        offset = _next_offset(memoryview(buffer)[:size], offset)
    sock.close()
    phase.records = end_offset
    phase.bytes = received


def _fetch_frame(topic: str, offset: int, fetch_bytes: int, correlation_id: int) -> bytes:
    partition = FetchRequest.FetchPartition(
        partition=0, fetch_offset=offset, partition_max_bytes=fetch_bytes
    )
    body = FetchRequest(
        replica_id=-1,
        max_wait_ms=500,
        min_bytes=1,
        max_bytes=fetch_bytes,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=[FetchRequest.FetchTopic(topic=topic, partitions=[partition])],
        forgotten_topics_data=[],
        rack_id="",
    )
    frame = bytearray(ClientConnection("bench-raw-fetch").send_request(body, FETCH_VERSION)[1])
    struct.pack_into(">i", frame, CORRELATION_ID_POS, correlation_id)
    return frame


def _recv_frame(sock: socket.socket, buffer: bytearray) -> int:
    view = memoryview(buffer)
    got = 0
    while got < 4:
        n = sock.recv_into(view[got:4])
        if not n:
            raise ConnectionError("broker closed the connection")
        got += n
    (size,) = struct.unpack_from(">i", buffer)
    if size > len(buffer):
        raise RuntimeError(f"response of {size} bytes exceeds the buffer")
    got = 0
    while got < size:
        n = sock.recv_into(view[got:size])
        if not n:
            raise ConnectionError("broker closed mid-response")
        got += n
    return size


def _next_offset(frame: memoryview, offset: int) -> int:
    _, position = ResponseHeader.decode_from(frame, 0, 1)
    response, _ = FetchResponse.decode_from(frame, position, FETCH_VERSION)
    (partition,) = response.responses[0].partitions
    if partition.error_code:
        raise RuntimeError(f"fetch error {partition.error_code} at offset {offset}")
    records = partition.records or b""
    position = 0
    while position + LOG_OVERHEAD <= len(records):
        base, length = BATCH_PREFIX.unpack_from(records, position)
        if position + LOG_OVERHEAD + length > len(records):
            break  # a partial batch at the end of the response
        (delta,) = LAST_OFFSET_DELTA.unpack_from(records, position + LAST_OFFSET_DELTA_POS)
        offset = base + delta + 1
        position += LOG_OVERHEAD + length
    return offset


def latency(bootstrap: str, topic: str, rate: int, seconds: float, linger: int, phase: Phase):
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": linger,
            "enable.idempotence": False,
        }
    )
    value = os.urandom(1024)
    latencies = phase.latencies
    failed: list[object] = []

    def on_delivery(err, msg) -> None:
        if err is None:
            latencies.append(msg.latency())
        else:
            failed.append(err)

    producer.produce(topic, value)  # connect and learn metadata before the clock starts
    producer.flush(30)
    total = int(rate * seconds)
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        while (wait := due - time.perf_counter()) > 0:
            # Serve delivery reports, then sleep off the rest of the gap.
            if not producer.poll(0):
                time.sleep(min(wait, 0.001))
        producer.produce(topic, value, on_delivery=on_delivery)
    producer.flush(60)
    if failed:
        raise RuntimeError(f"{len(failed)} records failed, e.g. {failed[:1]}")
    phase.records = total
    phase.bytes = total * len(value)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- report ----------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    return "\n".join([line, rule, *body])


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def hot_spots(path: Path, limit: int = 12) -> list[tuple[str, float, float]]:
    """(frame, self %, inclusive %) from py-spy's collapsed stacks, hottest self first."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return [
        (frame, 100 * n / total, 100 * inclusive[frame] / total)
        for frame, n in own.most_common(limit)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--record-bytes", type=int, default=1024)
    parser.add_argument("--latency-rate", type=int, default=5000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--fetch-bytes", type=int, default=8 << 20)
    parser.add_argument("--limit-bytes", type=int, default=2 << 30, help="per limit measured")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temp data dir")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir")
    args = parser.parse_args(argv)

    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print(
        f"machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}, klog native={native.IMPLEMENTATION}, confluent-kafka "
        f"{confluent_kafka.version()} (librdkafka {confluent_kafka.libversion()[0]})"
    )
    work = Path(tempfile.mkdtemp(prefix="klog-bench-", dir=args.dir))
    data_dir = work / "data"
    data_dir.mkdir()
    try:
        run(args, work, data_dir)
    finally:
        if args.keep:
            print(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, data_dir: Path) -> None:
    size = args.limit_bytes
    # Both confluent-kafka produce phases and both raw produce phases keep their data.
    phase_bytes = 4 * args.records * args.record_bytes
    warmed = warm_page_cache(data_dir, phase_bytes + size)
    print(f"page cache warmed: {warmed / GB:.1f} GB written and deleted", flush=True)
    # A limit is the best of a few runs. The first file write in a fresh VM can be several
    # times slower (the hypervisor backs guest pages on first touch), so all runs are shown.
    writes = [measure_file_write(data_dir, size) for _ in range(LIMIT_RUNS)]
    tcps = [measure_tcp(size) for _ in range(LIMIT_RUNS)]
    sendfiles = [measure_sendfile(data_dir, size) for _ in range(LIMIT_RUNS)]
    file_write, sendfile = max(writes), max(sendfiles)
    print()
    print(
        table(
            ["limit (best of runs)", "MB/s", "runs MB/s"],
            [
                [label, f"{max(runs) / MB:,.0f}", ", ".join(f"{r / MB:,.0f}" for r in runs)]
                for label, runs in (
                    ("file write, buffered, data disk", writes),
                    ("loopback TCP, 2 processes", tcps),
                    ("sendfile, page cache -> loopback", sendfiles),
                )
            ],
        ),
        flush=True,
    )

    broker = Broker(data_dir).start()
    print(f"\nbroker pid {broker.pid} on {broker.bootstrap}, log {broker.log_path}", flush=True)
    value = os.urandom(args.record_bytes)
    phases: dict[str, Phase] = {}
    profile = args.py_spy

    def phase(name: str, body: Callable[[Phase], None]) -> Phase:
        result = Phase(name)
        with measured(result, broker, profile):
            body(result)
        phases[name] = result
        print(f"  {name}: {result.seconds:.1f}s", flush=True)
        return result

    try:
        for acks, topic in (("1", "bench-acks1"), ("all", "bench-acksall")):
            create_topic(broker.bootstrap, topic)
            phase(
                f"produce-acks{acks}",
                lambda p, t=topic, a=acks: produce(broker.bootstrap, t, args.records, value, a, p),
            )
        phase("client-ceiling", lambda p: client_ceiling(min(args.records, 500_000), value, p))
        for acks, topic in ((1, "bench-raw-acks1"), (-1, "bench-raw-acksall")):
            create_topic(broker.bootstrap, topic)
            phase(
                f"raw-produce-acks{acks}",
                lambda p, t=topic, a=acks: raw_produce(
                    broker.bootstrap, t, args.records, value, a, p
                ),
            )
        phase("consume", lambda p: consume(broker.bootstrap, "bench-acks1", args.records, p))
        phase(
            "raw-fetch",
            lambda p: raw_fetch(broker.bootstrap, "bench-acks1", args.records, args.fetch_bytes, p),
        )
        for linger in (0, 5):
            topic = f"bench-latency-linger{linger}"
            create_topic(broker.bootstrap, topic)
            phase(
                f"latency-linger{linger}",
                lambda p, t=topic, lg=linger: latency(
                    broker.bootstrap, t, args.latency_rate, args.latency_seconds, lg, p
                ),
            )
        peak_rss = broker.peak_rss_bytes()
    finally:
        code = broker.stop()
    report(phases, file_write, sendfile, peak_rss, code, args)
    if profile is not None:
        for name in phases:
            path = profile / f"{name}.txt"
            if path.exists():
                print(f"\npy-spy, broker, {name} (self %, inclusive %):")
                for frame, own, inclusive in hot_spots(path):
                    print(f"  {own:5.1f} {inclusive:5.1f}  {frame}")


THROUGHPUT_COLUMNS = ["throughput", "records", "records/s", "MB/s", "vs limit", "goal"]
LATENCY_COLUMNS = ["latency, acks=all", "records", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "goal"]
OTHERS_COLUMN = "other processes' CPU s"


def throughput_row(label: str, p: Phase, limit_name: str, limit: float, goal: float | None):
    ratio = p.bytes / p.seconds / limit
    return [
        label,
        f"{p.records:,}",
        f"{p.records_per_s:,.0f}",
        f"{p.mb_per_s:,.1f}",
        f"{ratio:.2f} of {limit_name}",
        "" if goal is None else f">= {goal}: {verdict(ratio >= goal)}",
        f"{p.broker_cpu / (p.bytes / GB):.1f}",
        f"{p.client_cpu:.1f}",
        f"{p.other_cpu:.1f}",
    ]


def latency_row(label: str, p: Phase) -> list[str]:
    p99 = percentile(p.latencies, 0.99) * 1000
    return [
        label,
        f"{len(p.latencies):,}",
        f"{percentile(p.latencies, 0.5) * 1000:.2f}",
        f"{p99:.2f}",
        f"{percentile(p.latencies, 0.999) * 1000:.2f}",
        f"{max(p.latencies) * 1000:.2f}",
        f"p99 <= 5 ms: {verdict(p99 <= 5)}",
        f"{p.broker_cpu / p.records * 1e6:.0f}",
        f"{p.other_cpu:.1f}",
    ]


def report(
    phases: dict[str, Phase],
    file_write: float,
    sendfile: float,
    peak_rss: int,
    exit_code: int,
    args: argparse.Namespace,
) -> None:
    fetch_label = f"raw fetch loop, {args.fetch_bytes >> 20} MiB per Fetch"
    rows = [
        throughput_row(
            "produce acks=1 linger.ms=5", phases["produce-acks1"], "file write", file_write, 0.5
        ),
        throughput_row(
            "produce acks=all linger.ms=5", phases["produce-acksall"], "file write", file_write, 0.5
        ),
        throughput_row(
            "confluent-kafka produce() alone, no broker",
            phases["client-ceiling"],
            "file write",
            file_write,
            None,
        ),
        throughput_row(
            "raw produce loop acks=1, ~1 MB batches",
            phases["raw-produce-acks1"],
            "file write",
            file_write,
            None,
        ),
        throughput_row(
            "raw produce loop acks=all, ~1 MB batches",
            phases["raw-produce-acks-1"],
            "file write",
            file_write,
            None,
        ),
        throughput_row("consume confluent-kafka", phases["consume"], "sendfile", sendfile, None),
        throughput_row(fetch_label, phases["raw-fetch"], "sendfile", sendfile, 0.8),
    ]
    print()
    print(
        table(
            [*THROUGHPUT_COLUMNS, "broker CPU s/GB", "client CPU s", OTHERS_COLUMN],
            rows,
        )
    )
    rate = f"{args.latency_rate:,}/s for {args.latency_seconds:g}s"
    print()
    print(
        table(
            [*LATENCY_COLUMNS, "broker CPU us/record", OTHERS_COLUMN],
            [
                latency_row(f"linger.ms={linger}, {rate}", phases[f"latency-linger{linger}"])
                for linger in (0, 5)
            ],
        )
    )
    # The latency phases send one small request per record: their cost is per record
    # (above), so only the batched produce phases count here.
    produce_phases = [phases["produce-acks1"], phases["produce-acksall"]]
    fetch_phases = [phases["consume"], phases["raw-fetch"]]
    per_gb = [
        sum(p.broker_cpu for p in group) / sum(p.bytes for p in group) * GB
        for group in (produce_phases, fetch_phases)
    ]
    rss_ok = verdict(peak_rss <= 150 * MB)
    print()
    print(
        table(
            ["broker", "value", "goal"],
            [
                ["CPU s per GB produced (acks=1 and acks=all)", f"{per_gb[0]:.1f}", ""],
                ["CPU s per GB fetched (consumer + raw loop)", f"{per_gb[1]:.1f}", ""],
                ["peak RSS (VmHWM)", f"{peak_rss / MB:.0f} MB", f"<= 150 MB: {rss_ok}"],
                ["exit code after SIGTERM", str(exit_code), "0"],
            ],
        )
    )


if __name__ == "__main__":
    main()
