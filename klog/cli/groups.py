"""``klog-groups``: list, describe and delete consumer groups; reset or delete offsets.

Everything goes through ``klog.client.Admin`` (ListGroups, DescribeGroups,
OffsetFetch, ListOffsets, OffsetCommit, DeleteGroups, OffsetDelete), so it works
against any Kafka-protocol broker. ``reset-offsets`` shows its plan unless
``--execute`` is given, and then commits the new offsets only if the group has no
active members (the coordinator would reject them otherwise, as in Kafka). Topic
arguments are ``TOPIC`` (every partition) or ``TOPIC:P,P...``. Stateless between
invocations.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

import click

from klog.cli._common import (
    Table,
    ToolError,
    ToolGroup,
    choose_one,
    emit,
    log_bounds,
    open_admin,
    parse_timestamp_ms,
)
from klog.client.admin import Admin
from klog.client.types import TopicPartition

_INACTIVE = ("Empty", "Dead")
_DURATION = re.compile(
    r"P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


@click.group(
    cls=ToolGroup,
    epilog="""\b
Examples:
  klog-groups list
  klog-groups describe billing
  klog-groups reset-offsets billing --topic orders --to-earliest            # show the plan
  klog-groups reset-offsets billing --all-topics --by-duration PT1H --execute
  klog-groups delete billing""",
)
def main() -> None:
    """Inspect and manage consumer groups of a klog (or any Kafka) cluster."""


class TopicSpec(click.ParamType):
    """``TOPIC`` or ``TOPIC:P,P,...`` -> ``(topic, partitions or None)``."""

    name = "TOPIC[:P,...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, tuple):
            return value
        topic, sep, parts = str(value).partition(":")
        if not topic:
            self.fail(f"{value!r}: expected TOPIC or TOPIC:P,P,...", param, ctx)
        if not sep:
            return topic, None
        try:
            partitions = tuple(sorted({int(p) for p in parts.split(",") if p.strip()}))
        except ValueError:
            self.fail(f"{value!r}: partitions must be numbers, e.g. {topic}:0,1", param, ctx)
        if not partitions or min(partitions) < 0:
            self.fail(f"{value!r}: expected partition numbers after ':'", param, ctx)
        return topic, partitions


def _expand(
    admin: Admin, specs: Iterable[tuple[str, tuple[int, ...] | None]]
) -> list[TopicPartition]:
    """Partitions named by ``TopicSpec`` values; a bare topic means all of its partitions."""
    specs = list(specs)
    existing = {
        t.name: {p.partition for p in t.partitions}
        for t in admin.describe_topics(sorted({topic for topic, _ in specs}))
    }
    out: set[TopicPartition] = set()
    for topic, partitions in specs:
        missing = sorted(set(partitions or ()) - existing[topic])
        if missing:
            raise ToolError(
                f"topic {topic!r} has no partition {', '.join(map(str, missing))} "
                f"(it has {len(existing[topic])})"
            )
        out.update(TopicPartition(topic, p) for p in (partitions or existing[topic]))
    return sorted(out)


# -- list / describe ---------------------------------------------------------------------


@main.command(
    name="list",
    epilog="""\b
Examples:
  klog-groups list
  klog-groups list --state Stable --state Empty --output json""",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    help="Only groups in this state (repeatable): Stable, Empty, PreparingRebalance, ...",
)
def list_(states: tuple[str, ...]) -> None:
    """List consumer groups with their state."""
    rows = [
        {"group": g.group_id, "state": g.state, "protocol_type": g.protocol_type or None}
        for g in open_admin().list_groups(states)
    ]
    emit(
        rows,
        Table([("GROUP", "group"), ("STATE", "state"), ("PROTOCOL-TYPE", "protocol_type")], rows),
    )


@main.command(
    epilog="""\b
Examples:
  klog-groups describe billing
  klog-groups describe billing --output json"""
)
@click.argument("group")
def describe(group: str) -> None:
    """Show GROUP's state, members, and per partition its committed offset and lag."""
    admin = open_admin()
    description = admin.describe_group(group)
    committed = {
        TopicPartition(o.topic, o.partition): o for o in admin.describe_group_offsets(group)
    }
    if description.state == "Dead" and not committed:
        raise ToolError(f"consumer group {group!r} does not exist")
    owners = {tp: m for m in description.members for tp in m.assignment}
    ends = log_bounds(admin, [tp for tp in owners if tp not in committed])
    rows = []
    for tp in sorted(set(committed) | set(owners)):
        member = owners.get(tp)
        offset = committed.get(tp)
        rows.append(
            {
                "group": group,
                "topic": tp.topic,
                "partition": tp.partition,
                "current_offset": offset.committed_offset if offset else None,
                "log_end_offset": offset.log_end_offset if offset else ends[tp][1],
                "lag": offset.lag if offset else None,
                "consumer_id": member.member_id if member else None,
                "host": member.client_host if member else None,
                "client_id": member.client_id if member else None,
            }
        )
    members = [
        {
            "consumer_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "host": m.client_host,
            "client_id": m.client_id,
            "partitions": len(m.assignment),
            "assignment": [{"topic": t, "partition": p} for t, p in sorted(m.assignment)],
        }
        for m in description.members
    ]
    doc = {
        "group": group,
        "state": description.state,
        "protocol_type": description.protocol_type or None,
        "protocol": description.protocol or None,
        "coordinator": description.coordinator,
        "members": members,
        "offsets": rows,
    }
    summary = (
        f"Group {group!r}: state {description.state}, {len(members)} member(s), "
        f"coordinator {description.coordinator}"
        + (f", assignor {description.protocol}" if description.protocol else "")
    )
    offsets = Table(
        [
            ("GROUP", "group"),
            ("TOPIC", "topic"),
            ("PARTITION", "partition"),
            ("CURRENT-OFFSET", "current_offset"),
            ("LOG-END-OFFSET", "log_end_offset"),
            ("LAG", "lag"),
            ("CONSUMER-ID", "consumer_id"),
            ("HOST", "host"),
            ("CLIENT-ID", "client_id"),
        ],
        rows,
    )
    member_rows = [
        {
            **m,
            "assignment": _compact(
                TopicPartition(a["topic"], a["partition"]) for a in m["assignment"]
            ),
        }
        for m in members
    ]
    member_table = Table(
        [
            ("CONSUMER-ID", "consumer_id"),
            ("GROUP-INSTANCE-ID", "group_instance_id"),
            ("HOST", "host"),
            ("CLIENT-ID", "client_id"),
            ("#PARTITIONS", "partitions"),
            ("ASSIGNMENT", "assignment"),
        ],
        member_rows,
    )
    parts: list[Table | str] = [summary, "", offsets]
    parts += ["", member_table] if members else ["", f"Group {group!r} has no active members."]
    emit(doc, *parts)


def _compact(partitions: Iterable[TopicPartition]) -> str:
    """``orders:0,1,2 payments:0`` for an assignment."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(partitions):
        by_topic.setdefault(topic, []).append(partition)
    return " ".join(f"{t}:{','.join(map(str, ps))}" for t, ps in by_topic.items()) or "-"


# -- reset-offsets -----------------------------------------------------------------------


def parse_duration_ms(text: str) -> int:
    """ISO 8601 ``PnDTnHnMnS`` (as Java's ``Duration.parse``) -> milliseconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groupdict().values()) or text.upper().endswith("T"):
        raise click.BadParameter(
            f"{text!r}: expected an ISO 8601 duration such as P1D, PT1H30M or P2DT12H",
            param_hint="--by-duration",
        )
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    seconds = (
        parts.get("days", 0) * 86400
        + parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0)
    )
    return int(seconds * 1000)


def _plan(
    admin: Admin,
    partitions: list[TopicPartition],
    committed: dict[TopicPartition, int],
    how: str,
    value: Any,
) -> dict[TopicPartition, int]:
    """The new offset of each partition, kept within its log's start and end."""
    bounds = log_bounds(admin, partitions)
    if how in ("to_datetime", "by_duration"):
        timestamp = (
            parse_timestamp_ms(value)
            if how == "to_datetime"
            else time.time_ns() // 1_000_000 - parse_duration_ms(value)
        )
        found = admin.list_offsets(dict.fromkeys(partitions, timestamp))
        # No record at or after the time: the end, where the next record will be.
        return {
            tp: found[tp].offset if found[tp].offset >= 0 else bounds[tp][1] for tp in partitions
        }
    plan = {}
    for tp in partitions:
        start, end = bounds[tp]
        if how == "to_earliest":
            target = start
        elif how == "to_latest":
            target = end
        elif how == "to_offset":
            target = value
        else:  # shift_by
            if tp not in committed:
                raise ToolError(
                    f"cannot shift {tp.topic}:{tp.partition}: the group has no committed offset "
                    "there (use --to-earliest, --to-latest or --to-offset)"
                )
            target = committed[tp] + value
        plan[tp] = min(max(target, start), end)
    return plan


@main.command(
    name="reset-offsets",
    epilog="""\b
Examples:
  klog-groups reset-offsets billing --topic orders --to-earliest              # dry run
  klog-groups reset-offsets billing --topic orders --to-earliest --execute
  klog-groups reset-offsets billing --topic orders:0,1 --shift-by -100 --execute
  klog-groups reset-offsets billing --all-topics --to-datetime 2024-05-01T00:00:00Z
  klog-groups reset-offsets billing --all-topics --by-duration P1DT12H --execute

The group must have no active members for --execute (stop its consumers first).""",
)
@click.argument("group")
@click.option(
    "--topic",
    "topics",
    type=TopicSpec(),
    multiple=True,
    help="A topic, or TOPIC:P,P,... for some partitions (repeatable).",
)
@click.option("--all-topics", is_flag=True, help="Every partition the group has an offset for.")
@click.option("--to-earliest", is_flag=True, help="To the log start.")
@click.option("--to-latest", is_flag=True, help="To the log end (skip everything).")
@click.option("--to-offset", type=int, metavar="N", help="To offset N (kept within the log).")
@click.option("--shift-by", type=int, metavar="N", help="Move the committed offsets by N (+/-).")
@click.option(
    "--to-datetime",
    metavar="ISO8601",
    help="To the first record at or after this time, e.g. 2024-05-01T12:00:00Z.",
)
@click.option(
    "--by-duration",
    metavar="PnDTnHnM",
    help="To the first record at or after this long ago, e.g. PT30M or P1DT2H.",
)
@click.option(
    "--dry-run/--execute",
    default=True,
    show_default=True,
    help="Only show the new offsets, or commit them.",
)
def reset_offsets(
    group: str,
    topics: tuple[tuple[str, tuple[int, ...] | None], ...],
    all_topics: bool,
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    shift_by: int | None,
    to_datetime: str | None,
    by_duration: str | None,
    dry_run: bool,
) -> None:
    """Move GROUP's committed offsets (shows the plan; --execute commits it)."""
    choose_one(topic=topics, all_topics=all_topics)
    specs = {
        "to_earliest": to_earliest,
        "to_latest": to_latest,
        "to_offset": to_offset,
        "shift_by": shift_by,
        "to_datetime": to_datetime,
        "by_duration": by_duration,
    }
    how = choose_one(**specs)
    assert how is not None
    if how == "to_datetime":
        try:
            parse_timestamp_ms(specs[how])  # type: ignore[arg-type]
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--to-datetime") from None
    elif how == "by_duration":
        parse_duration_ms(specs[how])  # type: ignore[arg-type]
    admin = open_admin()
    if not dry_run:
        state = admin.describe_group(group).state
        if state not in _INACTIVE:
            raise ToolError(
                f"offsets of group {group!r} can only be reset while it has no active members; "
                f"it is {state} (stop its consumers first)"
            )
    committed = {tp: om.offset for tp, om in admin.list_group_offsets(group).items()}
    if all_topics:
        partitions = sorted(committed)
        if not partitions:
            raise ToolError(
                f"group {group!r} has no committed offsets (name the topics with --topic)"
            )
    else:
        partitions = _expand(admin, topics)
    plan = _plan(admin, partitions, committed, how, specs[how])
    if not dry_run:
        admin.alter_group_offsets(group, plan)
    rows = [
        {
            "group": group,
            "topic": tp.topic,
            "partition": tp.partition,
            "current_offset": committed.get(tp),
            "new_offset": offset,
        }
        for tp, offset in sorted(plan.items())
    ]
    table = Table(
        [
            ("GROUP", "group"),
            ("TOPIC", "topic"),
            ("PARTITION", "partition"),
            ("CURRENT-OFFSET", "current_offset"),
            ("NEW-OFFSET", "new_offset"),
        ],
        rows,
    )
    note = (
        "Dry run: nothing was committed; add --execute to apply."
        if dry_run
        else f"Committed the new offsets of group {group!r}."
    )
    emit({"group": group, "executed": not dry_run, "offsets": rows}, table, "", note)


# -- delete ------------------------------------------------------------------------------


@main.command(
    epilog="""\b
Example:
  klog-groups delete billing"""
)
@click.argument("group")
def delete(group: str) -> None:
    """Delete GROUP and its committed offsets (it must have no active members)."""
    open_admin().delete_groups([group])
    emit({"group": group, "deleted": True}, f"Deleted group {group!r}.")


@main.command(
    name="delete-offsets",
    epilog="""\b
Examples:
  klog-groups delete-offsets billing --topic orders
  klog-groups delete-offsets billing --topic orders:0,1 --topic payments""",
)
@click.argument("group")
@click.option(
    "--topic",
    "topics",
    type=TopicSpec(),
    multiple=True,
    required=True,
    help="A topic, or TOPIC:P,P,... for some partitions (repeatable).",
)
def delete_offsets(group: str, topics: tuple[tuple[str, tuple[int, ...] | None], ...]) -> None:
    """Forget GROUP's committed offsets of some topics (not ones it is consuming)."""
    admin = open_admin()
    partitions = _expand(admin, topics)
    admin.delete_group_offsets(group, partitions)
    rows = [{"topic": tp.topic, "partition": tp.partition} for tp in partitions]
    emit(
        {"group": group, "deleted": rows},
        f"Deleted the committed offsets of group {group!r} for:",
        Table([("TOPIC", "topic"), ("PARTITION", "partition")], rows),
    )


if __name__ == "__main__":
    main(prog_name="klog-groups")
