"""``alerts run``: one machine's whole service as two Celery worker processes under one supervisor
(and the WebSub callback server when ``ALERTS_WEBSUB_URL`` is set). Celery itself runs only in the
children (``workers/``): this module builds their command lines and keeps them running.

The poll worker (with the embedded beat; threads, since polling waits on the network) and the
deliver worker (processes, since Apprise's sending is CPU-bound; each batch is sent on threads)
are separate, so a slow or failing channel can never hold up polling, nor a burst of polls delivery.
Both inherit this process's environment (REDIS_URL, ALERTS_CONFIG) and stderr.

Each child runs in its own session, so a terminal's Ctrl-C reaches the supervisor alone, and (on
Linux) gets SIGTERM should the supervisor die, even by SIGKILL. A child that exits by itself is
restarted after a backoff; SIGINT, SIGTERM or SIGHUP stop them all: a warm shutdown (running tasks
finish, prefetched ones go back to the broker), SIGKILL for those still running after
:data:`STOP_GRACE` seconds, then ``on_exit`` (the embedded Redis stops last).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from alerts import log
from alerts.config.settings import Settings

POLL_QUEUE = "poll"
DELIVER_QUEUE = "deliver"
_COMMON = ["--without-gossip", "--without-mingle"]

STOP_GRACE = 8.0  # seconds a child has to finish its running tasks before it is killed
FIRST_BACKOFF = 1.0  # a crashed child is restarted after this, doubling for repeated quick crashes
MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0  # a child that stayed up this long starts over at FIRST_BACKOFF
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_TICK = 0.1
_PR_SET_PDEATHSIG = 1

_logger = log.get("alerts.supervise")


def commands(settings: Settings, poll_concurrency: int, deliver_concurrency: int) -> dict[str, list[str]]:
    """The worker command lines by name."""
    celery = [sys.executable, "-m", "celery", "-A", "workers.app", "--quiet", "worker", *_COMMON]
    level = ["--loglevel", settings.log_level]
    workers = {
        "poll": [
            *celery,
            "--beat",
            "-Q",
            POLL_QUEUE,
            "-n",
            "poll@%h",
            "--pool",
            "threads",
            "-c",
            str(poll_concurrency),
            *level,
        ],
        # delivery is CPU-bound in Apprise: one process per core, each sending a batch on its own threads
        "deliver": [
            *celery,
            "-Q",
            DELIVER_QUEUE,
            "-n",
            "deliver@%h",
            "--pool",
            "prefork",
            "-c",
            str(deliver_concurrency),
            *level,
        ],
    }
    if settings.websub_url:
        workers["websub"] = [sys.executable, "-m", "workers.websub"]
    return workers


def spawn(command: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session of its own that gets SIGTERM when this process dies (Linux: when
    the calling thread ends, so spawn from the main thread)."""
    return subprocess.Popen(command, start_new_session=True, preexec_fn=_dies_with_parent(), **options)


def _dies_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel for SIGTERM when the parent dies (prepared before the fork)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl: the signal would never come
            os.kill(os.getpid(), signal.SIGTERM)

    return setup


@dataclass
class _Child:
    """One supervised command, its current process (None while waiting to restart) and its backoff."""

    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = 0.0
    restart_at: float = 0.0


def _exit_status(code: int) -> dict[str, Any]:
    return {"signal": signal.Signals(-code).name} if code < 0 else {"code": code}


def _kill_group(pid: int) -> None:
    """SIGKILL what is left of a child's session (its pool processes, the embedded beat)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class Supervisor:
    """Keeps each command running until :meth:`stop`."""

    def __init__(self, commands: dict[str, list[str]]) -> None:
        self.children = [_Child(name, command) for name, command in commands.items()]

    def check(self, now: float) -> None:
        """Start children that are due, and note those that exited (to restart after their backoff)."""
        for child in self.children:
            if child.process is None:
                if now >= child.restart_at:
                    self._start(child, now)
                continue
            code = child.process.poll()
            if code is None:
                continue
            _kill_group(child.process.pid)
            uptime = now - child.started
            quick = child.backoff > 0 and uptime < STABLE_AFTER
            child.backoff = min(child.backoff * 2, MAX_BACKOFF) if quick else FIRST_BACKOFF
            child.restart_at = now + child.backoff
            _logger.warning(
                "worker.exited",
                worker=child.name,
                pid=child.process.pid,
                **_exit_status(code),
                uptime=round(uptime, 1),
                restart_in=child.backoff,
            )
            child.process = None

    def _start(self, child: _Child, now: float) -> None:
        child.process = spawn(child.command)
        child.started = now
        _logger.info("worker.started", worker=child.name, pid=child.process.pid)

    def stop(self, hurry: Callable[[], bool]) -> None:
        """SIGTERM every child, wait up to STOP_GRACE seconds (less once ``hurry()``), SIGKILL the rest."""
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and not hurry() and any(self._alive(c) for c in running):
            time.sleep(0.05)
        for child in running:
            assert child.process is not None
            if child.process.poll() is None:
                child.process.kill()
                _logger.warning("worker.killed", worker=child.name, pid=child.process.pid)
            child.process.wait()
            _kill_group(child.process.pid)
        for child in self.children:
            child.process = None

    @staticmethod
    def _alive(child: _Child) -> bool:
        return child.process is not None and child.process.poll() is None


class _StopRequests:
    """Counts SIGINT/SIGTERM/SIGHUP; the handler only counts, so nothing is raised mid-work."""

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def __call__(self, signum: int, _: FrameType | None) -> None:
        self.count += 1
        self.first = self.first or signal.Signals(signum).name


def run(
    settings: Settings,
    poll_concurrency: int = 16,
    deliver_concurrency: int = 2,
    on_exit: Callable[[], None] | None = None,
) -> int:
    """Run the workers until SIGINT, SIGTERM or SIGHUP (a second one kills them at once); then stop
    them, call ``on_exit`` and return 0."""
    supervisor = Supervisor(commands(settings, poll_concurrency, deliver_concurrency))
    requests = _StopRequests()
    previous = {sig: signal.signal(sig, requests) for sig in STOP_SIGNALS}
    try:
        while not requests.count:
            supervisor.check(time.monotonic())
            time.sleep(_TICK)
        _logger.info("supervisor.stopping", signal=requests.first)
    finally:
        began = time.monotonic()
        try:
            supervisor.stop(hurry=lambda: requests.count > 1)
            if on_exit is not None:
                on_exit()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    _logger.info("supervisor.stopped", seconds=round(time.monotonic() - began, 2))
    return 0
