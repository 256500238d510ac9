"""The poll schedule: a sorted set of feeds by next due time, and each feed's interval.

A Lua script pops the feeds that are due and books their next poll, so any number of beats and
workers never poll a feed twice in one interval.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence

import redis

from alerts.state import keys
from alerts.state.connection import script, translated

FIRST_POLL_WINDOW = 5.0  # new feeds are first polled within this many seconds (more for many feeds)


class Schedule:
    """When each feed is next due."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._due = script(client, "schedule_due")
        self._take = script(client, "schedule_take")

    def sync(self, intervals: Mapping[str, float], fingerprint: str) -> bool:
        """Make the schedule hold exactly these feeds; new feeds are due soon. False if already in sync."""
        with translated():
            if self._client.get(keys.SCHEDULE_FINGERPRINT) == fingerprint:
                return False
            known = {str(name) for name in self._client.hkeys(keys.INTERVALS)}
            pipe = self._client.pipeline(transaction=True)
            gone = known - set(intervals)
            if gone:
                pipe.zrem(keys.SCHEDULE, *gone)
                pipe.hdel(keys.INTERVALS, *gone)
            if intervals:
                pipe.hset(keys.INTERVALS, mapping=dict(intervals))  # type: ignore[arg-type]
                now = time.time()
                # new feeds start spread over a window (100 feeds a second, within their interval)
                window = max(FIRST_POLL_WINDOW, len(intervals) / 100)
                spread = {
                    name: now + random.uniform(0, min(every, window)) for name, every in intervals.items()
                }
                pipe.zadd(keys.SCHEDULE, spread, nx=True)
                # a shortened interval takes effect now, not after the booking made with the old one
                pipe.zadd(keys.SCHEDULE, {name: now + every for name, every in intervals.items()}, lt=True)
            pipe.set(keys.SCHEDULE_FINGERPRINT, fingerprint)
            pipe.execute()
            return True

    def due(self, now: float, limit: int = 1000) -> list[str]:
        """Pop the feeds due at ``now`` and book their next poll."""
        with translated():
            return [str(feed) for feed in self._due(keys=[keys.SCHEDULE, keys.INTERVALS], args=[now, limit])]

    def take(self, now: float, limit: int = 1000) -> tuple[list[str], float | None]:
        """Pop the feeds due at ``now`` and book their next poll; and when the next feed is due
        (None when none is scheduled). One round trip."""
        with translated():
            first, *due = self._take(keys=[keys.SCHEDULE, keys.INTERVALS], args=[now, limit])
        return [str(feed) for feed in due], float(first) if first else None

    def reschedule(self, feed: str, at: float) -> None:
        """Book ``feed``'s next poll at ``at`` (only if it is still scheduled)."""
        with translated():
            self._client.zadd(keys.SCHEDULE, {feed: at}, xx=True)

    def reschedule_many(self, at: Mapping[str, float]) -> None:
        """:meth:`reschedule` for each feed, in one round trip."""
        if at:
            with translated():
                self._client.zadd(keys.SCHEDULE, dict(at), xx=True)

    def set_interval(self, feed: str, every: float) -> None:
        """The interval booked after each poll of ``feed``."""
        with translated():
            self._client.hset(keys.INTERVALS, feed, every)

    def of(self, feeds: Sequence[str]) -> dict[str, tuple[float | None, float | None]]:
        """feed -> (next poll time, interval) as the schedule holds them."""
        with translated():
            pipe = self._client.pipeline(transaction=False)
            for feed in feeds:
                pipe.zscore(keys.SCHEDULE, feed)
                pipe.hget(keys.INTERVALS, feed)
            values = pipe.execute()
        return {feed: (_float(values[2 * i]), _float(values[2 * i + 1])) for i, feed in enumerate(feeds)}


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))
