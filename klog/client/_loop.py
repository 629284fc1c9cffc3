"""The trio event loop a client object runs on a background thread.

One ``LoopThread`` per Producer/Consumer/Admin: ``start()`` launches a thread running
``trio.run`` with one root nursery; the synchronous facade calls ``run(async_fn)`` to
execute a coroutine on that loop and block for its result (exceptions propagate to the
caller), ``call_soon(fn)`` to schedule a plain callable without waiting, and
``spawn(async_fn)`` to start a long-lived background task in the root nursery.

A background task that fails does not take the loop down: its exception is kept and
re-raised by ``check()`` (the facade calls it on every public call), so nothing is
swallowed. ``stop()`` cancels everything and joins the thread. Methods other than
``run`` may be called from any thread; ``run`` must not be called from the loop thread
itself (that would deadlock) and raises ``RuntimeError`` there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from klog.client.errors import ClientClosedError

T = TypeVar("T")
log = logging.getLogger("klog.client")


class LoopThread:
    def __init__(self, name: str) -> None:
        self._name = name
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop_event: trio.Event | None = None
        self._crash: BaseException | None = None
        self._task_errors: list[BaseException] = []
        self.closed = False

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._crash is not None:
            raise RuntimeError(f"{self._name}: event loop failed to start") from self._crash

    def _main(self) -> None:
        try:
            trio.run(self._root)
        except BaseException as exc:
            self._crash = exc
            log.exception("%s: event loop crashed", self._name)
        finally:
            self.closed = True
            self._started.set()

    async def _root(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop_event = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._started.set()
            await self._stop_event.wait()
            nursery.cancel_scope.cancel()

    @property
    def nursery(self) -> trio.Nursery:
        assert self._nursery is not None, "the loop is not running"
        return self._nursery

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def check(self) -> None:
        """Raise the first failure of a background task (once), or if closed."""
        if self._task_errors:
            raise self._task_errors.pop(0)
        if self.closed:
            raise ClientClosedError(f"{self._name} is closed")

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` on the loop and return its result (blocking)."""
        if self.closed or self._token is None:
            raise ClientClosedError(f"{self._name} is closed")
        if self.in_loop_thread:
            raise RuntimeError(
                f"{self._name}: blocking client calls cannot be made from a callback "
                "running on the client's own I/O thread"
            )
        try:
            return trio.from_thread.run(fn, *args, trio_token=self._token)
        except trio.RunFinishedError:
            raise ClientClosedError(f"{self._name} is closed") from None

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule ``fn(*args)`` on the loop thread; does not wait."""
        if self._token is None:
            raise ClientClosedError(f"{self._name} is closed")
        try:
            self._token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            raise ClientClosedError(f"{self._name} is closed") from None

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start a background task; must be called on the loop thread."""
        assert self._nursery is not None
        self._nursery.start_soon(self._guarded, fn, args, name=getattr(fn, "__qualname__", None))

    async def _guarded(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await fn(*args)
        except trio.Cancelled:
            raise
        except Exception as exc:
            log.debug("%s: background task %r failed", self._name, fn, exc_info=True)
            self._task_errors.append(exc)

    def stop(self, timeout: float | None = 30.0) -> None:
        if self._token is not None and not self.closed:
            try:
                self._token.run_sync_soon(self._set_stop)
            except trio.RunFinishedError:
                pass
        if self._thread.is_alive() and not self.in_loop_thread:
            self._thread.join(timeout)
        self.closed = True

    def _set_stop(self) -> None:
        assert self._stop_event is not None
        self._stop_event.set()
