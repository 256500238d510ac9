"""Shared rate buckets (GCRA: one theoretical arrival time per destination), taken atomically."""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

from alerts.state import keys
from alerts.state.connection import script, translated


class RateBuckets:
    """One bucket per destination (a Telegram bot or chat, an SMTP or ntfy server)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._take = script(client, "rate_take")

    def take(self, limits: Sequence[tuple[str, float, float]], now: float) -> float:
        """Take a send slot from every (destination, interval, tolerance): 0, or seconds to wait first."""
        if not limits:
            return 0.0
        args: list[float] = [now]
        for _, interval, tolerance in limits:
            args += [interval, tolerance]
        with translated():
            return float(self._take(keys=[keys.rate(name) for name, _, _ in limits], args=args))

    def block(self, destination: str, until: float) -> None:
        """No send to ``destination`` before ``until`` (a channel said "retry after")."""
        with translated():
            self._client.set(
                keys.rate(destination), str(until), px=max(1000, int((until - time.time()) * 1000) + 1000)
            )
