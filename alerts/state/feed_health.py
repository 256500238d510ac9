"""Read-only: the health fields of every scheduled feed (the running configuration's feeds), for
``alerts status`` and the metrics. :mod:`alerts.state.feeds` writes them."""

from __future__ import annotations

import redis

from alerts.state import keys
from alerts.state.connection import translated

HEALTH_FIELDS = ("last_ok", "failures", "unhealthy")


class FeedHealth:
    """Reads of the feeds' health fields."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def scheduled(self) -> dict[str, dict[str, str]]:
        """feed -> its :data:`HEALTH_FIELDS` that are set, for every feed the schedule holds (exactly
        the feeds of the configuration the workers run), in two round trips."""
        with translated():
            feeds = sorted(str(name) for name in self._client.hkeys(keys.INTERVALS))
            pipe = self._client.pipeline(transaction=False)
            for feed in feeds:
                pipe.hmget(keys.feed_state(feed), HEALTH_FIELDS)
            found = pipe.execute() if feeds else []
        return {
            feed: {name: str(value) for name, value in zip(HEALTH_FIELDS, values, strict=True) if value}
            for feed, values in zip(feeds, found, strict=True)
        }
