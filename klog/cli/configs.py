"""``klog-configs``: describe and change topic and broker configs.

Reads configs with DescribeConfigs and changes them with IncrementalAlterConfigs
(``klog.client.Admin``), so a change touches only the keys named and the broker
validates every key and value (an unknown key comes back as INVALID_CONFIG, shown as
one line). ``--add-config`` takes Kafka's syntax: ``k=v,k2=v2``, with a value holding
commas in brackets (``cleanup.policy=[compact,delete]``). Stateless between invocations.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from klog.cli._common import Table, ToolGroup, choose_one, emit, open_admin
from klog.client.types import AlterConfigOp, AlterConfigOpType, ConfigResource, ConfigResourceType
from klog.client.types import ConfigSource as Source

# What ``describe`` shows without --all: the values set on the entity itself.
_OVERRIDES = {
    ConfigResourceType.TOPIC: {Source.DYNAMIC_TOPIC_CONFIG},
    ConfigResourceType.BROKER: {Source.DYNAMIC_BROKER_CONFIG, Source.DYNAMIC_DEFAULT_BROKER_CONFIG},
}


@click.group(
    cls=ToolGroup,
    epilog="""\b
Examples:
  klog-configs describe --topic orders
  klog-configs describe --broker 1 --all
  klog-configs alter --topic orders --add-config retention.ms=3600000,segment.bytes=1048576
  klog-configs alter --topic orders --delete-config retention.ms""",
)
def main() -> None:
    """Show and change topic and broker configs of a klog (or any Kafka) cluster."""


def _resource(topic: str | None, broker: int | None) -> ConfigResource:
    if choose_one(topic=topic, broker=broker) == "topic":
        assert topic is not None
        return ConfigResource(ConfigResourceType.TOPIC, topic)
    return ConfigResource(ConfigResourceType.BROKER, str(broker))


def _describe_name(resource: ConfigResource) -> str:
    if resource.type is ConfigResourceType.TOPIC:
        return f"topic {resource.name!r}"
    return f"broker {resource.name}"


def _entity(command: Callable[..., None]) -> Callable[..., None]:
    """``--topic T | --broker ID``, checked by ``_resource``."""
    command = click.option(
        "--broker", type=int, metavar="ID", help="The broker (node id) whose configs to use."
    )(command)
    return click.option("--topic", help="The topic whose configs to use.")(command)


@main.command(
    epilog="""\b
Examples:
  klog-configs describe --topic orders          # the topic's own overrides
  klog-configs describe --topic orders --all    # every config with its source
  klog-configs describe --broker 1 --all --output json"""
)
@_entity
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Every config with its effective value, not only the entity's own overrides.",
)
def describe(topic: str | None, broker: int | None, show_all: bool) -> None:
    """Show the configs of a topic or a broker."""
    resource = _resource(topic, broker)
    entries = open_admin().describe_configs([resource])[resource]
    shown = _OVERRIDES[resource.type]
    rows = [
        {
            "name": e.name,
            "value": "(sensitive)" if e.is_sensitive and e.value is None else e.value,
            "source": e.source.name,
            "read_only": e.read_only,
            "sensitive": e.is_sensitive,
        }
        for e in sorted(entries.values(), key=lambda e: e.name)
        if show_all or e.source in shown
    ]
    if not rows and not show_all:
        emit(rows, f"No overrides for {_describe_name(resource)}; --all shows every config.")
        return
    columns = [("NAME", "name"), ("VALUE", "value"), ("SOURCE", "source")]
    if show_all:
        columns.append(("READ-ONLY", "read_only"))
    emit(rows, Table(columns, rows))


def split_config_list(text: str) -> list[str]:
    """``a=1,b=[x,y]`` -> ``["a=1", "b=x,y"]``: commas inside brackets belong to a value."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        if char == "[":
            depth += 1
            if depth == 1:
                continue
        elif char == "]" and depth > 0:
            depth -= 1
            if depth == 0:
                continue
        current.append(char)
    if depth:
        raise click.BadParameter(f"unbalanced '[' in {text!r}", param_hint="--add-config")
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _parse_additions(values: tuple[str, ...]) -> dict[str, str]:
    additions: dict[str, str] = {}
    for text in values:
        for item in split_config_list(text):
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise click.BadParameter(
                    f"expected KEY=VALUE, got {item!r}", param_hint="--add-config"
                )
            additions[name.strip()] = value
    return additions


@main.command(
    epilog="""\b
Examples:
  klog-configs alter --topic orders --add-config retention.ms=3600000
  klog-configs alter --topic logs --add-config cleanup.policy=[compact,delete],min.insync.replicas=2
  klog-configs alter --topic orders --delete-config retention.ms --delete-config segment.ms
  klog-configs alter --broker 1 --add-config log.retention.ms=86400000"""
)
@_entity
@click.option(
    "--add-config",
    "additions",
    multiple=True,
    metavar="K=V[,K=V...]",
    help="Set configs (repeatable); bracket a value that holds commas: k=[a,b].",
)
@click.option(
    "--delete-config",
    "deletions",
    multiple=True,
    metavar="K[,K...]",
    help="Remove overrides, going back to the default (repeatable).",
)
def alter(
    topic: str | None, broker: int | None, additions: tuple[str, ...], deletions: tuple[str, ...]
) -> None:
    """Set or remove configs of a topic or a broker (only the keys named change)."""
    resource = _resource(topic, broker)
    to_set = _parse_additions(additions)
    to_delete = sorted(
        {name.strip() for text in deletions for name in text.split(",") if name.strip()}
    )
    if not to_set and not to_delete:
        raise click.UsageError("give --add-config and/or --delete-config")
    both = sorted(set(to_set) & set(to_delete))
    if both:
        raise click.UsageError(f"{', '.join(both)}: both added and deleted")
    ops = [AlterConfigOp(name, value) for name, value in to_set.items()]
    ops += [AlterConfigOp(name, None, AlterConfigOpType.DELETE) for name in to_delete]
    open_admin().alter_configs(resource, ops)
    changes = [f"set {k}={v}" for k, v in to_set.items()] + [f"deleted {k}" for k in to_delete]
    emit(
        {
            "resource_type": resource.type.name.lower(),
            "name": resource.name,
            "set": to_set,
            "deleted": to_delete,
        },
        f"Updated {_describe_name(resource)}: {', '.join(changes)}.",
    )


if __name__ == "__main__":
    main(prog_name="klog-configs")
