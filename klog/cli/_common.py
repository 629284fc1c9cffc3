"""Shared plumbing of ``klog-topics``, ``klog-groups`` and ``klog-configs``.

One place for what every operator tool does the same way:

- ``ToolGroup``: the click group class of each tool. It gives the group and every
  subcommand the common options, so both ``klog-topics --output json list`` and
  ``klog-topics list --output json`` work (a subcommand's explicit value wins):
  ``--bootstrap-server`` (default ``localhost:9092``, or ``KLOG_BOOTSTRAP_SERVERS``) and
  ``--output table|json``. It turns every ``KafkaError`` the client raises (an
  unreachable broker, an unknown topic, the broker's INVALID_CONFIG...) into one
  ``Error: ...`` line on stderr and exit status 1; click's own usage errors keep exit
  status 2 and their "did you mean" hints.
- ``emit``: human output (aligned tables and sentences) by default, one JSON document
  with ``--output json``.
- ``open_admin``: an ``Admin`` client bound to the command's context (closed when the
  command ends).

Output format: a table is a header line of upper-case column names and one line per
row, columns separated by at least two spaces, ``-`` for a missing value and
comma-joined lists; JSON is indented, keys in snake_case. Nothing here holds state
across invocations; safe to share between the tools (not with the server).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click

from klog.client.admin import Admin
from klog.client.config import parse_bootstrap
from klog.client.errors import KafkaConnectionError, KafkaError, NoBrokersAvailableError
from klog.client.types import OffsetSpec, TopicPartition

BOOTSTRAP_ENV = "KLOG_BOOTSTRAP_SERVERS"
DEFAULT_BOOTSTRAP = "localhost:9092"
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclass
class Settings:
    """The common options, kept on the root context."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    output: str = "table"


class ToolError(click.ClickException):
    """A failed operation: printed as one ``Error: ...`` line, exit status 1."""

    exit_code = 1


def settings() -> Settings:
    return click.get_current_context().find_root().ensure_object(Settings)


def _store_setting(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    assert param.name is not None
    if value is None:  # a subcommand's option that was not given
        return value
    if param.name == "bootstrap_servers":
        try:
            parse_bootstrap(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    setattr(ctx.find_root().ensure_object(Settings), param.name, value)
    return value


def _common_params(on_group: bool) -> list[click.Parameter]:
    """The group's options carry the defaults and the environment variable; a
    subcommand's copies default to None so they override the group's only when given."""
    bootstrap_help = "Broker(s) to connect to first."
    output_help = "A table for humans, or JSON for scripts."
    bootstrap: dict[str, Any]
    output: dict[str, Any]
    if on_group:
        bootstrap = {
            "default": DEFAULT_BOOTSTRAP,
            "envvar": BOOTSTRAP_ENV,
            "show_default": True,
            "show_envvar": True,
            "help": bootstrap_help,
        }
        output = {"default": "table", "show_default": True, "help": output_help}
    else:
        bootstrap = {
            "help": f"{bootstrap_help}  [env var: {BOOTSTRAP_ENV}; default: {DEFAULT_BOOTSTRAP}]"
        }
        output = {"help": f"{output_help}  [default: table]"}
    return [
        click.Option(
            ["--bootstrap-server", "-b", "bootstrap_servers"],
            metavar="HOST:PORT[,...]",
            expose_value=False,
            callback=_store_setting,
            **bootstrap,
        ),
        click.Option(
            ["--output", "-o", "output"],
            type=click.Choice(["table", "json"]),
            expose_value=False,
            callback=_store_setting,
            **output,
        ),
    ]


class ToolGroup(click.Group):
    """A tool: common options everywhere, client errors as one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.params.extend(_common_params(on_group=True))

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.extend(_common_params(on_group=False))
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoBrokersAvailableError as exc:
            raise ToolError(
                f"no broker reachable at {settings().bootstrap_servers} (is it running? "
                f"set --bootstrap-server or {BOOTSTRAP_ENV})"
            ) from exc
        except KafkaConnectionError as exc:
            raise ToolError(exc.detail or str(exc)) from exc
        except KafkaError as exc:
            raise ToolError(str(exc)) from exc


def open_admin() -> Admin:
    """An ``Admin`` for this command, closed when the command's context ends."""
    ctx = click.get_current_context()
    client_id = ctx.find_root().info_name or "klog-cli"
    return ctx.with_resource(Admin(settings().bootstrap_servers, client_id=client_id))


def log_bounds(
    admin: Admin, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, tuple[int, int]]:
    """``(log start offset, log end offset)`` of each partition (ListOffsets)."""
    tps = list(partitions)
    if not tps:
        return {}
    starts = admin.list_offsets(dict.fromkeys(tps, OffsetSpec.EARLIEST))
    ends = admin.list_offsets(dict.fromkeys(tps, OffsetSpec.LATEST))
    return {tp: (starts[tp].offset, ends[tp].offset) for tp in tps}


# -- output ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """Rows (mappings) shown under ``columns``: (HEADER, key) pairs."""

    columns: Sequence[tuple[str, str]]
    rows: Iterable[Mapping[str, Any]]


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) if value else "-"
    return str(value)


def render_table(table: Table) -> str:
    header = [name for name, _ in table.columns]
    lines = [header] + [[cell(row.get(key)) for _, key in table.columns] for row in table.rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def emit(data: Any, *human: Table | str) -> None:
    """Print ``data`` as JSON with ``--output json``, else the ``human`` parts in order
    (tables and lines of text, a blank line between consecutive tables)."""
    if settings().output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
        return
    previous_was_table = False
    for part in human:
        if isinstance(part, Table):
            if previous_was_table:
                click.echo()
            click.echo(render_table(part))
            previous_was_table = True
        else:
            click.echo(part)
            previous_was_table = False


def json_mode() -> bool:
    return settings().output == "json"


# -- parameter types ---------------------------------------------------------------------


class KeyValue(click.ParamType):
    """``KEY=VALUE`` -> ``(key, value)``; the value may contain ``=``."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, tuple):
            return value
        key, sep, val = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"expected KEY=VALUE, got {value!r}", param, ctx)
        return key.strip(), val


def choose_one(*, required: bool = True, **options: Any) -> str | None:
    """The name of the one option of ``options`` that was given (not None/False/empty);
    a usage error if several were, or none was and one is ``required``."""
    given = [name for name, value in options.items() if value not in (None, False, ())]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(map(_flag, given))} cannot be used together")
    if not given and required:
        raise click.UsageError(f"give one of {', '.join(map(_flag, options))}")
    return given[0] if given else None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_timestamp_ms(text: str) -> int:
    """Milliseconds since the epoch, or an ISO 8601 date-time (local time when it has no
    zone, as Kafka's tools read it) -> milliseconds since the epoch."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither milliseconds since the epoch nor an ISO 8601 date-time "
            "such as 2024-05-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return int(moment.timestamp() * 1000)
