"""``klog-topics``: create, list, describe, delete and grow topics; produce and consume.

Talks to any Kafka-protocol broker through the bundled client (``klog.client``):
``Admin`` for topic management and offsets, ``Producer`` for ``produce`` (one record
per input line), ``Consumer`` for ``consume`` (one output line, or one JSON object per
line with ``--output json``, per record). Common options, output and error handling
are ``klog.cli._common``'s. Stateless between invocations.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from klog.cli._common import (
    KeyValue,
    Table,
    ToolError,
    ToolGroup,
    emit,
    json_mode,
    log_bounds,
    open_admin,
    parse_timestamp_ms,
    settings,
)
from klog.client.consumer import Consumer
from klog.client.errors import (
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from klog.client.producer import Producer
from klog.client.types import ConsumerRecord, RecordMetadata, TopicPartition


@click.group(
    cls=ToolGroup,
    epilog="""\b
Examples:
  klog-topics create orders --partitions 3 --config retention.ms=86400000
  klog-topics list
  klog-topics describe orders
  seq 10 | klog-topics produce orders
  klog-topics consume orders --from-beginning --max-messages 10
  klog-topics --bootstrap-server broker1:9092 --output json describe""",
)
def main() -> None:
    """Manage topics of a klog (or any Kafka) cluster, and produce or consume records."""


# -- create / delete / alter -------------------------------------------------------------


@main.command(
    epilog="""\b
Examples:
  klog-topics create orders
  klog-topics create orders --partitions 6 --replication-factor 3
  klog-topics create logs --config cleanup.policy=compact --config retention.ms=-1
  klog-topics create orders --if-not-exists"""
)
@click.argument("topic")
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    help="Number of partitions [default: the broker's num.partitions].",
)
@click.option(
    "--replication-factor",
    type=click.IntRange(min=1),
    help="Replicas per partition [default: the broker's default.replication.factor].",
)
@click.option(
    "--config",
    "configs",
    type=KeyValue(),
    multiple=True,
    help="A topic config, e.g. retention.ms=3600000 (repeatable).",
)
@click.option("--if-not-exists", is_flag=True, help="Succeed if the topic already exists.")
def create(
    topic: str,
    partitions: int | None,
    replication_factor: int | None,
    configs: tuple[tuple[str, str], ...],
    if_not_exists: bool,
) -> None:
    """Create TOPIC."""
    admin = open_admin()
    try:
        admin.create_topic(topic, partitions or -1, replication_factor or -1, dict(configs))
    except TopicAlreadyExistsError:
        if not if_not_exists:
            raise
        emit({"topic": topic, "created": False}, f"Topic {topic!r} already exists.")
        return
    emit({"topic": topic, "created": True}, f"Created topic {topic!r}.")


@main.command(
    epilog="""\b
Examples:
  klog-topics delete orders
  klog-topics delete orders --if-exists"""
)
@click.argument("topic")
@click.option("--if-exists", is_flag=True, help="Succeed if the topic does not exist.")
def delete(topic: str, if_exists: bool) -> None:
    """Delete TOPIC and all its records."""
    admin = open_admin()
    try:
        admin.delete_topic(topic)
    except UnknownTopicOrPartitionError:
        if not if_exists:
            raise
        emit({"topic": topic, "deleted": False}, f"Topic {topic!r} does not exist.")
        return
    emit({"topic": topic, "deleted": True}, f"Deleted topic {topic!r}.")


@main.command(
    epilog="""\b
Example:
  klog-topics alter orders --partitions 12"""
)
@click.argument("topic")
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    required=True,
    help="The new total number of partitions (only growing is possible).",
)
def alter(topic: str, partitions: int) -> None:
    """Add partitions to TOPIC (keyed records may then map to other partitions)."""
    open_admin().create_partitions(topic, partitions)
    emit(
        {"topic": topic, "partitions": partitions},
        f"Topic {topic!r} now has {partitions} partitions.",
    )


# -- list / describe ---------------------------------------------------------------------


@main.command(
    name="list",
    epilog="""\b
Examples:
  klog-topics list
  klog-topics list --exclude-internal --output json""",
)
@click.option("--exclude-internal", is_flag=True, help="Hide internal topics (__*).")
def list_(exclude_internal: bool) -> None:
    """List topics with their partition count and replication factor."""
    rows = [
        {
            "topic": t.name,
            "partitions": len(t.partitions),
            "replication_factor": max((len(p.replicas) for p in t.partitions), default=0),
            "internal": t.is_internal,
        }
        for t in open_admin().describe_topics()
        if not (exclude_internal and t.is_internal)
    ]
    emit(
        rows,
        Table(
            [("TOPIC", "topic"), ("PARTITIONS", "partitions"), ("REPLICAS", "replication_factor")],
            rows,
        ),
    )


@main.command(
    epilog="""\b
Examples:
  klog-topics describe orders
  klog-topics describe                      # every topic
  klog-topics describe --under-replicated   # partitions whose ISR lacks a replica"""
)
@click.argument("topics", nargs=-1, metavar="[TOPIC]...")
@click.option(
    "--under-replicated",
    is_flag=True,
    help="Only partitions with fewer in-sync replicas than replicas.",
)
@click.option("--exclude-internal", is_flag=True, help="Hide internal topics (__*).")
def describe(topics: tuple[str, ...], under_replicated: bool, exclude_internal: bool) -> None:
    """Show partitions: leader, replicas, in-sync replicas, log start and end offsets."""
    admin = open_admin()
    descriptions = [
        t
        for t in admin.describe_topics(list(topics) or None)
        if not (exclude_internal and t.is_internal and not topics)
    ]
    wanted = {
        t.name: [p for p in t.partitions if not under_replicated or len(p.isr) < len(p.replicas)]
        for t in descriptions
    }
    # A partition without a leader has no offsets to ask for.
    bounds = log_bounds(
        admin,
        (
            TopicPartition(name, p.partition)
            for name, ps in wanted.items()
            for p in ps
            if p.leader >= 0
        ),
    )
    doc = []
    rows = []
    for t in descriptions:
        partitions = []
        for p in wanted[t.name]:
            start, end = bounds.get(TopicPartition(t.name, p.partition), (None, None))
            partitions.append(
                {
                    "partition": p.partition,
                    "leader": p.leader if p.leader >= 0 else None,
                    "replicas": p.replicas,
                    "isr": p.isr,
                    "offline_replicas": p.offline_replicas,
                    "log_start_offset": start,
                    "log_end_offset": end,
                }
            )
            rows.append({"topic": t.name, **partitions[-1]})
        if partitions or not under_replicated:
            doc.append(
                {
                    "topic": t.name,
                    "topic_id": t.topic_id,
                    "internal": t.is_internal,
                    "partitions": partitions,
                }
            )
    columns = [
        ("TOPIC", "topic"),
        ("PARTITION", "partition"),
        ("LEADER", "leader"),
        ("REPLICAS", "replicas"),
        ("ISR", "isr"),
        ("LOG-START-OFFSET", "log_start_offset"),
        ("LOG-END-OFFSET", "log_end_offset"),
    ]
    emit(doc, Table(columns, rows))


# -- produce -----------------------------------------------------------------------------


# How long produce waits for a topic's metadata or for room in the producer's buffer:
# shorter than the client's 60 s default, as a person is waiting.
PRODUCE_BLOCK_MS = 10_000


class _Deliveries:
    """Delivery callback: counts and offset ranges per partition, the first failure.

    Called on the producer's I/O thread; the command reads it after ``flush()``."""

    def __init__(self) -> None:
        self.partitions: dict[int, dict[str, int]] = {}
        self.failed = 0
        self.error: KafkaError | None = None
        self._lock = threading.Lock()

    def __call__(self, metadata: RecordMetadata, error: KafkaError | None) -> None:
        with self._lock:
            if error is not None:
                self.failed += 1
                self.error = self.error or error
                return
            seen = self.partitions.setdefault(
                metadata.partition,
                {"records": 0, "first_offset": metadata.offset, "last_offset": metadata.offset},
            )
            seen["records"] += 1
            if metadata.offset >= 0:
                seen["first_offset"] = min(seen["first_offset"], metadata.offset)
                seen["last_offset"] = max(seen["last_offset"], metadata.offset)


def _lines(stream: IO[bytes], progress: Any = None) -> Iterator[bytes]:
    """Lines of ``stream`` without their line ending (``\\n`` or ``\\r\\n``)."""
    for raw in stream:
        if progress is not None:
            progress.update(len(raw))
        line = raw[:-1] if raw.endswith(b"\n") else raw
        yield line[:-1] if line.endswith(b"\r") else line


@contextlib.contextmanager
def _open_input(path: Path | None) -> Iterator[Iterator[bytes]]:
    if path is None:
        yield _lines(sys.stdin.buffer)
        return
    size = path.stat().st_size
    with (
        path.open("rb") as stream,
        click.progressbar(length=size, label=f"Producing {path.name}", file=sys.stderr) as bar,
    ):
        yield _lines(stream, bar)


@main.command(
    epilog="""\b
Examples:
  echo hello | klog-topics produce orders
  printf 'user1:clicked\\nuser2:bought\\n' | klog-topics produce orders --key-separator :
  klog-topics produce orders --file events.txt --compression zstd --acks 1
  klog-topics produce orders --header source=cli --header version=2 < lines.txt""",
)
@click.argument("topic")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read lines from this file (showing a progress bar) instead of stdin.",
)
@click.option(
    "--key-separator", metavar="SEP", help="Split each line at the first SEP into key and value."
)
@click.option(
    "--header",
    "headers",
    type=KeyValue(),
    multiple=True,
    help="A header on every record (repeatable).",
)
@click.option(
    "--partition",
    type=click.IntRange(min=0),
    help="Send every record to this partition [default: by key hash, else sticky].",
)
@click.option(
    "--compression",
    type=click.Choice(["none", "gzip", "snappy", "lz4", "zstd"]),
    default="none",
    show_default=True,
)
@click.option(
    "--acks",
    type=click.Choice(["all", "-1", "0", "1"]),
    default="all",
    show_default=True,
    help="Replicas that must have a record before it counts as delivered (0: don't wait).",
)
def produce(
    topic: str,
    path: Path | None,
    key_separator: str | None,
    headers: tuple[tuple[str, str], ...],
    partition: int | None,
    compression: str,
    acks: str,
) -> None:
    """Send each line of stdin (or --file) to TOPIC as one record."""
    ctx = click.get_current_context()
    record_headers = [(name, value.encode()) for name, value in headers] or None
    separator = key_separator.encode() if key_separator else None
    deliveries = _Deliveries()
    producer = ctx.with_resource(
        Producer(
            settings().bootstrap_servers,
            acks=acks,
            compression_type=compression,
            client_id="klog-topics",
            max_block_ms=PRODUCE_BLOCK_MS,
        )
    )
    try:
        # Before reading any input: the topic exists or the broker creates it.
        producer.partitions_for(topic)
    except KafkaTimeoutError:
        raise ToolError(
            f"topic {topic!r} does not exist and the broker did not create it within "
            f"{PRODUCE_BLOCK_MS // 1000} s (create it with: klog-topics create {topic})"
        ) from None
    sent = 0
    with _open_input(path) as lines:
        for number, line in enumerate(lines, 1):
            if deliveries.error is not None:
                break
            key, value = None, line
            if separator is not None:
                key, found, value = line.partition(separator)
                if not found:
                    producer.flush()
                    raise ToolError(
                        f"line {number} has no key separator {key_separator!r} "
                        f"(the {sent} records before it were sent)"
                    )
            producer.send(
                topic,
                value,
                key=key,
                partition=partition,
                headers=record_headers,
                on_delivery=deliveries,
            )
            sent += 1
    producer.flush()
    if deliveries.error is not None:
        raise ToolError(
            f"{deliveries.failed} of {sent} records were not delivered: {deliveries.error}"
        )
    rows = [{"partition": p, **seen} for p, seen in sorted(deliveries.partitions.items())]
    for row in rows:
        if row["first_offset"] < 0:  # acks=0: the broker does not say where records went
            row["first_offset"] = row["last_offset"] = None
    emit(
        {"topic": topic, "records": sent, "partitions": rows},
        f"Produced {sent} records to {topic!r}.",
        *(
            [
                Table(
                    [
                        ("PARTITION", "partition"),
                        ("RECORDS", "records"),
                        ("FIRST-OFFSET", "first_offset"),
                        ("LAST-OFFSET", "last_offset"),
                    ],
                    rows,
                )
            ]
            if rows
            else []
        ),
    )


# -- consume -----------------------------------------------------------------------------

PLACEHOLDERS = ("topic", "partition", "offset", "timestamp", "key", "value", "headers")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}


class StartOffset(click.ParamType):
    """``earliest`` | ``latest`` | ``N`` | ``-N`` | ``@TIMESTAMP`` -> (kind, number)."""

    name = "earliest|latest|N|-N|@TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        if text in ("earliest", "latest"):
            return text, 0
        if text.startswith("@"):
            try:
                return "timestamp", parse_timestamp_ms(text[1:])
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        if re.fullmatch(r"-?\d+", text):
            number = int(text)
            return ("from_end", -number) if text.startswith("-") else ("offset", number)
        self.fail(
            f"{text!r}: expected earliest, latest, an offset N, -N (N records before the "
            "end) or @TIMESTAMP (ms since the epoch or ISO 8601)",
            param,
            ctx,
        )


def _text(data: bytes | None) -> str:
    return "null" if data is None else data.decode("utf-8", "backslashreplace")


def _fields(record: ConsumerRecord) -> dict[str, Any]:
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": _text(record.key),
        "value": _text(record.value),
        "headers": ",".join(f"{k}:{_text(v)}" for k, v in record.headers),
    }


def _json_line(record: ConsumerRecord) -> str:
    fields = _fields(record)
    fields["key"] = None if record.key is None else fields["key"]
    fields["value"] = None if record.value is None else fields["value"]
    fields["headers"] = [[k, None if v is None else _text(v)] for k, v in record.headers]
    return json.dumps(fields, ensure_ascii=False)


def _template(fmt: str) -> str:
    """``--format`` with backslash escapes (``\\t``, ``\\n``) applied, checked against
    the known placeholders."""
    template = re.sub(r"\\([tnr\\])", lambda m: _ESCAPES[m.group(1)], fmt)
    sample = ConsumerRecord("t", 0, 0, 0, b"k", b"v", [], 0)  # type: ignore[arg-type]
    try:
        template.format_map(_fields(sample))
    except KeyError as exc:
        raise click.BadParameter(
            f"unknown placeholder {{{exc.args[0]}}}; use "
            + " ".join(f"{{{p}}}" for p in PLACEHOLDERS),
            param_hint="--format",
        ) from None
    except (IndexError, ValueError) as exc:
        raise click.BadParameter(f"{fmt!r}: {exc}", param_hint="--format") from None
    return template


def _start_offsets(
    admin: Any, partitions: list[TopicPartition], start: tuple[str, int]
) -> dict[TopicPartition, int]:
    kind, number = start
    bounds = log_bounds(admin, partitions)
    if kind == "timestamp":
        found = admin.list_offsets(dict.fromkeys(partitions, number))
        # No record at or after the time: wait at the end for new ones.
        return {
            tp: found[tp].offset if found[tp].offset >= 0 else bounds[tp][1] for tp in partitions
        }
    offsets = {}
    for tp, (first, end) in bounds.items():
        if kind == "earliest":
            offsets[tp] = first
        elif kind == "latest":
            offsets[tp] = end
        elif kind == "from_end":
            offsets[tp] = max(first, end - number)
        else:
            offsets[tp] = min(max(first, number), end)
    return offsets


@main.command(
    epilog="""\b
Examples:
  klog-topics consume orders                                  # new records, until Ctrl-C
  klog-topics consume orders --from-beginning --max-messages 10
  klog-topics consume orders --partition 0 --offset -5        # the last 5 of partition 0
  klog-topics consume orders --offset @2024-05-01T12:00:00Z --timeout 5
  klog-topics consume orders --group billing --from-beginning
  klog-topics consume orders --format '{partition}\\t{offset}\\t{key}={value}'
  klog-topics consume orders --output json --max-messages 1   # one JSON object per line""",
)
@click.argument("topic")
@click.option(
    "--from-beginning",
    is_flag=True,
    help="Start at the earliest offset (with --group: where the group has no committed offset).",
)
@click.option(
    "--offset",
    "start",
    type=StartOffset(),
    metavar="earliest|latest|N|-N|@TIME",
    help="Where to start without --group: earliest, latest, an offset N, -N (N records "
    "before the end) or @TIMESTAMP (ms since the epoch, or ISO 8601).  [default: latest]",
)
@click.option(
    "--partition",
    "partitions",
    type=click.IntRange(min=0),
    multiple=True,
    help="Only this partition (repeatable)  [default: all]",
)
@click.option(
    "--group",
    help="Consume as a member of this consumer group: start from its committed offsets "
    "and commit what was printed.",
)
@click.option("--max-messages", type=click.IntRange(min=1), help="Exit after this many records.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Exit when no record arrives for this long  [default: wait forever]",
)
@click.option(
    "--format",
    "fmt",
    default="{value}",
    show_default=True,
    help="Output line per record; placeholders "
    + " ".join(f"{{{p}}}" for p in PLACEHOLDERS)
    + "; \\t and \\n are tab and newline. Ignored with --output json.",
)
def consume(
    topic: str,
    from_beginning: bool,
    start: tuple[str, int] | None,
    partitions: tuple[int, ...],
    group: str | None,
    max_messages: int | None,
    timeout: float | None,
    fmt: str,
) -> None:
    """Print records of TOPIC, one line each."""
    ctx = click.get_current_context()
    template = _template(fmt)
    if from_beginning and start is not None:
        raise click.UsageError("--from-beginning and --offset cannot be used together")
    if group is not None and (start is not None or partitions):
        raise click.UsageError(
            "--offset and --partition cannot be used with --group: a group starts from its "
            "committed offsets (add --from-beginning to start at the earliest where it has none)"
        )
    admin = open_admin()
    [description] = admin.describe_topics([topic])
    existing = [p.partition for p in description.partitions]
    missing = sorted(set(partitions) - set(existing))
    if missing:
        raise ToolError(
            f"topic {topic!r} has no partition {', '.join(map(str, missing))} "
            f"(it has {len(existing)})"
        )
    consumer = ctx.with_resource(
        Consumer(
            settings().bootstrap_servers,
            client_id="klog-topics",
            group_id=group,
            auto_offset_reset="earliest" if from_beginning else "latest",
            enable_auto_commit=group is not None,
            allow_auto_create_topics=False,
        )
    )
    if group is not None:
        consumer.subscribe([topic])
    else:
        tps = [TopicPartition(topic, p) for p in (partitions or existing)]
        consumer.assign(tps)
        offsets = _start_offsets(
            admin, tps, start or ("earliest" if from_beginning else "latest", 0)
        )
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
    count = _print_records(consumer, template, max_messages, timeout)
    click.echo(f"Processed a total of {count} messages", err=True)


def _print_records(
    consumer: Consumer, template: str, max_messages: int | None, timeout: float | None
) -> int:
    as_json = json_mode()
    out = sys.stdout
    count = 0
    idle_since = time.monotonic()
    try:
        while max_messages is None or count < max_messages:
            wait = 1.0 if timeout is None else max(0.0, idle_since + timeout - time.monotonic())
            # Ask for no more than will be printed: a group commits what poll() returned.
            limit = None if max_messages is None else max_messages - count
            records = consumer.poll(timeout=min(wait, 1.0), max_records=limit)
            if records:
                idle_since = time.monotonic()
                for record in records:
                    line = _json_line(record) if as_json else template.format_map(_fields(record))
                    out.write(line + "\n")
                count += len(records)
                out.flush()
            elif timeout is not None and time.monotonic() >= idle_since + timeout:
                break
    except KeyboardInterrupt:
        pass
    return count


if __name__ == "__main__":
    main(prog_name="klog-topics")
