"""Per-feed state: conditional-GET validators, health fields, and whether its backlog was seeded."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import redis

from alerts.state import keys
from alerts.state.connection import translated


class FeedStates:
    """One hash per feed."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def get(self, feed: str) -> dict[str, str]:
        """The fields stored for ``feed`` ({} when none)."""
        with translated():
            return {
                str(name): str(value) for name, value in self._client.hgetall(keys.feed_state(feed)).items()
            }

    def get_many(self, feeds: Sequence[str]) -> dict[str, dict[str, str]]:
        """:meth:`get` for each feed, in one round trip."""
        with translated():
            pipe = self._client.pipeline(transaction=False)
            for feed in feeds:
                pipe.hgetall(keys.feed_state(feed))
            found = pipe.execute()
        return {
            feed: {str(k): str(v) for k, v in state.items()} for feed, state in zip(feeds, found, strict=True)
        }

    def update(self, feed: str, fields: Mapping[str, str | int | float | None]) -> None:
        """Set the given fields; None deletes one."""
        present = {name: value for name, value in fields.items() if value is not None}
        absent = [name for name, value in fields.items() if value is None]
        with translated():
            pipe = self._client.pipeline(transaction=True)
            if present:
                pipe.hset(keys.feed_state(feed), mapping=present)  # type: ignore[arg-type]
            if absent:
                pipe.hdel(keys.feed_state(feed), *absent)
            pipe.execute()

    def mark_seeded(self, feed: str) -> bool:
        """True exactly once per feed: its first successful poll, whose items are recorded, not alerted."""
        with translated():
            return bool(self._client.hsetnx(keys.feed_state(feed), "seeded", int(time.time())))

    def flag(self, feed: str, field: str, value: str) -> bool:
        """Set a field only if unset (HSETNX): True on the transition."""
        with translated():
            return bool(self._client.hsetnx(keys.feed_state(feed), field, value))

    def unflag(self, feed: str, field: str) -> bool:
        """Delete a field: True if it was set (the opposite transition)."""
        with translated():
            return bool(self._client.hdel(keys.feed_state(feed), field))
