"""What every operator tool does the same way, seen from a shell: exit statuses, one-line
errors, "did you mean" hints, --help with examples, KLOG_BOOTSTRAP_SERVERS."""

from __future__ import annotations

import importlib
import json
import socket
import tomllib
from pathlib import Path

import click
import pytest

from klog.cli import configs, groups, topics

ROOT = Path(__file__).resolve().parents[3]
TOOLS = {"topics": topics.main, "groups": groups.main, "configs": configs.main}
# One read-only command per tool, to aim at a broker.
PROBES = {
    "topics": ["list"],
    "groups": ["list"],
    "configs": ["describe", "--topic", "orders"],
}


def _closed_port() -> int:
    """A local port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_unreachable_broker_is_one_line_and_exit_1(tool, tool_process) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    result = tool_process(tool, "--bootstrap-server", address, *PROBES[tool])
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: no broker reachable at {address} (is it running? "
        "set --bootstrap-server or KLOG_BOOTSTRAP_SERVERS)"
    ]


def test_bootstrap_from_the_environment(klog_node, tool_process) -> None:
    env = {"KLOG_BOOTSTRAP_SERVERS": klog_node.bootstrap}
    created = tool_process("topics", "create", "from-env", "--partitions", "2", env=env)
    assert (created.returncode, created.stdout) == (0, "Created topic 'from-env'.\n")
    listed = tool_process("topics", "list", "--output", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {"topic": "from-env", "partitions": 2, "replication_factor": 1, "internal": False} in (
        json.loads(listed.stdout)
    )
    # An explicit flag wins over the environment.
    elsewhere = tool_process("topics", "list", "-b", f"127.0.0.1:{_closed_port()}", env=env)
    assert elsewhere.returncode == 1


def test_produce_and_consume_through_pipes(klog_node, tool_process) -> None:
    bootstrap = ["--bootstrap-server", klog_node.bootstrap]
    assert tool_process("topics", *bootstrap, "create", "piped").returncode == 0
    produced = tool_process(
        "topics", *bootstrap, "produce", "piped", input="".join(f"{i}\n" for i in range(100))
    )
    assert produced.returncode == 0, produced.stderr
    consumed = tool_process(
        "topics", *bootstrap, "consume", "piped", "--from-beginning", "--max-messages", "100"
    )
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.splitlines() == [str(i) for i in range(100)]
    assert consumed.stderr == "Processed a total of 100 messages\n"


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["topics", "lst"], "Error: No such command 'lst'. Did you mean 'list'?"),
        (
            ["topics", "create", "t", "--partiton", "3"],
            "Error: No such option '--partiton'. Did you mean '--partitions'?",
        ),
        (["groups", "reset-offset", "g"], "'reset-offsets'?"),
        (["configs", "describe", "--topics", "t"], "Did you mean '--topic'?"),
        (["topics", "create", "t", "--partitions", "zero"], "'zero' is not a valid integer"),
        (["topics", "--output", "yaml", "list"], "'yaml' is not one of 'table', 'json'"),
        (["topics", "-b", "host:notaport", "list"], "bad bootstrap server 'host:notaport'"),
    ],
)
def test_usage_errors_exit_2_with_a_hint(args, hint, tool_process) -> None:
    result = tool_process(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert hint in result.stderr.splitlines()[-1]


def _commands(group: click.Group) -> list[tuple[str, ...]]:
    return [()] + [(name,) for name in group.commands]


@pytest.mark.parametrize(
    "argv",
    [(tool, *cmd) for tool, group in sorted(TOOLS.items()) for cmd in _commands(group)],
    ids=lambda argv: " ".join(argv),
)
def test_every_command_has_help_with_examples(argv) -> None:
    from click.testing import CliRunner

    tool, *command = argv
    result = CliRunner().invoke(TOOLS[tool], [*command, "--help"], prog_name=f"klog-{tool}")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert f"klog-{tool}" in result.stdout.split("Example", 1)[1]
    assert "--bootstrap-server" in result.stdout and "--output" in result.stdout


def test_console_scripts_point_at_the_tools() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for tool, group in TOOLS.items():
        module, _, attr = scripts[f"klog-{tool}"].partition(":")
        assert getattr(importlib.import_module(module), attr) is group
