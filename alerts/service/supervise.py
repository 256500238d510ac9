"""``alerts run``: one machine's whole service as Celery workers under one supervisor (and the
WebSub callback server when ``ALERTS_WEBSUB_URL`` is set). Celery itself runs only in the children
(``workers/``): this module builds their command lines and keeps them running.

By default one worker consumes both queues: its poller polls the due feeds and runs the periodic
jobs on threads of its own, and deliveries run as tasks on the pool's threads (each batch sent on
threads too), so a slow or failing channel never holds up polling, nor a burst of polls delivery,
in about half the memory of two processes. ``--concurrency N`` (``ALERTS_CONCURRENCY``) above 1 runs
a poll worker and a deliver worker of N processes instead, for a fan-out that Apprise's CPU-bound
sending needs cores for. Every child inherits this process's environment (REDIS_URL,
ALERTS_CONFIG) and stderr.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from alerts import log, metrics
from alerts.config.settings import Settings

if TYPE_CHECKING:
    from alerts.service.observe import MetricsServer

POLL_QUEUE = "poll"
DELIVER_QUEUE = "deliver"
_COMMON = ["--without-gossip", "--without-mingle"]

STOP_GRACE = 8.0  # seconds a child has to finish its running tasks before it is killed
FIRST_BACKOFF = 1.0  # a crashed child is restarted after this, doubling for repeated quick crashes
MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0  # a child that stayed up this long starts over at FIRST_BACKOFF
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_TICK = 0.5  # how often the children are checked (a crash is seen within this)
_PR_SET_PDEATHSIG = 1

_logger = log.get("alerts.supervise")


def commands(settings: Settings, deliver_concurrency: int) -> dict[str, list[str]]:
    """The worker command lines by name: one worker for both queues by default (``worker``), or with
    ``deliver_concurrency`` > 1 a poll worker and a deliver worker of that many processes."""
    celery = [sys.executable, "-m", "celery", "-A", "workers.app", "--quiet", "worker", *_COMMON]
    level = ["--loglevel", settings.log_level]
    if deliver_concurrency <= 1:
        # a small deployment in one process: its poller polls on threads of its own, deliveries run
        # as tasks on the pool's threads, so neither can hold the other's threads up
        both = f"{POLL_QUEUE},{DELIVER_QUEUE}"
        # two task threads: as many deliveries in flight as two deliver processes had (a kill can
        # repeat only what was in flight), each batch still sent on threads of its own
        workers = {"worker": [*celery, "-Q", both, "-n", "alerts@%h", "--pool", "threads", "-c", "2", *level]}
    else:
        # Apprise's sending is CPU-bound: a large fan-out gets processes, apart from polling
        workers = {
            "poll": [*celery, "-Q", POLL_QUEUE, "-n", "poll@%h", "--pool", "threads", "-c", "4", *level],
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
    restarts: int = 0


def _exit_status(code: int) -> dict[str, Any]:
    return {"signal": signal.Signals(-code).name} if code < 0 else {"code": code}


def _kill_group(pid: int) -> None:
    """SIGKILL what is left of a child's session (its pool processes)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class Supervisor:
    """Keeps each command running until :meth:`stop`; ``env`` is added to the environment the
    children inherit; ``metrics_dir``, their multiprocess metrics directory, if any."""

    def __init__(
        self,
        commands: dict[str, list[str]],
        env: Mapping[str, str] | None = None,
        metrics_dir: str | None = None,
    ) -> None:
        self.children = [_Child(name, command) for name, command in commands.items()]
        self._env = dict(env or {})
        self._metrics_dir = metrics_dir

    def pids(self) -> dict[str, int | None]:
        """Each child's current process id (None while it waits to restart)."""
        return {child.name: child.process.pid if child.process else None for child in self.children}

    def restarts(self) -> dict[str, int]:
        """How many times each child was restarted after exiting by itself."""
        return {child.name: child.restarts for child in self.children}

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
            child.restarts += 1
            if self._metrics_dir:  # its live gauges go; what it counted stays
                metrics.mark_dead(child.process.pid, self._metrics_dir)
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
        child.process = spawn(child.command, **({"env": {**os.environ, **self._env}} if self._env else {}))
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
    deliver_concurrency: int = 2,
    on_exit: Callable[[], None] | None = None,
    server: MetricsServer | None = None,
) -> int:
    """Run the workers until SIGINT, SIGTERM or SIGHUP (a second one kills them at once); then stop
    them, call ``on_exit`` and return 0. With a ``server`` (bound already), serve /metrics, /healthz
    and /readyz from this process meanwhile, the children's metrics in a fresh multiprocess directory
    removed at exit."""
    directory = None
    if server is not None:
        from alerts.service import observe

        directory = observe.multiprocess_dir()
    supervisor = Supervisor(
        commands(settings, deliver_concurrency),
        env={metrics.MULTIPROC_ENV: directory} if directory else None,
        metrics_dir=directory,
    )
    if server is not None:
        observe.serve(server, settings.redis_url, supervisor.pids, directory, supervisor.restarts)
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
            if server is not None:
                server.close()
            if directory:
                observe.remove_multiprocess_dir(directory)
            if on_exit is not None:
                on_exit()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    _logger.info("supervisor.stopped", seconds=round(time.monotonic() - began, 2))
    return 0
