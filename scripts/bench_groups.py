#!/usr/bin/env python3
"""Benchmark klog's group coordinator with real consumer processes and raw commits.

Not a test: it prints the command used and Markdown tables. Each configuration runs its
own ``klog-server`` subprocess on a temp data dir (``--override`` for the group settings);
``__consumer_offsets`` is created and fully loaded before anything is timed.

1. Join: ``--members`` (10) confluent-kafka consumers, each in its own process, subscribe
   to one topic of ``--partitions`` (12) partitions with a fresh group id. The processes
   start first and wait; then all are told to subscribe at once. A member counts as
   assigned when librdkafka calls its ``on_assign``; the group is Stable when every member
   holds a non-empty assignment, the assignments are disjoint and cover the topic, and no
   member's assignment changes for a settle period (then DescribeGroups must say Stable
   with every member). Times: from the last member's ``subscribe`` to the last
   ``on_assign`` of that final generation, and from the first ``subscribe``. Run with the
   broker's ``group.initial.rebalance.delay.ms`` at Kafka's default (3000) and at 0, each
   with librdkafka's default ``heartbeat.interval.ms`` (3000) and with 500: existing
   members learn of a rebalance only from a heartbeat answer.
2. Recovery: in the same Stable group (``session.timeout.ms`` = 6000) one member is
   SIGKILLed. Times: until the first survivor sees the rebalance (``on_revoke``), and
   until the survivors hold assignments that cover the topic again.
3. Commits: raw ``klog.wire`` OffsetCommit v8 requests (``generation -1``, the "simple"
   group path, sync: one request in flight per connection), each for 3 partitions with a
   new offset, over N connections driven by one selector loop, to one group (one
   coordinator shard) and to one group per connection (spread over shards); afterwards
   OffsetFetch must return the last offsets committed. Reports commits/s, per-commit
   latency p50/p99, and the CPU used by the broker (one trio loop: 100 % = one core), by
   the load generator and by every other process on the machine.

All clock readings are ``time.monotonic()`` (system-wide on Linux, so comparable across
the member processes).

    python scripts/bench_groups.py [--trials 3] [--commit-seconds 5] [--skip-groups]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import shlex
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _broker import CLOCK_TICKS, Broker

SESSION_TIMEOUT_MS = 6000
LIBRDKAFKA_HEARTBEAT_MS = 3000
KAFKA_INITIAL_DELAY_MS = 3000
COMMIT_VERSION = 8  # flexible: request header v2, response header v1
FIND_COORDINATOR_VERSION = 3
LIST_GROUPS_VERSION = 4
PARTITIONS_PER_COMMIT = 3
DEADLINE_S = 120.0

JOIN_NOTE = """
With a delay, the first join starts a wait of one delay, extended by one more delay each
time members joined during the last one (Kafka's InitialDelayedJoin): members that join
together are Stable after about 2 x delay. Without it, the first members form a
generation at once; later joiners interrupt it (SyncGroup answers REBALANCE_IN_PROGRESS)
and librdkafka (debug=cgrp) waits about 2 s before rejoining after that error."""

RECOVERY_NOTE = """
The killed member's session expires 6 s after its last heartbeat; survivors learn of the
rebalance from their next heartbeat answer, then rejoin and sync at once.
"""


# -- the member process ------------------------------------------------------------------


def run_member(config: dict[str, Any]) -> None:
    """A consumer in its own process: waits for ``go`` on stdin, subscribes, polls; on
    stdin EOF closes (LeaveGroup). Prints JSON events with ``time.monotonic()`` stamps."""
    import confluent_kafka

    lock = threading.Lock()

    def emit(**event: Any) -> None:
        with lock:
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": config["bootstrap"],
            "group.id": config["group"],
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": config["heartbeat_ms"],
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    go, stop = threading.Event(), threading.Event()

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "go":
                go.set()
        stop.set()
        go.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    emit(e="ready")
    go.wait()
    if stop.is_set():
        return

    def changed(kind: str) -> Callable[[Any, list[Any]], None]:
        return lambda _c, parts: emit(
            e=kind, t=time.monotonic(), parts=sorted(p.partition for p in parts)
        )

    started = time.monotonic()
    consumer.subscribe(
        [config["topic"]],
        on_assign=changed("assign"),
        on_revoke=changed("revoke"),
        on_lost=changed("revoke"),
    )
    emit(e="subscribed", t=started)
    while not stop.is_set():
        consumer.poll(0.1)
    consumer.close()
    emit(e="closed")


class Member:
    """One member process and the events it printed."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--member", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def of(self, kind: str, after: float = float("-inf")) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["e"] == kind and e.get("t", 0.0) > after]

    def last_change(self) -> dict[str, Any] | None:
        with self._lock:
            changes = [e for e in self.events if e["e"] in ("assign", "revoke")]
        return changes[-1] if changes else None

    def assignment(self) -> set[int]:
        change = self.last_change()
        return set(change["parts"]) if change and change["e"] == "assign" else set()

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        """EOF on stdin: the consumer closes and leaves the group."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def wait(self) -> None:
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)
    return value


# -- the broker ---------------------------------------------------------------------------


@contextmanager
def running_broker(work: Path, name: str, overrides: dict[str, str]) -> Iterator[Broker]:
    broker = Broker(work / name, overrides).start()
    try:
        create_topic(broker.bootstrap, "bench-groups", 12)
        wait_for_coordinator(broker.bootstrap)
        yield broker
    finally:
        broker.stop()


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    future = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    future[name].result(timeout=30)


# -- raw wire requests ----------------------------------------------------------------------


class RawConnection:
    """One blocking socket speaking klog.wire requests, one in flight at a time."""

    def __init__(self, bootstrap: str, client_id: str) -> None:
        from klog.wire import ClientConnection

        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = ClientConnection(client_id=client_id)

    def call(self, body: Any, version: int) -> Any:
        from klog.wire import Response

        self.sock.sendall(self.conn.send_request(body, version)[1])
        while True:
            event = self.conn.next_event()
            if isinstance(event, Response):
                return event.body
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("broker closed the connection")
            self.conn.receive_data(data)

    def close(self) -> None:
        self.sock.close()


def wait_for_coordinator(bootstrap: str) -> None:
    """FindCoordinator creates ``__consumer_offsets``; ListGroups answers without an error
    once every one of its partitions is loaded, so no timed phase pays for either."""
    from klog.wire import FindCoordinatorRequest, ListGroupsRequest

    raw = RawConnection(bootstrap, "bench-groups-setup")
    try:
        wait_until(
            lambda: (
                raw.call(
                    FindCoordinatorRequest(key="warm-up", key_type=0), FIND_COORDINATOR_VERSION
                ).error_code
                == 0
            ),
            "FindCoordinator to succeed",
        )
        wait_until(
            lambda: (
                raw.call(ListGroupsRequest(states_filter=[]), LIST_GROUPS_VERSION).error_code == 0
            ),
            "__consumer_offsets to load",
        )
    finally:
        raw.close()


# -- 1 + 2: join and recovery ----------------------------------------------------------------


@dataclass
class GroupTrial:
    first_join_to_stable: float
    last_join_to_stable: float
    join_spread: float
    assignments: int  # the most on_assign calls any member saw
    kill_to_rebalance: float
    kill_to_recovered: float


def covered(members: list[Member], partitions: int, after: float) -> float | None:
    """The time of the last assignment if every member got one after ``after`` and together
    they hold every partition exactly once; otherwise None."""
    stamps, seen = [], []
    for member in members:
        change = member.last_change()
        if change is None or change["e"] != "assign" or change["t"] <= after or not change["parts"]:
            return None
        stamps.append(change["t"])
        seen.extend(change["parts"])
    if sorted(seen) != list(range(partitions)):
        return None
    return max(stamps)


def settled(members: list[Member], partitions: int, after: float, settle_s: float) -> float:
    """Wait until ``covered`` holds and no member's assignment changes for ``settle_s``."""
    while True:
        stamp = wait_until(lambda: covered(members, partitions, after), "assignments")
        changes = [m.last_change() for m in members]
        time.sleep(settle_s)  # a benchmark, not a test: watch for a late rebalance
        if [m.last_change() for m in members] == changes:
            return stamp


def describe(bootstrap: str, group: str) -> tuple[str, int]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    (future,) = admin.describe_consumer_groups([group]).values()
    description = future.result(timeout=30)
    return description.state.name, len(description.members)


def group_trial(bootstrap: str, members_n: int, partitions: int, heartbeat_ms: int) -> GroupTrial:
    group = f"bench-{uuid.uuid4().hex[:12]}"
    config = {
        "bootstrap": bootstrap,
        "group": group,
        "topic": "bench-groups",
        "heartbeat_ms": heartbeat_ms,
    }
    members = [Member(config) for _ in range(members_n)]
    settle_s = 2 * heartbeat_ms / 1000 + 1
    try:
        wait_until(lambda: all(m.of("ready") for m in members), "member processes to start")
        for member in members:
            member.tell("go")
        wait_until(lambda: all(m.of("subscribed") for m in members), "members to subscribe")
        joins = [m.of("subscribed")[0]["t"] for m in members]
        stable = settled(members, partitions, min(joins), settle_s)
        state, count = describe(bootstrap, group)
        if (state, count) != ("STABLE", members_n):
            raise RuntimeError(f"group {group} is {state} with {count} members after the join")
        assignments = max(len(m.of("assign")) for m in members)

        victim, survivors = members[-1], members[:-1]
        killed = time.monotonic()
        victim.proc.kill()
        victim.proc.wait()
        recovered = settled(survivors, partitions, killed, settle_s)
        rebalance_seen = min(e["t"] for m in survivors for e in m.of("revoke", after=killed))
        state, count = describe(bootstrap, group)
        if (state, count) != ("STABLE", members_n - 1):
            raise RuntimeError(f"group {group} is {state} with {count} members after the kill")
        return GroupTrial(
            first_join_to_stable=stable - min(joins),
            last_join_to_stable=stable - max(joins),
            join_spread=max(joins) - min(joins),
            assignments=assignments,
            kill_to_rebalance=rebalance_seen - killed,
            kill_to_recovered=recovered - killed,
        )
    finally:
        for member in members:
            member.close()
        for member in members:
            member.wait()


# -- 3: commits --------------------------------------------------------------------------------


@dataclass
class CommitRun:
    connections: int
    groups: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    broker_cpu: float = 0.0  # cores busy, over the run
    own_cpu: float = 0.0
    other_cpu: float = 0.0  # every other process: a loaded machine skews the numbers


class CommitStream:
    """One connection sending back-to-back sync OffsetCommit requests for one group.

    The request is encoded once with a marker offset; each commit patches the next
    offset in place, so that the load generator (one Python thread for every
    connection) costs far less CPU per commit than the broker it measures."""

    MARKER = 0x0123_4567_89AB_CDEF

    def __init__(self, bootstrap: str, group: str, partitions: list[int]) -> None:
        from klog.wire import ClientConnection, OffsetCommitRequest

        request = OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=-1,
            member_id="",
            group_instance_id=None,
            topics=[
                OffsetCommitRequest.OffsetCommitRequestTopic(
                    name="bench-groups",
                    partitions=[
                        OffsetCommitRequest.OffsetCommitRequestPartition(
                            partition_index=p, committed_offset=self.MARKER, committed_metadata=""
                        )
                        for p in partitions
                    ],
                )
            ],
        )
        connection = ClientConnection("bench-commits")
        self.frame = bytearray(connection.send_request(request, COMMIT_VERSION)[1])
        marker = struct.pack(">q", self.MARKER)
        self.positions = [i for i in range(len(self.frame)) if self.frame.startswith(marker, i)]
        assert len(self.positions) == len(partitions)
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.group, self.partitions = group, partitions
        self.offset = 0
        self.sent_at = 0.0
        self.received = bytearray()

    def send(self) -> None:
        self.offset += 1
        for position in self.positions:
            struct.pack_into(">q", self.frame, position, self.offset)
        self.sent_at = time.perf_counter()
        self.sock.sendall(self.frame)

    def receive(self) -> int | None:
        """Read what arrived; the number of failed partitions once the answer is whole."""
        from klog.wire import OffsetCommitResponse, ResponseHeader

        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("broker closed the connection")
        self.received += data
        if len(self.received) < 4:
            return None
        (size,) = struct.unpack_from(">i", self.received)
        if len(self.received) < 4 + size:
            return None
        frame = memoryview(bytes(self.received[4 : 4 + size]))
        del self.received[: 4 + size]
        _, position = ResponseHeader.decode_from(frame, 0, 1)
        response, _ = OffsetCommitResponse.decode_from(frame, position, COMMIT_VERSION)
        return sum(1 for t in response.topics for p in t.partitions if p.error_code)


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def machine_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def commit_run(broker: Broker, connections: int, groups: int, seconds: float) -> CommitRun:
    """Every connection keeps one commit in flight for ``seconds`` (after a warm-up
    commit each, which also creates the groups)."""
    run = CommitRun(connections, groups)
    prefix = uuid.uuid4().hex[:8]
    streams = [
        CommitStream(
            broker.bootstrap,
            f"commits-{prefix}-{i % groups}",
            [(i * PARTITIONS_PER_COMMIT + k) % 12 for k in range(PARTITIONS_PER_COMMIT)],
        )
        for i in range(connections)
    ]
    with selectors.DefaultSelector() as selector:
        for stream in streams:
            selector.register(stream.sock, selectors.EVENT_READ, stream)

        def pump(until: float, record: bool) -> None:
            for stream in streams:
                stream.send()
            busy = len(streams)
            while busy:
                for key, _ in selector.select():
                    stream = key.data
                    errors = stream.receive()
                    if errors is None:
                        continue
                    if record:
                        run.latencies.append(time.perf_counter() - stream.sent_at)
                        run.errors += errors
                    if time.monotonic() < until:
                        stream.send()
                    else:
                        busy -= 1

        pump(0.0, record=False)
        cpu0, own0, machine0 = broker.cpu_seconds(), own_cpu_seconds(), machine_cpu_seconds()
        began = time.monotonic()
        pump(began + seconds, record=True)
        run.seconds = time.monotonic() - began
        run.broker_cpu = (broker.cpu_seconds() - cpu0) / run.seconds
        run.own_cpu = (own_cpu_seconds() - own0) / run.seconds
        others = (machine_cpu_seconds() - machine0) / run.seconds - run.broker_cpu - run.own_cpu
        run.other_cpu = max(others, 0.0)  # clock-tick rounding can make an idle machine < 0
    for stream in streams:
        stream.sock.close()
    check_committed(broker.bootstrap, streams)
    return run


def check_committed(bootstrap: str, streams: list[CommitStream]) -> None:
    """Every partition's committed offset is the last one some stream committed to it
    (OffsetFetch v8, all groups in one request)."""
    from klog.wire import OffsetFetchRequest

    last: dict[tuple[str, int], set[int]] = {}
    for stream in streams:
        for partition in stream.partitions:
            last.setdefault((stream.group, partition), set()).add(stream.offset)
    request = OffsetFetchRequest(
        groups=[
            OffsetFetchRequest.OffsetFetchRequestGroup(group_id=group, topics=None)
            for group in sorted({group for group, _ in last})
        ]
    )
    raw = RawConnection(bootstrap, "bench-commits-check")
    try:
        response = raw.call(request, 8)
    finally:
        raw.close()
    fetched = {
        (group.group_id, p.partition_index): p.committed_offset
        for group in response.groups
        for topic in group.topics
        for p in topic.partitions
    }
    wrong = {
        key: fetched.get(key) for key, offsets in last.items() if fetched.get(key) not in offsets
    }
    if wrong:
        raise RuntimeError(f"OffsetFetch disagrees with the last commits: {wrong}")


# -- report ------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    return "\n".join([line, rule, *body])


def spread(values: list[float]) -> str:
    """Median and range, in seconds."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--member", help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, default=3, help="groups per configuration")
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--commit-seconds", type=float, default=5.0)
    parser.add_argument("--skip-groups", action="store_true", help="commits only")
    parser.add_argument("--skip-commits", action="store_true", help="join and recovery only")
    args = parser.parse_args(argv)
    if args.member:
        run_member(json.loads(args.member))
        return
    if args.partitions < args.members:
        parser.error("--partitions must be >= --members so every member gets a partition")

    import confluent_kafka

    from klog import native

    print(f"$ python {shlex.join(sys.argv)}")
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"klog native={native.IMPLEMENTATION}, librdkafka {confluent_kafka.libversion()[0]}; "
        f"{args.members} members, {args.partitions} partitions, {args.trials} trials; "
        "times in s: median (min-max)\n"
    )
    with tempfile.TemporaryDirectory(prefix="bench-groups-") as tmp:
        work = Path(tmp)
        if not args.skip_groups:
            groups_section(work, args)
        if not args.skip_commits:
            commits_section(work, args)


def groups_section(work: Path, args: argparse.Namespace) -> None:
    join_rows, recovery_rows = [], []
    for delay in (KAFKA_INITIAL_DELAY_MS, 0):
        overrides = {
            "group.initial.rebalance.delay.ms": str(delay),
            "num.partitions": str(args.partitions),
        }
        with running_broker(work, f"delay-{delay}", overrides) as broker:
            for heartbeat in (LIBRDKAFKA_HEARTBEAT_MS, 500):
                trials = [
                    group_trial(broker.bootstrap, args.members, args.partitions, heartbeat)
                    for _ in range(args.trials)
                ]
                join_rows.append(
                    [
                        str(delay),
                        str(heartbeat),
                        spread([t.last_join_to_stable for t in trials]),
                        spread([t.first_join_to_stable for t in trials]),
                        f"{max(t.join_spread for t in trials) * 1000:.0f}",
                        "/".join(str(t.assignments) for t in trials),
                    ]
                )
                recovery_rows.append(
                    [
                        str(delay),
                        str(heartbeat),
                        spread([t.kill_to_rebalance for t in trials]),
                        spread([t.kill_to_recovered for t in trials]),
                    ]
                )
                print(f"  done: delay {delay} ms, heartbeat {heartbeat} ms", file=sys.stderr)
    print(f"### {args.members}-member group: all subscribe at once -> Stable\n")
    print(
        table(
            [
                "initial.rebalance.delay.ms",
                "heartbeat.interval.ms",
                "last join -> Stable",
                "first join -> Stable",
                "join spread ms (max)",
                "on_assign calls (max per trial)",
            ],
            join_rows,
        )
    )
    print(JOIN_NOTE)
    print(
        f"\n### one of {args.members} members SIGKILLed, session.timeout.ms={SESSION_TIMEOUT_MS}\n"
    )
    print(
        table(
            [
                "initial.rebalance.delay.ms",
                "heartbeat.interval.ms",
                "kill -> survivors see rebalance",
                "kill -> partitions reassigned",
            ],
            recovery_rows,
        )
    )
    print(RECOVERY_NOTE)


def commits_section(work: Path, args: argparse.Namespace) -> None:
    rows = []
    overrides = {"num.partitions": "12"}
    with running_broker(work, "commits", overrides) as broker:
        for connections, groups in ((1, 1), (4, 1), (16, 1), (16, 16)):
            run = commit_run(broker, connections, groups, args.commit_seconds)
            count = len(run.latencies)
            rows.append(
                [
                    str(connections),
                    str(groups),
                    f"{count / run.seconds:,.0f}",
                    f"{count * PARTITIONS_PER_COMMIT / run.seconds:,.0f}",
                    f"{percentile(run.latencies, 0.5) * 1000:.2f}",
                    f"{percentile(run.latencies, 0.99) * 1000:.2f}",
                    f"{run.broker_cpu * 100:.0f} %",
                    f"{run.own_cpu * 100:.0f} %",
                    f"{run.other_cpu * 100:.0f} %",
                    str(run.errors),
                ]
            )
            print(f"  done: {connections} connections, {groups} groups", file=sys.stderr)
    print(
        f"### sync OffsetCommit v{COMMIT_VERSION}, {PARTITIONS_PER_COMMIT} partitions each, "
        f"{args.commit_seconds:g} s per row\n"
    )
    print(
        table(
            [
                "connections",
                "groups",
                "commits/s",
                "offsets/s",
                "p50 ms",
                "p99 ms",
                "broker CPU",
                "load generator CPU",
                "other processes CPU",
                "errors",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
