"""One background event loop per process, for synchronous callers of async I/O (Celery workers).

A daemon thread runs the loop; coroutines are handed over with
:func:`asyncio.run_coroutine_threadsafe`. The thread starts on first use and afresh in a forked
child (``os.register_at_fork`` plus an ``os.getpid()`` check): the parent's loop and what it owns
(sessions, sockets) are abandoned in the child, never closed there, since closing inherited TLS
connections would write to sockets the parent still uses. :func:`shutdown` (also registered with
:mod:`atexit`) closes it cleanly, with every resource made on it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from alerts.errors import FetchError

_T = TypeVar("_T")


class BackgroundLoop:
    """A daemon thread running one event loop, and the resources made on it (an HTTP session)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._resources: dict[str, tuple[Any, Callable[[Any], Awaitable[object]]]] = {}  # loop thread only
        self.thread = threading.Thread(target=self._run, name="alerts-http-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def usable(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive() and not self.loop.is_closed()

    def resource(self, name: str, make: Callable[[], _T], close: Callable[[_T], Awaitable[object]]) -> _T:
        """The loop's ``name`` resource, made on first use; call it from a coroutine on this loop."""
        found = self._resources.get(name)
        if found is None or getattr(found[0], "closed", False):
            found = self._resources[name] = (make(), close)
        resource: _T = found[0]
        return resource

    def run(self, coro: Coroutine[Any, Any, _T], wait: float) -> _T:
        """Run ``coro`` on the loop and wait at most ``wait`` seconds for it (FetchError after that)."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("the synchronous HTTP helpers cannot be called from the HTTP loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise FetchError(f"no answer from the HTTP loop within {wait:g}s") from None
        except BaseException:
            future.cancel()
            raise

    async def _aclose(self) -> None:
        resources, self._resources = self._resources, {}
        for resource, close in resources.values():
            await close(resource)
        await self.loop.shutdown_default_executor()

    def close(self, wait: float = 10.0) -> None:
        """Close its resources, stop the loop and join the thread (owner process only)."""
        if self.usable():
            try:
                asyncio.run_coroutine_threadsafe(self._aclose(), self.loop).result(wait)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(wait)
        if not self.thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


_current: BackgroundLoop | None = None
_lock = threading.Lock()
_abandoned: list[BackgroundLoop] = []  # inherited across fork: kept referenced, never closed


def current() -> BackgroundLoop:
    """This process's loop, started if need be."""
    global _current
    found = _current
    if found is not None and found.usable():
        return found
    with _lock:
        found = _current
        if found is None or not found.usable():
            if found is not None:
                _abandoned.append(found)
            found = _current = BackgroundLoop()
        return found


def _after_fork_in_child() -> None:
    global _current, _lock
    _lock = threading.Lock()
    if _current is not None:
        _abandoned.append(_current)
        _current = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def shutdown() -> None:
    """Close this process's loop and what it owns; a later call starts a new one."""
    global _current
    with _lock:
        found, _current = _current, None
    if found is not None and found.pid == os.getpid():
        found.close()


atexit.register(shutdown)
