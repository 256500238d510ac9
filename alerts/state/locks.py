"""Locks: one poll of a feed at a time, and at most N polls of one host at a time, across workers.

Each token names its process (``<owner>|<nonce>``): a dead process's locks and slots are taken over
as soon as its heartbeat lapses (:mod:`alerts.state.liveness`); the ttl bounds a stuck one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from alerts.errors import StoreUnavailable
from alerts.state import keys
from alerts.state.connection import script, translated
from alerts.state.liveness import Liveness


class Locks:
    """Poll locks and host slots."""

    def __init__(self, client: redis.Redis, liveness: Liveness) -> None:
        self._client = client
        self._liveness = liveness
        self._lock = script(client, "lock")
        self._unlock = script(client, "unlock")
        self._host_slot = script(client, "host_slot")

    def _token(self) -> str:
        return f"{self._liveness.owner}|{time.time_ns()}"

    def lock_feed(self, feed: str, ttl: float) -> str | None:
        """A token if no live worker polls ``feed``, held at most ``ttl`` seconds; else None."""
        token, stale = self._token(), self._liveness.stale()
        with translated():
            taken = self._lock(keys=[keys.WORKERS, keys.poll_lock(feed)], args=[token, int(ttl * 1e3), stale])
        return token if taken else None

    def unlock_feed(self, feed: str, token: str) -> None:
        """Release the lock taken with :meth:`lock_feed` (if still ours; while Redis is away, as soon
        as it is back)."""

        def unlock() -> None:
            with translated():
                self._unlock(keys=[keys.poll_lock(feed)], args=[token])

        self._or_later(unlock)

    def take_host_slot(self, host: str, limit: int, ttl: float) -> str | None:
        """A token if fewer than ``limit`` polls of ``host`` are running anywhere, else None."""
        token = self._token()
        now = time.time()
        with translated():
            taken = self._host_slot(
                keys=[keys.WORKERS, keys.host_slots(host)],
                args=[now, now + ttl, limit, token, self._liveness.stale()],
            )
        return token if taken else None

    def give_host_slot(self, host: str, token: str) -> None:
        """Give back a slot taken with :meth:`take_host_slot`."""

        def give() -> None:
            with translated():
                self._client.zrem(keys.host_slots(host), token)

        self._or_later(give)

    def _or_later(self, release: Callable[[], None]) -> None:
        try:
            release()
        except StoreUnavailable:
            self._liveness.later(release)
