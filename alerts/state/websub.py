"""WebSub subscriptions, one hash per feed, and the pace of (re)subscription attempts."""

from __future__ import annotations

from collections.abc import Mapping

import redis

from alerts.state import keys
from alerts.state.connection import translated


class WebSubState:
    """The subscriptions every process shares (the callback server, pollers, renewal)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def get(self, feed: str) -> dict[str, str]:
        """The stored subscription fields of ``feed`` ({} when none)."""
        with translated():
            return {str(k): str(v) for k, v in self._client.hgetall(keys.websub(feed)).items()}

    def put(self, feed: str, fields: Mapping[str, str]) -> None:
        """Store a subscription (replacing the previous one)."""
        with translated():
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(keys.websub(feed))
            pipe.hset(keys.websub(feed), mapping=dict(fields))  # type: ignore[arg-type]
            pipe.sadd(keys.WEBSUB_FEEDS, feed)
            pipe.execute()

    def delete(self, feed: str) -> None:
        """Forget a subscription."""
        with translated():
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(keys.websub(feed))
            pipe.srem(keys.WEBSUB_FEEDS, feed)
            pipe.execute()

    def feeds(self) -> list[str]:
        """Feeds that have a subscription."""
        with translated():
            return sorted(str(feed) for feed in self._client.smembers(keys.WEBSUB_FEEDS))

    def attempt(self, feed: str, every: int) -> bool:
        """True at most once per ``every`` seconds per feed: the turn of one (re)subscription attempt."""
        with translated():
            return bool(self._client.set(keys.websub_attempt(feed), "1", nx=True, ex=every))
