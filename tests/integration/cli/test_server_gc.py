"""klog-server freezes what startup built out of the cyclic garbage collector's reach.

Runs the command's own trio entry point in this process (the only way to look at the
collector of the process that serves), stopped by a real SIGTERM as an operator would.
"""

from __future__ import annotations

import gc
import os
import signal
from pathlib import Path

import trio
import trio.testing

from klog.cli import server
from klog.server.config import load_broker_config


def test_startup_objects_are_frozen_once_the_node_serves(tmp_path: Path) -> None:
    config = load_broker_config(
        None,
        ("listeners=PLAINTEXT://127.0.0.1:0", f"log.dirs={tmp_path / 'data'}"),
        {},
    )
    lines: list[str] = []
    frozen_before_serving: list[int] = []
    serving = trio.Event()

    def announce(line: str) -> None:
        lines.append(line)
        if line.startswith("klog data in"):
            frozen_before_serving.append(gc.get_freeze_count())
            serving.set()

    async def main() -> int:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server._run, config, announce)
            with trio.fail_after(60):
                await serving.wait()
            # Let the command's task get past the start of node.run to the freeze.
            await trio.testing.wait_all_tasks_blocked()
            frozen = gc.get_freeze_count()
            os.kill(os.getpid(), signal.SIGTERM)
        return frozen

    gc.unfreeze()
    try:
        frozen = trio.run(main)
    finally:
        gc.unfreeze()
    assert frozen_before_serving == [0]
    # Modules and compiled codecs alone are tens of thousands of objects.
    assert frozen > 10_000
    assert any(line.startswith("klog listening on 127.0.0.1:") for line in lines)
