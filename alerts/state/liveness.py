"""Liveness of worker processes: one heartbeat per process, and the reaping of dead ones.

Every claim (a poll lock, a host slot, an item or story claim, a delivery being handed out,
received or sent) records the process that owns it. Each process beats every :data:`BEAT_EVERY`
seconds: its score in ``alerts:workers`` becomes the server's time. A claim whose owner has not
beaten for :data:`TIMEOUT` seconds, or has left the set, is free at once: the next poll takes over
its locks and claims, and the sweep reaps it (its deliveries are due again). The long leases
(``ALERTS_CLAIM_HOLD``, ``ALERTS_DELIVERY_LEASE``) remain only as the bound for a process that lives
but is stuck. A clean stop (:meth:`Liveness.release`) frees everything at once.

After a Redis outage every heartbeat is old, so a process judges others by their presence only
(not by the age of their beat) until it has itself beaten without a gap for :data:`TIMEOUT`: by
then every live process has beaten again, and no live one is declared dead. A process that starts
while Redis has been up for longer than that judges by age at once (a restart after a crash takes
over the dead's work within a second or two). Releases that failed
while Redis was away are retried when it answers again (:meth:`Liveness.later`).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import redis

from alerts import log, metrics
from alerts.errors import StoreUnavailable
from alerts.state import keys
from alerts.state.connection import script, translated

BEAT_EVERY = 1.0  # seconds between heartbeats
TIMEOUT = 3.0  # a process that has not beaten for this long is dead
REAP_LIMIT = 100  # dead processes reaped per sweep

_logger = log.get("alerts.liveness")
_instances: weakref.WeakSet[Liveness] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class Reaped:
    """A dead process, reaped: how many of its deliveries are due again."""

    owner: str
    deliveries: int


class Liveness:
    """This process's name as a claim owner, its heartbeat thread, and the reaping of dead owners.

    ``report`` says whether this process announces Redis outages at warning level (one process
    per deployment does: the beat); the others log them at debug.
    """

    def __init__(self, client: redis.Redis, report: bool = False) -> None:
        self._client = client
        self.report = report
        self._heartbeat = script(client, "heartbeat")
        self._reap = script(client, "reap")
        self._reset()
        _instances.add(self)

    def _reset(self) -> None:
        """A fresh state: nothing started (also in a forked child, which inherits no thread)."""
        self._lock = threading.RLock()
        self._pid: int | None = None
        self._owner = ""
        self._joined = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._steady_since: float | None = None
        self._last_ok = 0.0
        self._down_since: float | None = None
        self._deferred: list[Callable[[], None]] = []

    @property
    def owner(self) -> str:
        """This process's name in claims (started on first use, and again in a forked child)."""
        if self._pid != os.getpid() or not self._joined:
            self.start()
        return self._owner

    def start(self) -> str:
        """Join the workers set and start beating (idempotent); never raises while Redis is away."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._owner = _new_name()
                self._joined = False
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=_beat_while_alive,
                    args=(weakref.ref(self), self._stop),
                    name="alerts-heartbeat",
                    daemon=True,
                )
                self._thread.start()
            if not self._joined:
                self._beat("join")
            return self._owner

    def stale(self) -> float:
        """STALE for the scripts: :data:`TIMEOUT` once this process has beaten steadily that long,
        else -1 (judge others by presence only)."""
        since = self._steady_since
        return TIMEOUT if since is not None and time.monotonic() - since >= TIMEOUT else -1.0

    @property
    def available(self) -> bool:
        """False while this process's heartbeats fail (Redis is away)."""
        return self._down_since is None

    def later(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a release that failed: Redis was away) once Redis answers again."""
        with self._lock:
            self._deferred.append(action)

    def reap(self, now: float | None = None) -> list[Reaped]:
        """Reap every dead process (none until this one beats steadily): its deliveries are due at
        ``now`` and whatever it held is free."""
        stale = self.stale()
        if stale < 0:
            return []
        now = time.time() if now is None else now
        with translated():
            raw = self._reap(keys=[keys.WORKERS, keys.OUTBOX_DUE], args=[now, "stale", stale, REAP_LIMIT])
        return _reaped(raw)

    def beats(self) -> list[tuple[str, float]]:
        """Every process in the workers set and the seconds since its last beat (by the server's
        clock), newest first; a read only: this process neither joins nor beats."""
        with translated():
            pipe = self._client.pipeline(transaction=False)
            pipe.time()
            pipe.zrange(keys.WORKERS, 0, -1, withscores=True)
            (seconds, micros), members = pipe.execute()
        now = float(seconds) + float(micros) / 1_000_000
        ages = ((str(owner), max(0.0, now - float(beat))) for owner, beat in members)
        return sorted(ages, key=lambda aged: aged[1])

    def release(self) -> int:
        """A clean stop: stop beating and free this process's claims and deliveries at once.
        Returns how many deliveries are due again (0 when nothing was started or Redis is away)."""
        with self._lock:
            if self._pid != os.getpid() or self._thread is None:
                return 0
            self._stop.set()
            owner, self._pid, self._thread, self._joined = self._owner, None, None, False
        try:
            with translated():
                raw = self._reap(keys=[keys.WORKERS, keys.OUTBOX_DUE], args=[time.time(), "owner", owner])
        except StoreUnavailable:
            return 0
        released = sum(reaped.deliveries for reaped in _reaped(raw))
        _logger.info("worker.released", owner=owner, deliveries=released)
        return released

    def _beat(self, mode: str) -> None:
        with self._lock:
            self._beat_locked(mode)

    def _beat_locked(self, mode: str) -> None:
        now = time.monotonic()
        try:
            with translated():
                result = self._heartbeat(keys=[keys.WORKERS], args=[self._owner, mode])
        except StoreUnavailable as exc:
            self._failed(exc, now)
            return
        if not result:  # reaped: others took over what this process held; go on under a new name
            gone, self._owner = self._owner, _new_name()
            _logger.warning("worker.rejoined", owner=self._owner, was=gone, reason="declared dead")
            self._steady_since = None
            self._beat_locked("join")
            return
        metrics.heartbeat(True)
        fresh, self._joined = not self._joined, True
        gap = now - self._last_ok if self._last_ok else 0.0
        if self._steady_since is None or gap > TIMEOUT:
            self._steady_since = now
            if fresh and self._down_since is None and self._redis_uptime() > TIMEOUT:
                self._steady_since = now - TIMEOUT  # Redis was up all along: every live process beat
        self._last_ok = now
        if self._down_since is not None:
            down, self._down_since = now - self._down_since, None
            self._event("redis.recovered", down_s=round(down, 1))
        self._run_deferred()

    def _redis_uptime(self) -> float:
        """Seconds the Redis server has been up (0 when it will not say)."""
        try:
            with translated():
                return float(self._client.info("server").get("uptime_in_seconds", 0))
        except (StoreUnavailable, redis.RedisError, ValueError):
            return 0.0

    def _failed(self, exc: StoreUnavailable, now: float) -> None:
        metrics.heartbeat(False)
        self._steady_since = None
        if self._down_since is None:
            self._down_since = now
            # a process that never reached Redis says so itself: nobody else may know its REDIS_URL
            self._event("redis.unavailable", error=str(exc), level="warning", loud=not self._last_ok)

    def _event(self, event: str, level: str = "info", loud: bool = False, **fields: object) -> None:
        emit = getattr(_logger, level if self.report or loud else "debug")
        emit(event, owner=self._owner, **fields)

    def _run_deferred(self) -> None:
        with self._lock:
            pending, self._deferred = self._deferred, []
        for position, action in enumerate(pending):
            try:
                action()
            except StoreUnavailable:
                with self._lock:
                    self._deferred[:0] = pending[position:]
                return


def _beat_while_alive(ref: weakref.ref[Liveness], stop: threading.Event) -> None:
    """The heartbeat thread: beat every second until stopped, forked away, or the store is gone."""
    pid = os.getpid()
    while not stop.wait(BEAT_EVERY):
        liveness = ref()
        if liveness is None or liveness._pid != pid:
            return
        liveness._beat("beat" if liveness._joined else "join")
        del liveness


def _new_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def process_of(owner: str) -> tuple[str, int] | None:
    """The (host name, pid) an owner name was made from, or None for a name of another form."""
    host, _, rest = owner.rpartition(":")[0].rpartition(":")
    try:
        return (host, int(rest)) if host else None
    except ValueError:
        return None


def _reaped(raw: list[object]) -> list[Reaped]:
    return [Reaped(str(raw[i]), int(str(raw[i + 1]))) for i in range(0, len(raw), 2)]


def _after_fork() -> None:
    for liveness in list(_instances):
        liveness._reset()


os.register_at_fork(after_in_child=_after_fork)
