"""Fixtures for the operator tools' tests: run a tool against a real klog-server.

``cli("topics", "create", "orders")`` runs ``klog-topics create orders`` in-process with
click's ``CliRunner`` (``--bootstrap-server`` pointing at the test's broker) and returns
the ``Result`` (``exit_code``, ``stdout``, ``stderr``). ``tool_process(...)`` runs a tool as
a real subprocess (``python -m klog.cli.<tool>``) for exit statuses and environment
variables as a shell sees them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from klog.cli import configs, groups, topics

TOOLS: dict[str, click.Group] = {
    "topics": topics.main,
    "groups": groups.main,
    "configs": configs.main,
}


class Cli:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def on(self, node: Any) -> Cli:
        """The same runner aimed at another node."""
        return Cli(node.bootstrap)

    def __call__(self, tool: str, *args: str, input: str | bytes | None = None) -> Result:
        return CliRunner().invoke(
            TOOLS[tool],
            ["--bootstrap-server", self.bootstrap, *args],
            input=input,
            prog_name=f"klog-{tool}",
            catch_exceptions=False,
        )

    def ok(self, tool: str, *args: str, input: str | bytes | None = None) -> str:
        """Run and expect success; returns stdout."""
        result = self(tool, *args, input=input)
        assert result.exit_code == 0, (result.exit_code, result.output)
        return result.stdout

    def json(self, tool: str, *args: str, input: str | bytes | None = None) -> Any:
        return json.loads(self.ok(tool, *args, "--output", "json", input=input))

    def fails(self, tool: str, *args: str, code: int = 1, input: str | bytes | None = None) -> str:
        """Run and expect failure with exit status ``code`` and a one-line error (plus
        click's usage lines for status 2); returns that line."""
        result = self(tool, *args, input=input)
        assert result.exit_code == code, (result.exit_code, result.output)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("Error: "), result.stderr
        if code == 1:
            assert len(lines) == 1, result.stderr
        return lines[-1]


@pytest.fixture
def cli(klog_node) -> Cli:
    return Cli(klog_node.bootstrap)


@pytest.fixture
def topic_name() -> Callable[[], str]:
    return lambda: f"t-{uuid.uuid4().hex[:10]}"


def run_tool(
    tool: str, *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``klog-<tool> args...`` as a subprocess (``python -m``), 60 s at most."""
    return subprocess.run(
        [sys.executable, "-m", f"klog.cli.{tool}", *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(name="tool_process")
def tool_process_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_tool
