"""Locks: one poll of a feed at a time, and at most N polls of one host at a time, across workers."""

from __future__ import annotations

import os
import time

import redis

from alerts.state import keys
from alerts.state.connection import script, translated


class Locks:
    """Poll locks and host slots; each expires on its own if its worker dies."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._host_slot = script(client, "host_slot")

    def lock_feed(self, feed: str, ttl: float) -> str | None:
        """A token if no other worker polls ``feed`` (SET NX PX), held at most ``ttl`` seconds; else None."""
        token = f"{os.getpid()}:{time.time_ns()}"
        with translated():
            return (
                token if self._client.set(keys.poll_lock(feed), token, nx=True, px=int(ttl * 1000)) else None
            )

    def unlock_feed(self, feed: str) -> None:
        """Release the lock taken with :meth:`lock_feed`."""
        with translated():
            self._client.delete(keys.poll_lock(feed))

    def take_host_slot(self, host: str, limit: int, ttl: float) -> str | None:
        """A token if fewer than ``limit`` polls of ``host`` are running anywhere, else None."""
        token = f"{os.getpid()}:{time.time_ns()}"
        now = time.time()
        with translated():
            taken = self._host_slot(keys=[keys.host_slots(host)], args=[now, now + ttl, limit, token])
        return token if taken else None

    def give_host_slot(self, host: str, token: str) -> None:
        """Give back a slot taken with :meth:`take_host_slot`."""
        with translated():
            self._client.zrem(keys.host_slots(host), token)
